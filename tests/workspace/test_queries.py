"""The workspace's read side on both databases: list, filters, paging, record, the provider listing."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest

from include.model import InvoiceHeader
from include.sql.listing import record_listing
from include.sql.store import AttemptKey
from include.workspace import queries


def _header(invoice_id: str, total: str, start: date = date(2026, 5, 1)) -> InvoiceHeader:
    return InvoiceHeader(
        "microsoft", invoice_id, "EUR", Decimal(total), date(2026, 6, 1), start, date(start.year, start.month, 28)
    )


def _checksum_error(
    store, invoice_id: str, total: str, detail: str, by: str = "scheduled", account=None, check=None
) -> None:
    key = AttemptKey("microsoft", invoice_id, "provider_invoice_sync_microsoft", f"run-{invoice_id}")
    store.start_attempt(key, triggered_by=by, account=account)
    store.stage(f"s-{invoice_id}").create()
    diagnostics = {
        "breakdown": {"licence": {"amount": detail, "lines": 3}},
        "difference": str(Decimal(total) - Decimal(detail)),
        "hints": [{"cause": "credit_note", "action": "re-run with override", "evidence": "e", "amount": "1"}],
        "data_docs": "http://x/provider-invoices/data-docs/validations/p.html",
        **({"check": check} if check else {}),
    }
    totals = {
        "header_total": Decimal(total),
        "detail_total": Decimal(detail),
        "difference": Decimal(total) - Decimal(detail),
        "tolerance_applied": Decimal(1),
    }
    store.record_checksum_error(
        key,
        _header(invoice_id, total),
        f"s-{invoice_id}",
        totals=totals,
        line_count=3,
        message="m",
        diagnostics=diagnostics,
        task_url="http://x/log",
    )


def test_list_record_and_listing(invoice_db):
    engine = invoice_db.engine
    _checksum_error(invoice_db, "A1", "100.10", "99.0001")
    _checksum_error(invoice_db, "B2", "5", "1", by="alice")

    page = queries.list_invoices(engine)
    assert page["total"] == 2 and [row["invoice_id"] for row in page["invoices"]] == ["B2", "A1"]
    a1 = page["invoices"][1]
    assert (a1["header_total"], a1["detail_total"], a1["difference"]) == ("100.10", "99.0001", "1.0999")
    assert a1["last_attempt"]["outcome"] == "checksum_error" and page["invoices"][0]["last_attempt"]["by"] == "alice"
    assert a1["line_count"] == 3  # the lines the failing checksum validated, though none is loaded
    assert queries.list_invoices(engine, status="active")["total"] == 0
    assert queries.list_invoices(engine, period="2026-05")["total"] == 2
    assert queries.list_invoices(engine, period="2026-06")["total"] == 0
    assert [r["invoice_id"] for r in queries.list_invoices(engine, page=2, page_size=1)["invoices"]] == ["A1"]

    record = queries.invoice_record(engine, "microsoft", "A1")
    assert record["invoice"]["difference"] == "1.0999" and record["next_step"] == "re-run with override"
    assert record["breakdown"] == [{"category": "licence", "amount": "99.0001", "lines": 3}]
    assert record["invoice"]["line_count"] == 3
    assert record["failed_task_log"] == "http://x/log" and record["data_docs"].endswith("/p.html")
    assert queries.invoice_record(engine, "microsoft", "nope") is None
    assert record["usage_mismatch_run"] is None  # the header checksum failed: no usage mismatch file

    _checksum_error(invoice_db, "U1", "10", "10", check="usage")
    assert queries.invoice_record(engine, "microsoft", "U1")["usage_mismatch_run"] == "run-U1"

    default = ["partner_center_default"]
    listing = {"partner_center_default": [_header("A1", "100.10"), _header("C3", "7.5", date(2026, 6, 1))]}
    assert record_listing(engine, "microsoft", listing, default) == 2
    listed = queries.provider_listing(engine, "microsoft")
    assert [(r["invoice_id"], r["account"], r["status"], r["header_total"]) for r in listed] == [
        ("C3", "partner_center_default", "not imported", "7.50"),
        ("A1", "partner_center_default", "checksum_error", "100.10"),
    ]
    record_listing(engine, "microsoft", {"partner_center_default": [_header("C3", "7.5")]}, default)  # replaced
    assert [r["invoice_id"] for r in queries.provider_listing(engine, "microsoft")] == ["C3"]
    assert json.dumps(listed)  # JSON-safe: no Decimal, no date objects
    assert queries.invoice_account(engine, "microsoft", "A1") == "partner_center_default"  # imported from it
    assert queries.list_invoices(engine)["several_accounts"] == []


def test_each_account_listing_replaces_only_its_own_rows(invoice_db):
    engine, accounts = invoice_db.engine, ["pc_emea", "pc_apac"]
    record_listing(engine, "microsoft", {"pc_emea": [_header("E1", "1")], "pc_apac": [_header("P1", "2")]}, accounts)
    record_listing(engine, "microsoft", {"pc_emea": [_header("E2", "3")]}, accounts)  # pc_apac's listing failed

    assert {(r["account"], r["invoice_id"]) for r in queries.provider_listing(engine, "microsoft")} == {
        ("pc_emea", "E2"),
        ("pc_apac", "P1"),
    }
    assert queries.invoice_account(engine, "microsoft", "P1") == "pc_apac"  # the one account that offered it
    assert queries.invoice_account(engine, "microsoft", "X9") is None  # the provider's default account
    record_listing(engine, "microsoft", {"pc_emea": [_header("E2", "3")]}, ["pc_emea"])  # pc_apac was removed
    assert [r["account"] for r in queries.provider_listing(engine, "microsoft")] == ["pc_emea"]

    _checksum_error(invoice_db, "E2", "3", "1", account="pc_emea")
    assert queries.list_invoices(engine)["several_accounts"] == []
    _checksum_error(invoice_db, "P1", "2", "1", account="pc_apac")
    listed = queries.list_invoices(engine)
    assert listed["several_accounts"] == ["microsoft"]
    assert {(i["invoice_id"], i["account"]) for i in listed["invoices"]} == {("E2", "pc_emea"), ("P1", "pc_apac")}
    assert queries.invoice_account(engine, "microsoft", "P1") == "pc_apac"


@pytest.mark.parametrize(
    ("filters", "sentence"),
    [
        ({"provider": "aws"}, "provider must be one of microsoft, synnex, got 'aws'."),
        ({"status": "open"}, "status must be one of active, checksum_error, inactive, failed, got 'open'."),
        ({"period": "2026-5"}, "period must be a month as YYYY-MM, got '2026-5'."),
        ({"page": 0}, "page must be 1 or more and page_size between 1 and 500."),
        ({"page_size": 501}, "page must be 1 or more and page_size between 1 and 500."),
    ],
)
def test_bad_filters_are_one_sentence(invoice_db, filters, sentence):
    with pytest.raises(queries.BadFilter) as raised:
        queries.list_invoices(invoice_db.engine, **filters)
    assert str(raised.value) == sentence


def test_money_text_keeps_every_stored_digit():
    assert [queries.money(Decimal(v)) for v in ("1", "-1329.752500", "0.000001", "12.5")] == [
        "1.00",
        "-1329.7525",
        "0.000001",
        "12.50",
    ]
