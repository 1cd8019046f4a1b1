"""StreamOneIonHook over real HTTP against the sandbox: Basic auth, limit/offset paging, faults."""

from __future__ import annotations

import random
from datetime import date

import pytest
import requests

from include.model import InvalidProviderData, InvoiceNotFound, detail_total
from include.providers.synnex.demo import EXPECTED as SYNNEX_DEMO
from include.providers.synnex.demo import seller_total, synnex_invoice, synnex_line, write_synnex_invoice
from include.providers.synnex.normaliser import normalize_header, normalize_lines
from include.providers.synnex.sandbox import ACCOUNT_ID
from include.sandbox.demo_data import write_demo_data
from plugins.hooks.streamone_ion import StreamOneIonHook, _checked_page
from tests.hooks.helpers import FAST_RETRIES, calls

LARGE_ID, JANUARY_ID, MARCH_ID = "5000001", "5000002", "5000003"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """A 250-line invoice (3 pages of 100) and two small ones in January and March 2026."""
    root = tmp_path_factory.mktemp("synnex")
    rng = random.Random(11)
    for invoice_id, start, count in [
        (LARGE_ID, date(2025, 12, 1), 250),
        (JANUARY_ID, date(2026, 1, 1), 3),
        (MARCH_ID, date(2026, 3, 1), 2),
    ]:
        lines = [synnex_line(rng, invoice_id, start, "usage" if n % 5 else "license") for n in range(count)]
        write_synnex_invoice(root, synnex_invoice(invoice_id, start, seller_total(lines)), lines)
    return root


def test_a_wrong_api_secret_is_refused_with_http_401(serve, data_dir):
    serve(data_dir)
    hook = StreamOneIonHook()
    hook.connection.password = "not-the-secret"
    with pytest.raises(requests.HTTPError, match=r"GET /ion/api/v1/invoices/myinvoices failed with HTTP 401"):
        hook.list_invoices()


def test_lines_are_read_page_by_page_to_the_total(serve, data_dir):
    server = serve(data_dir)
    hook = StreamOneIonHook()
    invoice = hook.get_invoice(LARGE_ID)
    lines = list(hook.iter_line_items(invoice))
    assert len(lines) == 250
    assert {source for source, _ in lines} == {"ion/invoice_lines"}
    assert [entry["query"] for entry in calls(server, "/lines")] == [
        "limit=100&offset=0",
        "limit=100&offset=100",
        "limit=100&offset=200",
    ]
    header = normalize_header(invoice)
    assert detail_total(normalize_lines(header, lines)) == header.header_total


def test_the_invoice_list_pages_sorted_by_id_and_filters_by_billing_date(serve, data_dir):
    server = serve(data_dir)
    hook = StreamOneIonHook()
    hook.extras["page_size"] = 2
    assert [invoice["id"] for invoice in hook.list_invoices()] == [int(LARGE_ID), int(JANUARY_ID), int(MARCH_ID)]
    assert len(calls(server, "/myinvoices")) == 2
    january = hook.list_invoices(billing_start_from=date(2026, 1, 1), billing_end_to=date(2026, 1, 31))
    assert [invoice["id"] for invoice in january] == [int(JANUARY_ID)]
    assert "filter%5BbillingStartDate%3Agte%5D=2026-01-01" in calls(server, "/myinvoices")[-1]["query"]


def test_the_connection_can_skip_old_billing_periods(serve, data_dir):
    serve(data_dir)
    hook = StreamOneIonHook()
    hook.extras["billing_start_from"] = "2026-01-01"
    assert [invoice["id"] for invoice in hook.list_invoices()] == [int(JANUARY_ID), int(MARCH_ID)]


def test_429_is_retried_after_its_retry_after(serve, data_dir):
    server = serve(data_dir)
    server.add_fault("status", r"/lines$", status=429, retry_after=2)
    hook, waits = StreamOneIonHook(), []
    hook.sleep = waits.append
    assert len(list(hook.iter_line_items({"id": JANUARY_ID}))) == 3
    first, second = calls(server, "/lines")
    assert (first["status"], second["status"]) == (429, 200)
    assert waits == [2]  # the Retry-After, not a backoff of its own


def test_a_truncated_body_fails_loudly_after_bounded_retries(serve, data_dir):
    server = serve(data_dir)
    server.add_fault("truncate", r"/lines$", times=10)
    with pytest.raises(InvalidProviderData, match=rf"GET /ion/api/v1/invoices/{LARGE_ID}/lines returned a body"):
        list(StreamOneIonHook().iter_line_items({"id": LARGE_ID}))
    assert len(calls(server, "/lines")) == FAST_RETRIES["max_retries"] + 1


def test_a_short_page_fails_instead_of_truncating_the_invoice(serve, data_dir):
    server = serve(data_dir)
    server.add_fault("drop_items", r"/lines$")
    with pytest.raises(
        InvalidProviderData,
        match=rf"returned 50 lines of invoice {LARGE_ID} at offset 0, but its total of 250 at 100 per page means 100",
    ):
        list(StreamOneIonHook().iter_line_items({"id": LARGE_ID}))


@pytest.mark.parametrize(
    ("page", "problem"),
    [
        ([], "without an items list"),
        ({"total": 1}, "without an items list"),
        ({"items": ["x"], "total": 1}, "without an items list"),
        ({"items": []}, r"without a total count \(None\)"),
        ({"items": [], "total": "3"}, r"without a total count \('3'\)"),
    ],
)
def test_a_malformed_page_envelope_is_refused(page, problem):
    with pytest.raises(InvalidProviderData, match=rf"Ion returned lines of invoice 1 at offset 0 {problem}"):
        _checked_page(page, "lines of invoice 1", 0)


def test_unknown_invoice_raises_invoice_not_found(serve, data_dir):
    serve(data_dir)
    with pytest.raises(InvoiceNotFound) as caught:
        StreamOneIonHook().get_invoice("999")
    assert str(caught.value) == "TD SYNNEX StreamOne Ion does not know invoice 999."


def test_an_invoice_of_another_account_is_refused(serve, data_dir):
    serve(data_dir)
    hook = StreamOneIonHook()
    hook.extras["account_id"] = "777"
    with pytest.raises(InvalidProviderData, match=rf"Invoice {JANUARY_ID} belongs to Ion account {ACCOUNT_ID}, .* 777"):
        hook.get_invoice(JANUARY_ID)


def test_demo_invoices_arrive_complete_with_their_expected_differences(serve, tmp_path):
    write_demo_data(tmp_path)
    serve(tmp_path)
    hook = StreamOneIonHook()
    invoices = hook.list_invoices()
    assert {str(invoice["id"]) for invoice in invoices} == set(SYNNEX_DEMO)
    for listed in invoices:
        invoice = hook.get_invoice(str(listed["id"]))
        header = normalize_header(invoice)
        assert header.fingerprint == normalize_header(listed).fingerprint
        lines = list(normalize_lines(header, hook.iter_line_items(invoice)))
        expected = SYNNEX_DEMO[header.invoice_id]
        assert len(lines) == expected.line_count
        assert header.header_total - detail_total(lines) == expected.difference, header.invoice_id
