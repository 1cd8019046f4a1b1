"""Run a DAG the way ``airflow dags test`` does, and read back what each task instance did."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

DAGS = Path(__file__).resolve().parents[2] / "dags"


def load_dag(dag_id: str):
    from airflow.dag_processing.dagbag import DagBag

    dagbag = DagBag(dag_folder=str(DAGS / f"{dag_id}.py"))
    assert dagbag.import_errors == {}
    return dagbag.dags[dag_id]


def run_dag(dag_id: str, conf: dict | None = None):
    """``dag.test()`` in-process; returns the finished DagRun."""
    return load_dag(dag_id).test(run_conf=conf)


def task_states(dag_run, task_id: str) -> dict[str, str]:
    """``rendered map index (or task id) -> state`` of one task's instances in ``dag_run``."""
    return {
        (ti.rendered_map_index or str(ti.map_index)): ti.state
        for ti in dag_run.get_task_instances()
        if ti.task_id == task_id
    }


def assert_synced(store, dag_run, provider: str, expectations: dict) -> None:
    """Every invoice of ``expectations`` has the expected status, exact difference, lines and attempt in ``dag_run``."""
    checksum_states = task_states(dag_run, "checksum_validation")
    for invoice_id, expected in expectations.items():
        invoice = store.get_invoice(provider, invoice_id)
        assert invoice["status"] == expected.status, invoice_id
        assert invoice["difference"] == expected.difference, invoice_id
        assert invoice["header_total"] - invoice["detail_total"] == expected.difference
        loaded = store.lines(provider, invoice_id)
        attempt = store.attempts(provider, invoice_id)[-1]
        assert (attempt["dag_id"], attempt["run_id"]) == (dag_run.dag_id, dag_run.run_id)
        assert attempt["difference"] == expected.difference
        if expected.status == "active":
            assert attempt["outcome"] == "activated"
            assert len(loaded) == expected.line_count == invoice["line_count"]
            assert checksum_states[f"{provider} {invoice_id}"] == "success"
        else:
            assert attempt["outcome"] == "checksum_error"
            assert loaded == []  # a failed checksum loads nothing
            assert invoice["line_count"] == expected.line_count  # the lines it validated, for billing staff
            assert checksum_states[f"{provider} {invoice_id}"] == "failed"
            assert "Checksum error" in attempt["message"] and attempt["diagnostics"]
        assert_usage(store, provider, invoice_id, expected, attempt)


def assert_usage(store, provider: str, invoice_id: str, expected, attempt: dict) -> None:
    """The daily-rated usage an invoice loaded (all of it when active, none otherwise) and the usage difference
    its checksum saw, exactly."""
    from include.sql.usage import usage_lines

    usage = usage_lines(store.engine, provider, invoice_id)
    assert len(usage) == (expected.usage_lines if expected.status == "active" else 0), invoice_id
    checked = json.loads(attempt["diagnostics"] or "{}").get("usage")
    if expected.usage_difference is None:
        assert checked is None, invoice_id
    elif checked is not None or expected.status == "active":
        assert Decimal(checked["difference"]) == expected.usage_difference, invoice_id
