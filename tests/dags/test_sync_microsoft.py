"""The whole Microsoft sync through Airflow (``dag.test()``), on SQLite and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal

from include.sandbox.demo_data import MICROSOFT_DEMO
from tests.dags.helpers import assert_synced, run_dag, task_states

DAG_ID = "provider_invoice_sync_microsoft"


def test_demo_invoices_sync_end_to_end(airflow_db, invoice_db, provider_connections):
    dag_run = run_dag(DAG_ID)

    assert_synced(invoice_db, dag_run, "microsoft", MICROSOFT_DEMO)
    for invoice_id in (i for i, e in MICROSOFT_DEMO.items() if e.status == "active"):
        amounts = [line["amount"] for line in invoice_db.lines("microsoft", invoice_id)]
        assert sum(amounts, Decimal(0)) == invoice_db.get_invoice("microsoft", invoice_id)["detail_total"]


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
