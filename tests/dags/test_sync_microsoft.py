"""The whole Microsoft sync through Airflow (``dag.test()``), on SQLite and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal

from include.sandbox.demo_data import MICROSOFT_DEMO
from tests.dags.helpers import run_dag, task_states

DAG_ID = "provider_invoice_sync_microsoft"


def test_demo_invoices_sync_end_to_end(airflow_db, invoice_db, provider_connections):
    dag_run = run_dag(DAG_ID)

    checksum_states = task_states(dag_run, "checksum_validation")
    for invoice_id, expected in MICROSOFT_DEMO.items():
        invoice = invoice_db.get_invoice("microsoft", invoice_id)
        assert invoice["status"] == expected.status, invoice_id
        assert invoice["difference"] == expected.difference, invoice_id
        assert invoice["header_total"] - invoice["detail_total"] == expected.difference
        loaded = invoice_db.lines("microsoft", invoice_id)
        attempt = invoice_db.attempts("microsoft", invoice_id)[-1]
        assert (attempt["dag_id"], attempt["run_id"]) == (DAG_ID, dag_run.run_id)
        assert attempt["difference"] == expected.difference
        if expected.status == "active":
            assert attempt["outcome"] == "activated"
            assert len(loaded) == expected.line_count == invoice["line_count"]
            assert sum((line["amount"] for line in loaded), Decimal(0)) == invoice["detail_total"]
            assert checksum_states[f"microsoft {invoice_id}"] == "success"
        else:
            assert attempt["outcome"] == "checksum_error"
            assert loaded == []  # a failed checksum loads nothing
            assert checksum_states[f"microsoft {invoice_id}"] == "failed"
            assert "Checksum error" in attempt["message"] and attempt["diagnostics"]


def test_second_run_downloads_only_what_is_not_active(airflow_db, invoice_db, provider_connections):
    run_dag(DAG_ID)
    provider_connections.clear_requests()
    second = run_dag(DAG_ID)

    fetched = set(task_states(second, "fetch"))
    blocked = {f"microsoft {i}" for i, e in MICROSOFT_DEMO.items() if e.status != "active"}
    assert fetched == blocked
    paths = [r["path"] for r in provider_connections.requests]
    for invoice_id, expected in MICROSOFT_DEMO.items():
        downloaded = any(p.endswith(f"/v1/invoices/{invoice_id}") for p in paths)
        assert downloaded == (expected.status != "active"), invoice_id
