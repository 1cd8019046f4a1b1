"""What every end-to-end test checks about a finished run of ``provider_invoice_sync_microsoft``.

The demo data fixes each invoice's outcome (:data:`MICROSOFT_DEMO`): the run is red because two
invoices do not add up; every other invoice is loaded line for line and active; a large export is
waited for on the triggerer (the fetch deferred), then parsed and staged by the fetch's worker processes,
in whatever process ran the task.
"""

from __future__ import annotations

import json
import os

from include.providers.microsoft.demo import EXPECTED as MICROSOFT_DEMO
from tests.e2e.airflow_processes import AirflowApi

SYNC = "provider_invoice_sync_microsoft"
CHECKSUM_ERRORS = {i for i, e in MICROSOFT_DEMO.items() if e.status == "checksum_error"}


def by_invoice(task_instances: list[dict], task_id: str) -> dict[str, dict]:
    """``invoice id -> task instance`` of one task of the mapped group.

    The group is mapped once per invoice, so a map index is the same invoice in every task; the
    invoice ids come from ``fetch`` (rendered map index ``"microsoft <id>"``), which runs for every
    invoice. A task that never ran (upstream_failed) has no rendered map index of its own.
    """
    invoice_of = {
        ti["map_index"]: ti["rendered_map_index"].split()[-1] for ti in task_instances if ti["task_id"] == "fetch"
    }
    return {invoice_of[ti["map_index"]]: ti for ti in task_instances if ti["task_id"] == task_id}


def check_sync_run(api: AirflowApi, invoice_db, sync_run: dict, *, active_before: frozenset[str] = frozenset()):
    """Task states, invoice rows, attempts and loaded lines of the run; returns its task instances.

    ``active_before``: invoices activated before the run, which it must not download again.
    """
    run_id = sync_run["dag_run_id"]
    tis = api.task_instances(SYNC, run_id)
    checksum = by_invoice(tis, "checksum_validation")
    states = {invoice_id: ti["state"] for invoice_id, ti in checksum.items()}
    assert sync_run["state"] == "failed", states  # red because two demo invoices do not add up
    assert set(states) == set(MICROSOFT_DEMO) - active_before, "an active invoice is not downloaded again"
    assert {i for i, state in states.items() if state == "failed"} == CHECKSUM_ERRORS, states
    assert {i for i, state in states.items() if state == "success"} == set(states) - CHECKSUM_ERRORS, states
    activate = {i: ti["state"] for i, ti in by_invoice(tis, "activate").items()}
    assert activate == {i: "upstream_failed" if i in CHECKSUM_ERRORS else "success" for i in states}

    workers_from = json.loads(os.environ["AIRFLOW_VAR_INVOICE_SYNC_SETTINGS"])["microsoft"]["stage_parallel_from_lines"]
    fetch = by_invoice(tis, "fetch")
    workers_checked = False
    for invoice_id, expected in MICROSOFT_DEMO.items():
        invoice = invoice_db.get_invoice("microsoft", invoice_id)
        assert (invoice["status"], invoice["difference"]) == (expected.status, expected.difference), invoice_id
        attempt = invoice_db.attempts("microsoft", invoice_id)[-1]
        if invoice_id not in active_before:
            assert (attempt["dag_id"], attempt["run_id"]) == (SYNC, run_id)
        assert attempt["outcome"] == ("activated" if expected.status == "active" else "checksum_error")
        loaded = invoice_db.lines("microsoft", invoice_id)
        assert len(loaded) == (expected.line_count if expected.status == "active" else 0), invoice_id
        if expected.status == "active" and expected.line_count >= workers_from and invoice_id not in active_before:
            ti = fetch[invoice_id]  # a large export: parsed and staged by worker processes of the task
            log = api.task_log(SYNC, run_id, "fetch", ti["try_number"], ti["map_index"])
            assert f"worker processes parse and stage invoice {invoice_id}" in log, log[-3000:]
            # The export was waited for by the triggerer, and the task resumed in a worker to stage it.
            assert f"Waiting on the triggerer for the reconciliation, usage export(s) of {invoice_id}" in log
            assert [line["line_no"] for line in loaded] == list(range(1, expected.line_count + 1))
            workers_checked = True
    assert workers_checked, "no demo invoice went through the staging workers"
    return tis
