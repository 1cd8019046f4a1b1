"""The Azure usage checksum through Airflow (``dag.test()``), on SQLite and PostgreSQL.

One invoice goes through what Microsoft does after an invoice appears: no daily-rated usage at first, then
a partial set (the last days of one subscription missing), then the full set. Each daily run retries it by
itself; the clock of the escalation day is set by the test (``include.checksum.usage.today``).
"""

from __future__ import annotations

import csv
import json
from datetime import date
from decimal import Decimal

import pytest

from include.providers.microsoft.demo import (
    USAGE_LINE_TYPE,
    microsoft_demo_invoices,
    partial_usage_invoice,
    write_microsoft_invoice,
)
from include.sql.status_report import build_report
from include.sql.usage import mismatches, usage_lines
from tests.dags.helpers import run_dag, task_states

DAG_ID = "provider_invoice_sync_microsoft"
BEFORE_ESCALATION = date(2026, 2, 3)
ESCALATION_DAY = date(2026, 2, 11)
"""Day 11 (the default usage_escalation_day) of the month after the demo invoice's January period."""


@pytest.fixture
def usage_sandbox(tmp_path, monkeypatch):
    """A sandbox of its own over a data dir the test rewrites between runs, with the connections pointed at it."""
    from include.sandbox import SandboxServer

    data = tmp_path / "data"
    data.mkdir()
    with SandboxServer(data, export_retry_after=0) as server:
        for name, value in server.env().items():
            monkeypatch.setenv(name, value)
        yield server


def _publish(sandbox, demo, usage: list[dict] | None) -> None:
    """Serve the invoice with ``usage`` as its daily-rated set (None: no file, i.e. not published)."""
    sets = {key: lines for key, lines in demo.line_sets.items() if key[1] != USAGE_LINE_TYPE}
    if usage is not None:
        sets[("one_time", USAGE_LINE_TYPE)] = usage
    folder = write_microsoft_invoice(sandbox.data_dir, demo.invoice, sets)
    if usage is None:
        (folder / f"one_time_{USAGE_LINE_TYPE}.jsonl").unlink(missing_ok=True)


def _set_today(monkeypatch, day: date) -> None:
    import include.checksum.usage

    monkeypatch.setattr(include.checksum.usage, "today", lambda: day)


def _attempt(store, invoice_id: str) -> dict:
    return store.attempts("microsoft", invoice_id)[-1]


def test_usage_not_published_then_partial_then_full(airflow_db, invoice_db, usage_sandbox, monkeypatch):
    demo, full = partial_usage_invoice()
    invoice_id, expected = demo.invoice["id"], demo.expectation
    _set_today(monkeypatch, BEFORE_ESCALATION)

    # 1. Microsoft has published no daily-rated usage yet: an error of its own, not an empty pass.
    _publish(usage_sandbox, demo, None)
    first = run_dag(DAG_ID)
    assert invoice_db.get_invoice("microsoft", invoice_id)["status"] == "checksum_error"
    attempt = _attempt(invoice_db, invoice_id)
    assert "daily-rated usage not published yet" in attempt["message"]
    assert "Retried by the next scheduled run" in attempt["message"]
    assert task_states(first, "checksum_validation")[f"microsoft {invoice_id}"] == "failed"
    assert (
        invoice_db.lines("microsoft", invoice_id) == []
        and usage_lines(invoice_db.engine, "microsoft", invoice_id) == []
    )

    # 2. A partial set: the subscription whose last days are missing is named with its exact difference.
    _publish(usage_sandbox, demo, demo.line_sets[("one_time", USAGE_LINE_TYPE)])
    usage_sandbox.clear_requests()
    second = run_dag(DAG_ID)
    assert set(task_states(second, "fetch")) == {f"microsoft {invoice_id}"}  # retried without a person
    assert invoice_db.get_invoice("microsoft", invoice_id)["status"] == "checksum_error"
    attempt = _attempt(invoice_db, invoice_id)
    usage = json.loads(attempt["diagnostics"])["usage"]
    assert Decimal(usage["difference"]) == expected.usage_difference
    [row] = mismatches(invoice_db.engine, "microsoft", invoice_id, second.run_id)
    subscription = row["subscription_id"]
    assert row["difference"] == expected.usage_difference
    assert row["reconciliation_pre_tax"] - row["daily_rated_pre_tax"] == row["difference"]
    assert row["last_usage_date"] < invoice_db.get_invoice("microsoft", invoice_id)["billing_period_end"]
    assert subscription in attempt["message"] and str(expected.usage_difference) in attempt["message"]
    assert "looks partial" in attempt["message"] and usage["partial"] == [subscription]
    assert usage["escalated"] is False and usage["escalates_on"] == ESCALATION_DAY.isoformat()
    with open(usage["csv"], newline="", encoding="utf-8") as handle:
        [written] = list(csv.DictReader(handle))
    assert (written["subscription_id"], Decimal(written["difference"])) == (subscription, expected.usage_difference)
    assert any("/reports/partners/billing/usage/billed/export" in r["path"] for r in usage_sandbox.requests)
    assert invoice_db.lines("microsoft", invoice_id) == []  # nothing loaded

    # 3. The full set: the same invoice activates on the next run and loads every daily-rated line.
    _publish(usage_sandbox, demo, full)
    third = run_dag(DAG_ID)
    invoice = invoice_db.get_invoice("microsoft", invoice_id)
    assert invoice["status"] == "active", invoice["status_message"]
    loaded = usage_lines(invoice_db.engine, "microsoft", invoice_id)
    assert len(loaded) == len(full) and [u["line_no"] for u in loaded] == list(range(1, len(full) + 1))
    assert sum((u["billing_pre_tax_total"] for u in loaded), Decimal(0)) == sum(
        (u["billingPreTaxTotal"] for u in full), Decimal(0)
    )
    assert Decimal(json.loads(_attempt(invoice_db, invoice_id)["diagnostics"])["usage"]["difference"]) == 0
    assert third.run_id != second.run_id and len(mismatches(invoice_db.engine, "microsoft", invoice_id)) == 1


def test_escalation_day_moves_a_usage_error_into_needs_attention(airflow_db, invoice_db, usage_sandbox, monkeypatch):
    demo, _ = partial_usage_invoice()
    invoice_id = demo.invoice["id"]
    _publish(usage_sandbox, demo, demo.line_sets[("one_time", USAGE_LINE_TYPE)])
    _set_today(monkeypatch, BEFORE_ESCALATION)
    run_dag(DAG_ID)
    attempt = _attempt(invoice_db, invoice_id)
    finished = attempt["finished_at"]

    def report_on(day: date):
        from datetime import UTC, timedelta

        finished_at = finished.replace(tzinfo=UTC) if finished.tzinfo is None else finished
        return build_report(
            invoice_db.engine, finished_at - timedelta(hours=1), finished_at + timedelta(seconds=1), today=day
        )

    before = report_on(BEFORE_ESCALATION)
    assert [e.invoice_id for e in before.usage_pending] == [invoice_id]
    assert before.checksum_errors == () and not before.needs_attention

    on_the_day = report_on(ESCALATION_DAY)
    assert [e.invoice_id for e in on_the_day.checksum_errors] == [invoice_id]
    assert on_the_day.usage_pending == () and on_the_day.needs_attention

    from include.notification.render import render

    assert render(before).subject.startswith("[OK]") and render(on_the_day).subject.startswith("[ACTION NEEDED]")
    assert "usage_mismatch" in render(on_the_day).text

    # From the escalation day on, the checksum task itself says so (and the optional alert is no longer held back).
    _set_today(monkeypatch, ESCALATION_DAY)
    run_dag(DAG_ID)
    usage = json.loads(_attempt(invoice_db, invoice_id)["diagnostics"])["usage"]
    assert usage["escalated"] is True and "Escalated since 2026-02-11" in _attempt(invoice_db, invoice_id)["message"]


def test_usage_under_the_tolerance_passes_through_v1_paging(airflow_db, invoice_db, usage_sandbox, monkeypatch):
    from plugins.hooks import partner_center

    demo = next(d for d in microsoft_demo_invoices() if d.invoice["id"] == "G0523A0006")
    write_microsoft_invoice(usage_sandbox.data_dir, demo.invoice, demo.line_sets)
    monkeypatch.setattr(partner_center, "PAGE_SIZE", 10)  # several continuation pages of daily-rated usage
    dag_run = run_dag(DAG_ID)

    invoice = invoice_db.get_invoice("microsoft", demo.invoice["id"])
    assert invoice["status"] == "active", invoice["status_message"]
    assert task_states(dag_run, "activate")[f"microsoft {demo.invoice['id']}"] == "success"
    usage = json.loads(_attempt(invoice_db, demo.invoice["id"])["diagnostics"])["usage"]
    assert Decimal(usage["difference"]) == demo.expectation.usage_difference
    assert -1 < demo.expectation.usage_difference < 0
    assert len(usage_lines(invoice_db.engine, "microsoft", demo.invoice["id"])) == demo.expectation.usage_lines
    pages = [r for r in usage_sandbox.requests if "usagelineitems" in (r["path"] + r["query"]).lower()]
    assert len(pages) == -(-demo.expectation.usage_lines // 10)
