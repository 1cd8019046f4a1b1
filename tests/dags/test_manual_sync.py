"""Manual sync and deactivation through Airflow (``dag.test(run_conf=...)``) on SQLite and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select, update

from include.providers.microsoft.demo import EXPECTED as MICROSOFT_DEMO
from include.sql.schema import (
    invoice_sync_attempt,
    provider_invoice,
    provider_invoice_line,
    provider_invoice_note,
)
from include.sql.stage import open_stages
from tests.dags.helpers import load_dag, run_dag

MANUAL, DEACTIVATE = "provider_invoice_manual_sync", "provider_invoice_deactivate"
CREDIT_NOTE = next(i for i, e in MICROSOFT_DEMO.items() if e.difference == Decimal("-1329.7525"))
BALANCED = next(i for i, e in MICROSOFT_DEMO.items() if e.status == "active" and e.difference == 0)
TABLES = (provider_invoice, provider_invoice_line, invoice_sync_attempt, provider_invoice_note)


def _row_counts(store) -> dict[str, int]:
    with store.engine.connect() as conn:
        return {t.name: conn.execute(select(func.count()).select_from(t)).scalar() for t in TABLES}


def _states(dag_run) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


def _manual(invoice_id, **conf):
    return run_dag(MANUAL, {"provider": "microsoft", "invoice_id": invoice_id, **conf})


def test_override_without_reason_is_refused_by_the_first_task(airflow_db, invoice_db, provider_connections, capsys):
    dag_run = _manual(CREDIT_NOTE, override_tolerance=1329.7525)

    assert _states(dag_run)["fetch"] == "failed"
    assert "override_reason is required when override_tolerance is set." in capsys.readouterr().out
    assert _row_counts(invoice_db) == dict.fromkeys((t.name for t in TABLES), 0)
    assert not [r for r in provider_connections.requests if r["path"].startswith("/partnercenter")]


def test_unknown_invoice_fails_with_one_sentence(airflow_db, invoice_db, provider_connections, capsys):
    dag_run = _manual("G999999999")

    assert _states(dag_run)["fetch"] == "failed"
    assert "Microsoft Partner Center does not know invoice G999999999." in capsys.readouterr().out
    assert invoice_db.get_invoice("microsoft", "G999999999") is None
    [attempt] = invoice_db.attempts("microsoft", "G999999999")
    assert attempt["outcome"] == "failed" and "does not know invoice" in attempt["message"]


def test_override_activates_a_known_credit_note_difference(airflow_db, invoice_db, provider_connections, capsys):
    reason = f"Credit note for {CREDIT_NOTE} confirmed in Partner Center"
    dag_run = _manual(CREDIT_NOTE, override_tolerance=1329.7525, override_reason=reason)

    assert set(_states(dag_run).values()) == {"success"}
    log = capsys.readouterr().out
    assert f"Checksum passed with an override: Override tolerance 1329.7525 (applied as 1330): {reason}" in log
    invoice = invoice_db.get_invoice("microsoft", CREDIT_NOTE)
    assert invoice["status"] == "active"
    assert invoice["difference"] == Decimal("-1329.7525")
    assert invoice["tolerance_applied"] == Decimal("1330")
    [attempt] = invoice_db.attempts("microsoft", CREDIT_NOTE)
    assert attempt["outcome"] == "activated"
    assert (attempt["override_tolerance"], attempt["tolerance_applied"]) == (Decimal("1329.7525"), Decimal("1330"))
    assert attempt["override_reason"] == reason
    [note] = invoice_db.notes("microsoft", CREDIT_NOTE)
    assert reason in note["note"] and "1330" in note["note"]
    assert note["author"] == attempt["triggered_by"] and note["author"]


def test_override_below_the_difference_keeps_the_checksum_error(airflow_db, invoice_db, provider_connections):
    dag_run = _manual(CREDIT_NOTE, override_tolerance=1329, override_reason="not enough")

    assert _states(dag_run)["checksum_validation"] == "failed"
    invoice = invoice_db.get_invoice("microsoft", CREDIT_NOTE)
    assert (invoice["status"], invoice["tolerance_applied"]) == ("checksum_error", Decimal("1329"))
    assert invoice_db.lines("microsoft", CREDIT_NOTE) == []
    assert "not enough" in invoice_db.notes("microsoft", CREDIT_NOTE)[0]["note"]


def test_active_invoice_is_refused_until_deactivated(airflow_db, invoice_db, provider_connections, capsys):
    assert set(_states(_manual(BALANCED)).values()) == {"success"}
    before = _row_counts(invoice_db)

    dag_run = _manual(BALANCED)

    assert _states(dag_run)["fetch"] == "failed"
    assert "is active; run provider_invoice_deactivate first" in capsys.readouterr().out
    assert _row_counts(invoice_db) == before


def test_deactivation_is_blocked_by_invoiced_lines(airflow_db, invoice_db, provider_connections, capsys):
    _manual(BALANCED)
    with invoice_db.engine.begin() as conn:
        for line_no in (2, 5):
            conn.execute(
                update(provider_invoice_line)
                .where(provider_invoice_line.c.invoice_id == BALANCED, provider_invoice_line.c.line_no == line_no)
                .values(customer_invoice_ref=f"CUST-{line_no}")
            )

    dag_run = run_dag(DEACTIVATE, {"provider": "microsoft", "invoice_id": BALANCED, "reason": "re-download"})

    assert _states(dag_run)["deactivate"] == "failed"
    out = capsys.readouterr().out
    assert "cannot be deactivated: 2 line(s) are already invoiced" in out
    assert "line 2 (customer invoice CUST-2), line 5 (customer invoice CUST-5)" in out
    assert invoice_db.get_invoice("microsoft", BALANCED)["status"] == "active"


def test_deactivate_then_resync_keeps_one_copy_of_each_line(airflow_db, invoice_db, provider_connections):
    _manual(BALANCED)
    first = invoice_db.lines("microsoft", BALANCED)

    deactivation = run_dag(DEACTIVATE, {"provider": "microsoft", "invoice_id": BALANCED, "reason": "late lines"})
    assert _states(deactivation)["deactivate"] == "success"
    invoice = invoice_db.get_invoice("microsoft", BALANCED)
    assert invoice["status"] == "inactive" and invoice["deactivated_at"] is not None
    resync = _manual(BALANCED)

    assert set(_states(resync).values()) == {"success"}
    again = invoice_db.lines("microsoft", BALANCED)
    assert len(again) == len(first) == MICROSOFT_DEMO[BALANCED].line_count
    assert sorted(r["line_no"] for r in again) == list(range(1, len(first) + 1))
    assert [(r["line_no"], r["amount"]) for r in again] == [(r["line_no"], r["amount"]) for r in first]
    assert open_stages(invoice_db.engine) == []
    outcomes = [a["outcome"] for a in invoice_db.attempts("microsoft", BALANCED)]
    assert outcomes == ["activated", "deactivated", "activated"]
    assert "late lines" in invoice_db.notes("microsoft", BALANCED)[0]["note"]


def test_manual_dag_runs_the_contract_tasks():
    assert set(load_dag(MANUAL).task_dict) == {"fetch", "checksum_validation", "load", "activate"}


def test_a_crash_during_load_is_recorded_and_loads_nothing(airflow_db, invoice_db, provider_connections, monkeypatch):
    from include.sql.store import InvoiceStore

    def crash(self, *args, **kwargs):
        raise ConnectionError("database went away mid-load")

    monkeypatch.setattr(InvoiceStore, "load_from_stage", crash)
    dag_run = _manual(BALANCED)

    assert (_states(dag_run)["checksum_validation"], _states(dag_run)["load"]) == ("success", "failed")
    invoice = invoice_db.get_invoice("microsoft", BALANCED)
    assert invoice["status"] == "failed" and "database went away mid-load" in invoice["status_message"]
    assert invoice_db.lines("microsoft", BALANCED) == []
    [attempt] = invoice_db.attempts("microsoft", BALANCED)
    assert attempt["outcome"] == "failed" and attempt["message"] == (
        f"The load of microsoft invoice {BALANCED} failed unexpectedly: ConnectionError: database went away mid-load"
    )
    assert open_stages(invoice_db.engine) == []  # the run is over: nothing will read its stage again
