"""Microsoft's own cases of the sync through Airflow (``dag.test()``), on SQLite and PostgreSQL."""

from __future__ import annotations

import json

from include.providers.microsoft.demo import EXPECTED as MICROSOFT_DEMO
from tests.dags.helpers import assert_synced, run_dag, task_states

DAG_ID = "provider_invoice_sync_microsoft"


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


def test_large_exports_are_parsed_and_staged_by_worker_processes(
    airflow_db, invoice_db, provider_connections, monkeypatch
):
    """Cut the v2 exports into batches of a few lines, so each demo invoice takes the worker path on PostgreSQL;
    the result must be what the sequential path gives: the same expectations, lines numbered 1..N."""
    import include.staging
    from plugins.hooks import partner_center

    monkeypatch.setattr(partner_center, "BATCH_LINES", 7)
    settings = {"microsoft": {"stage_parallel_from_lines": 20}}
    monkeypatch.setenv("AIRFLOW_VAR_INVOICE_SYNC_SETTINGS", json.dumps(settings))
    in_processes = []
    original = include.staging._stage_in_processes
    monkeypatch.setattr(
        include.staging,
        "_stage_in_processes",
        lambda store, job, *args: in_processes.append(job.header.invoice_id) or original(store, job, *args),
    )
    dag_run = run_dag(DAG_ID)

    assert_synced(invoice_db, dag_run, "microsoft", MICROSOFT_DEMO)
    postgres = invoice_db.engine.dialect.name == "postgresql"
    assert bool(in_processes) == postgres
    for invoice_id in in_processes:
        if MICROSOFT_DEMO[invoice_id].status == "active":
            numbers = [line["line_no"] for line in invoice_db.lines("microsoft", invoice_id)]
            assert numbers == list(range(1, MICROSOFT_DEMO[invoice_id].line_count + 1))
