"""PartnerCenterHook over real HTTP against the sandbox: auth, the three paging schemes, faults."""

from __future__ import annotations

import random
from datetime import date
from decimal import Decimal

import pytest
import requests

from include.model import InvalidProviderData, InvoiceNotFound, detail_total
from include.providers.microsoft.demo import (
    EXPECTED as MICROSOFT_DEMO,
)
from include.providers.microsoft.demo import (
    azure_line,
    microsoft_invoice,
    office_line,
    one_time_line,
    sets_total,
    write_microsoft_invoice,
)
from include.providers.microsoft.normaliser import normalize_header, normalize_lines
from include.sandbox.demo_data import write_demo_data
from include.sandbox.server import dumps
from plugins.hooks import partner_center
from plugins.hooks.partner_center import PartnerCenterHook
from tests.hooks.helpers import FAST_RETRIES, calls

BILLING = "billing_line_items"
LEGACY_ID, V1_ID, V2_ID = "D0000000001", "G0000000002", "G0000000003"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """A legacy invoice of 4,500 office lines (3 offset pages), a pre-2024 one-time invoice of 4,100
    lines (3 continuation pages) and a 2026 one-time invoice of 25 lines (v2 export)."""
    root = tmp_path_factory.mktemp("microsoft")
    rng = random.Random(7)
    for invoice_id, start, provider, count, make in [
        (LEGACY_ID, date(2023, 5, 1), "office", 4500, office_line),
        (V1_ID, date(2023, 10, 1), "one_time", 4100, one_time_line),
        (V2_ID, date(2026, 3, 1), "one_time", 25, one_time_line),
    ]:
        sets = {(provider, BILLING): [make(rng, invoice_id, start) for _ in range(count)]}
        write_microsoft_invoice(root, microsoft_invoice(invoice_id, start, sets_total(sets), sets), sets)
    return root


def test_token_is_obtained_once_and_cached_per_resource(serve, data_dir):
    server = serve(data_dir)
    hook = PartnerCenterHook()
    hook.list_invoices()
    hook.get_invoice(LEGACY_ID)
    list(hook.iter_export_batches(V2_ID))
    list(hook.iter_export_batches(V2_ID))
    tokens = calls(server, "/oauth2/token")
    assert [entry["status"] for entry in tokens] == [200, 200]  # one for Partner Center, one for Graph


def test_wrong_client_secret_is_refused_with_http_401(serve, data_dir):
    serve(data_dir)
    hook = PartnerCenterHook()
    hook.connection.password = "not-the-secret"
    with pytest.raises(requests.HTTPError, match=r"POST /login/.*/oauth2/token failed with HTTP 401"):
        hook.list_invoices()


def test_offset_paging_reads_every_page(serve, data_dir):
    server = serve(data_dir)
    hook = PartnerCenterHook()
    invoice = hook.get_invoice(LEGACY_ID)
    lines = list(hook.iter_line_items(invoice))
    assert len(lines) == 4500
    assert {source for source, _ in lines} == {"office/billing_line_items"}
    offsets = [entry["query"] for entry in calls(server, "/lineitems")]
    assert [q.rsplit("offset=", 1)[1] for q in offsets] == ["0", "2000", "4000"]
    header = normalize_header(invoice)
    assert detail_total(normalize_lines(header, lines)) == header.header_total


def test_continuation_paging_follows_the_token_to_the_end(serve, data_dir):
    server = serve(data_dir)
    hook = PartnerCenterHook()
    invoice = hook.get_invoice(V1_ID)
    assert not hook.uses_v2_export(invoice)
    lines = list(hook.iter_line_items(invoice))
    assert len(lines) == 4100
    pages = calls(server, "/lineitems")
    assert len(pages) == 3
    assert "seekOperation" not in pages[0]["query"]
    assert all("/OneTime/BillingLineItems" in p["path"] and "seekOperation=Next" in p["query"] for p in pages[1:])
    header = normalize_header(invoice)
    assert detail_total(normalize_lines(header, lines)) == header.header_total


def test_v2_export_reads_several_blobs(serve, data_dir):
    server = serve(data_dir, blob_lines=10)
    hook = PartnerCenterHook()
    invoice = hook.get_invoice(V2_ID)
    assert hook.uses_v2_export(invoice)
    lines = list(hook.iter_line_items(invoice))
    assert len(lines) == 25
    assert len(calls(server, "/blobs/billing/")) == 3
    assert len(calls(server, "/operations/")) == 2  # running (Retry-After), then succeeded
    assert "TotalForCustomer" in lines[0][1]  # v2 blobs speak PascalCase
    header = normalize_header(invoice)
    assert detail_total(normalize_lines(header, lines)) == header.header_total


def test_v2_export_lines_also_come_as_counted_text_batches(serve, data_dir, monkeypatch):
    monkeypatch.setattr(partner_center, "BATCH_LINES", 4)
    serve(data_dir, blob_lines=10)
    hook = PartnerCenterHook()
    invoice = hook.get_invoice(V2_ID)
    batches = list(hook.iter_line_batches(invoice))
    assert [(b.origin.split()[1], b.lines_before, b.count) for b in batches] == [
        *((f"part_{blob:06d}.json.gz", before, count) for blob in (1, 2) for before, count in ((0, 4), (4, 4), (8, 2))),
        ("part_000003.json.gz", 0, 4),
        ("part_000003.json.gz", 4, 1),
    ]
    assert [item for b in batches for item in b.items()] == list(hook.iter_line_items(invoice))


@pytest.mark.parametrize("invoice_id", [LEGACY_ID, V1_ID])
def test_paged_invoices_have_no_text_batches(serve, data_dir, invoice_id):
    serve(data_dir)
    hook = PartnerCenterHook()
    assert hook.iter_line_batches(hook.get_invoice(invoice_id)) is None


def test_429_is_retried_after_its_retry_after(serve, data_dir):
    server = serve(data_dir)
    server.add_fault("status", r"/v1/invoices$", status=429, retry_after=2)
    hook, waits = PartnerCenterHook(), []
    hook.sleep = waits.append
    assert len(hook.list_invoices()) == 3
    first, second = calls(server, "/v1/invoices")
    assert (first["status"], second["status"]) == (429, 200)
    assert waits == [2]  # the Retry-After, not a backoff of its own


def test_5xx_is_retried_with_backoff(serve, data_dir):
    server = serve(data_dir)
    server.add_fault("status", r"/v1/invoices/D", status=503, times=1)
    server.add_fault("status", r"/v1/invoices/D", status=500, times=1)
    hook, waits = PartnerCenterHook(), []
    hook.sleep = waits.append
    assert hook.get_invoice(LEGACY_ID)["id"] == LEGACY_ID
    assert [e["status"] for e in calls(server, f"/v1/invoices/{LEGACY_ID}")] == [503, 500, 200]
    first = FAST_RETRIES["retry_backoff"]  # exponential from the connection's retry_backoff, plus jitter up to it
    assert len(waits) == 2 and first <= waits[0] <= 2 * first and 2 * first <= waits[1] <= 3 * first


def test_retries_are_bounded(serve, data_dir):
    server = serve(data_dir)
    server.add_fault("status", r"/v1/invoices$", status=503, times=10)
    with pytest.raises(requests.HTTPError, match=r"GET /partnercenter/v1/invoices failed with HTTP 503"):
        PartnerCenterHook().list_invoices()
    assert len(calls(server, "/v1/invoices")) == FAST_RETRIES["max_retries"] + 1


def test_a_truncated_body_fails_loudly_after_bounded_retries(serve, data_dir):
    server = serve(data_dir)
    server.add_fault("truncate", r"/v1/invoices/D", times=10)
    with pytest.raises(InvalidProviderData, match=rf"GET /partnercenter/v1/invoices/{LEGACY_ID} returned a body"):
        PartnerCenterHook().get_invoice(LEGACY_ID)
    assert len(calls(server, f"/v1/invoices/{LEGACY_ID}")) == FAST_RETRIES["max_retries"] + 1


def test_a_truncated_body_once_is_retried(serve, data_dir):
    server = serve(data_dir)
    server.add_fault("truncate", r"/lineitems", times=1)
    assert len(list(PartnerCenterHook().iter_offset_line_items(LEGACY_ID, "office"))) == 4500


def test_a_page_with_fewer_items_than_its_total_count_fails(serve, data_dir):
    server = serve(data_dir)
    server.add_fault("drop_items", r"/lineitems", times=1)
    with pytest.raises(InvalidProviderData, match=r"returned 1000 items for office line items .* totalCount says 2000"):
        list(PartnerCenterHook().iter_offset_line_items(LEGACY_ID, "office"))


def test_a_broken_continuation_chain_fails(serve, data_dir):
    server = serve(data_dir)
    server.add_fault("break_chain", r"/lineitems/OneTime/BillingLineItems")
    with pytest.raises(requests.HTTPError, match=r"HTTP 400 .*continuation token is invalid"):
        list(PartnerCenterHook().iter_onetime_v1(V1_ID))


def test_a_manifest_missing_blobs_fails(serve, data_dir):
    server = serve(data_dir, blob_lines=10)
    server.add_fault("drop_items", r"/manifests/")
    with pytest.raises(InvalidProviderData, match=r"announces 3 blobs but lists 1"):
        list(PartnerCenterHook().iter_export_batches(V2_ID))


def test_a_truncated_blob_fails(serve, data_dir):
    server = serve(data_dir, blob_lines=10)
    server.add_fault("truncate", r"part_000002")
    with pytest.raises(InvalidProviderData, match=r"Blob part_000002.json.gz .* is truncated or corrupt"):
        list(PartnerCenterHook().iter_export_batches(V2_ID))


def test_a_failed_export_fails(serve, data_dir):
    serve(data_dir)
    with pytest.raises(InvalidProviderData, match=r"export of invoice G404 failed: 5000 No data available"):
        list(PartnerCenterHook().iter_export_batches("G404"))


def test_a_started_export_is_waited_for_not_started_again(serve, data_dir):
    """The operations a fetch recorded (``export_operations``) are what the downloads use: one POST per export."""
    server = serve(data_dir)
    hook = PartnerCenterHook()
    assert hook.exports(hook.get_invoice(V2_ID)) == ["reconciliation", "usage"]
    assert hook.exports(hook.get_invoice(V1_ID)) == []  # before v2_export_from: nothing to wait for
    hook.export_operations = {"reconciliation": hook.start_export(V2_ID, "reconciliation")}
    assert sum(batch.count for batch in hook.iter_export_batches(V2_ID)) == 25
    assert len([r for r in server.requests if r["method"] == "POST" and "/export" in r["path"]]) == 1


def test_an_expired_export_operation_fails_with_one_sentence(serve, data_dir):
    server = serve(data_dir)
    server.add_fault("status", r"/operations/", status=404)
    with pytest.raises(InvalidProviderData, match=r"^Microsoft no longer knows the reconciliation export operation"):
        list(PartnerCenterHook().iter_export_batches(V2_ID))


def test_unknown_invoice_raises_invoice_not_found(serve, data_dir):
    serve(data_dir)
    with pytest.raises(InvoiceNotFound) as caught:
        PartnerCenterHook().get_invoice("G999999999")
    assert str(caught.value) == "Microsoft Partner Center does not know invoice G999999999."


def test_a_declared_set_we_cannot_fetch_is_an_error(serve, data_dir):
    serve(data_dir)
    invoice = {"id": "D1", "invoiceDetails": [{"billingProvider": "azure_data_market", "invoiceLineItemType": BILLING}]}
    with pytest.raises(InvalidProviderData, match="azure_data_market"):
        list(PartnerCenterHook().iter_line_items(invoice))


def test_numbers_sent_as_strings_parse_exactly(serve, tmp_path):
    rng, start = random.Random(3), date(2025, 1, 1)
    line = azure_line(rng, "D0000000009", start) | {"postTaxTotal": "1234.5678", "pretaxCharges": "1037.45"}
    sets = {("azure", BILLING): [line], ("azure", "usage_line_items"): []}
    write_microsoft_invoice(tmp_path, microsoft_invoice("D0000000009", start, Decimal("1234.5678"), sets), sets)
    serve(tmp_path)
    hook = PartnerCenterHook()
    invoice = hook.get_invoice("D0000000009")
    header = normalize_header(invoice)
    (normalised,) = normalize_lines(header, hook.iter_line_items(invoice))
    assert normalised.amount == Decimal("1234.5678") == header.header_total
    assert isinstance(invoice["totalCharges"], Decimal)


def test_demo_invoices_arrive_complete_with_their_expected_differences(serve, tmp_path):
    write_demo_data(tmp_path)
    serve(tmp_path)
    hook = PartnerCenterHook()
    invoices = hook.list_invoices()
    assert {invoice["id"] for invoice in invoices} == set(MICROSOFT_DEMO)
    for listed in invoices:
        invoice = hook.get_invoice(listed["id"])
        header = normalize_header(invoice)
        lines = list(normalize_lines(header, hook.iter_line_items(invoice)))
        expected = MICROSOFT_DEMO[header.invoice_id]
        assert len(lines) == expected.line_count
        assert header.header_total - detail_total(lines) == expected.difference, header.invoice_id


def test_slow_responses_time_out_and_are_retried(serve, data_dir):
    server = serve(data_dir)
    hook = PartnerCenterHook()
    hook.extras["timeout"] = [2, 0.3]
    server.add_fault("delay", r"/v1/invoices$", delay=0.8)
    waits = []
    hook.sleep = waits.append
    assert len(hook.list_invoices()) == 3
    assert len(waits) == 1 and 0 < waits[0] <= FAST_RETRIES["max_retry_wait"]  # one backoff, then the retry
    assert len(calls(server, "/v1/invoices", expect=2)) == 2


def test_a_running_export_is_polled_after_its_retry_after_capped_by_the_connection(serve, data_dir):
    serve(data_dir, export_retry_after=30)
    hook, waits = PartnerCenterHook(), []
    hook.sleep = waits.append
    assert sum(batch.count for batch in hook.iter_export_batches(V2_ID)) == 25
    assert waits == [FAST_RETRIES["max_retry_wait"]]  # the operation said 30 s; the connection allows 2


def _with_daily_rated_usage(root, invoice_id: str, start: date, count: int) -> list[dict]:
    """Give a one-time invoice of the data dir ``count`` billed daily-rated usage lines; returns them."""
    from include.providers.microsoft.demo import USAGE_LINE_TYPE, daily_rated_line

    rng = random.Random(11)
    recon = one_time_line(rng, invoice_id, start, "usage")
    usage = [daily_rated_line(rng, recon, start, Decimal(n).scaleb(-15) + 1) for n in range(1, count + 1)]
    folder = root / "microsoft" / invoice_id
    (folder / f"one_time_{USAGE_LINE_TYPE}.jsonl").write_text("".join(dumps(u) + "\n" for u in usage), encoding="utf-8")
    return usage


def test_daily_rated_usage_before_v2_pages_by_continuation_token(serve, data_dir, monkeypatch):
    usage = _with_daily_rated_usage(data_dir, V1_ID, date(2023, 10, 1), 25)
    server = serve(data_dir)
    monkeypatch.setattr(partner_center, "PAGE_SIZE", 10)
    hook = PartnerCenterHook()
    fetched = list(hook.iter_usage_items(hook.get_invoice(V1_ID)))
    assert [u["billingPreTaxTotal"] for u in fetched] == [u["billingPreTaxTotal"] for u in usage]
    pages = [entry for entry in server.requests if "usagelineitems" in (entry["path"] + entry["query"]).lower()]
    assert len(pages) == 3 and "currencycode=EUR" in pages[0]["query"]
    assert all(p["path"].endswith("/lineitems/OneTime/UsageLineItems") for p in pages[1:])


def test_daily_rated_usage_from_v2_comes_from_the_billed_usage_export(serve, data_dir):
    usage = _with_daily_rated_usage(data_dir, V2_ID, date(2026, 3, 1), 7)
    server = serve(data_dir, blob_lines=3)
    hook = PartnerCenterHook()
    fetched = list(hook.iter_usage_items(hook.get_invoice(V2_ID)))
    assert [u["BillingPreTaxTotal"] for u in fetched] == [u["billingPreTaxTotal"] for u in usage]  # PascalCase blobs
    assert calls(server, "/reports/partners/billing/usage/billed/export")
    assert hook.iter_usage_items(hook.get_invoice(LEGACY_ID)) is None  # legacy usage carries no money


def test_v2_daily_rated_usage_also_comes_as_counted_text_batches(serve, data_dir, monkeypatch):
    monkeypatch.setattr(partner_center, "BATCH_LINES", 2)
    _with_daily_rated_usage(data_dir, V2_ID, date(2026, 3, 1), 7)
    serve(data_dir, blob_lines=3)
    hook = PartnerCenterHook()
    invoice = hook.get_invoice(V2_ID)
    batches = list(hook.iter_usage_batches(invoice))
    assert [(b.origin.split()[1], b.lines_before, b.count) for b in batches] == [
        *((f"part_{blob:06d}.json.gz", before, count) for blob in (1, 2) for before, count in ((0, 2), (2, 1))),
        ("part_000003.json.gz", 0, 1),
    ]
    assert all(b.origin.endswith(f"of the usage export of invoice {V2_ID}") for b in batches)
    assert [line for b in batches for _, line in b.items()] == list(hook.iter_usage_items(invoice))
    for paged in (V1_ID, LEGACY_ID):
        assert hook.iter_usage_batches(hook.get_invoice(paged)) is None
