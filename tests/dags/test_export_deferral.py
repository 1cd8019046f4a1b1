"""The fetch defers while Microsoft prepares its Graph exports, through Airflow (``dag.test()``), on SQLite and
PostgreSQL.

``dag.test()`` runs a deferred task's trigger in line (as the triggerer would) and resumes the task with its
event. The trigger's waits are recorded instead of slept (:attr:`PartnerCenterExportTrigger.sleep`), so a slow
export takes no wall-clock time here.
"""

from __future__ import annotations

import shutil
from datetime import timedelta

import pytest

from include.providers.microsoft.demo import EXPECTED as MICROSOFT_DEMO
from include.sql.usage import usage_lines
from plugins.hooks.http import ProviderHttpHook
from plugins.triggers.partner_center import PartnerCenterExportTrigger
from tests.dags.helpers import run_dag

DAG_ID = "provider_invoice_sync_microsoft"
INVOICE = "G0525A0005"
"""An active demo invoice whose one-time lines and daily-rated usage come from the two Graph exports."""
EXTRAS = {"max_retries": 2, "retry_backoff": 0.01, "max_retry_wait": 60}
RETRY_AFTER = 7
SANDBOX_STATE = "include.providers.microsoft.sandbox"


@pytest.fixture
def slow_export(tmp_path, demo_data_dir, monkeypatch):
    """A sandbox serving one v2 invoice whose exports stay running for three polls (Retry-After: 7 s)."""
    from include.sandbox import SandboxServer

    data = tmp_path / "data"
    shutil.copytree(demo_data_dir / "microsoft" / INVOICE, data / "microsoft" / INVOICE)
    with SandboxServer(data, export_polls=3, export_retry_after=RETRY_AFTER) as server:
        for name, value in server.env(EXTRAS).items():
            monkeypatch.setenv(name, value)
        yield server


@pytest.fixture
def waits(monkeypatch) -> dict[str, list[float]]:
    """The trigger's waits and the hook's (which must stay empty: no worker waits for an export)."""
    recorded: dict[str, list[float]] = {"trigger": [], "hook": []}

    async def trigger_sleep(seconds: float) -> None:
        recorded["trigger"].append(seconds)

    monkeypatch.setattr(PartnerCenterExportTrigger, "sleep", staticmethod(trigger_sleep))
    monkeypatch.setattr(ProviderHttpHook, "sleep", staticmethod(recorded["hook"].append))
    return recorded


def _posts(server) -> list[str]:
    return [r["path"].rsplit("/", 3)[-3] for r in server.requests if r["method"] == "POST" and "/export" in r["path"]]


def _fetch(dag_run):
    return next(ti for ti in dag_run.get_task_instances() if ti.task_id == "fetch")


def test_a_slow_export_is_waited_for_on_the_triggerer(airflow_db, invoice_db, slow_export, waits):
    dag_run = run_dag(DAG_ID)

    assert waits["trigger"] == [RETRY_AFTER] * 3  # both operations polled each round, Retry-After honoured
    assert waits["hook"] == []
    assert sorted(_posts(slow_export)) == ["reconciliation", "usage"]
    assert _fetch(dag_run).state == "success"
    expected = MICROSOFT_DEMO[INVOICE]
    invoice = invoice_db.get_invoice("microsoft", INVOICE)
    assert (invoice["status"], invoice["line_count"]) == ("active", expected.line_count)
    assert len(invoice_db.lines("microsoft", INVOICE)) == expected.line_count
    assert len(usage_lines(invoice_db.engine, "microsoft", INVOICE)) == expected.usage_lines
    attempt = invoice_db.attempts("microsoft", INVOICE)[-1]
    assert attempt["outcome"] == "activated"
    assert set(invoice_db.export_operations(_key(attempt))) == {"reconciliation", "usage"}


def test_a_retry_after_the_deferral_waits_for_the_same_exports(airflow_db, invoice_db, slow_export, waits, monkeypatch):
    """The first resume fails downloading (three 503s, more than the hook's retries); the task's retry finds the
    operations recorded on its attempt and resumes them: Microsoft is asked for each export once."""
    from include import dag_builder

    monkeypatch.setitem(dag_builder.DEFAULT_ARGS, "retry_delay", timedelta(0))
    slow_export.add_fault("status", r"^/blobs/billing/", times=EXTRAS["max_retries"] + 1, status=503)

    dag_run = run_dag(DAG_ID)

    fetch = _fetch(dag_run)
    assert (fetch.state, fetch.try_number) == ("success", 2)
    assert sorted(_posts(slow_export)) == ["reconciliation", "usage"]
    assert invoice_db.get_invoice("microsoft", INVOICE)["status"] == "active"
    assert len(invoice_db.lines("microsoft", INVOICE)) == MICROSOFT_DEMO[INVOICE].line_count


def test_a_failed_export_ends_the_fetch_with_one_sentence(airflow_db, invoice_db, slow_export, monkeypatch):
    async def microsoft_gives_up(seconds: float) -> None:  # while the trigger waits, the operations fail
        for operation in slow_export.state(SANDBOX_STATE)["operations"].values():
            operation["invoice"] = "G0000GONE"

    monkeypatch.setattr(PartnerCenterExportTrigger, "sleep", staticmethod(microsoft_gives_up))

    dag_run = run_dag(DAG_ID)

    assert (_fetch(dag_run).state, _fetch(dag_run).try_number) == ("failed", 1)  # no retry can help
    sentence = f"The reconciliation export of invoice {INVOICE} failed: 5000 No data available."
    assert invoice_db.attempts("microsoft", INVOICE)[-1]["message"] == sentence
    assert invoice_db.get_invoice("microsoft", INVOICE)["status"] == "failed"
    assert invoice_db.lines("microsoft", INVOICE) == []


def test_an_expired_operation_ends_the_fetch_with_one_sentence(airflow_db, invoice_db, slow_export, waits):
    slow_export.add_fault("status", r"/operations/", times=1, status=404)

    dag_run = run_dag(DAG_ID)

    assert _fetch(dag_run).state == "failed"
    message = invoice_db.attempts("microsoft", INVOICE)[-1]["message"]
    assert message == (
        f"Microsoft no longer knows the reconciliation export operation of invoice {INVOICE} (expired); "
        "the next run starts a new export."
    )


def _key(attempt: dict):
    from include.sql.store import AttemptKey

    return AttemptKey(attempt["provider"], attempt["invoice_id"], attempt["dag_id"], attempt["run_id"])


def test_a_hung_provider_call_is_cut_by_the_execution_timeout(airflow_db, invoice_db, slow_export, monkeypatch):
    """The DAGs' execution_timeout (include/dag_builder.py) ends a try whose provider call hangs, and the attempt
    says so; here 3 s against an invoice request the sandbox holds for 60 s."""
    from include import dag_builder

    monkeypatch.setitem(dag_builder.DEFAULT_ARGS, "execution_timeout", timedelta(seconds=3))
    monkeypatch.setitem(dag_builder.DEFAULT_ARGS, "retries", 0)
    slow_export.add_fault("delay", rf"/v1/invoices/{INVOICE}$", times=1, delay=60)

    dag_run = run_dag(DAG_ID)

    assert _fetch(dag_run).state == "failed"
    attempt = invoice_db.attempts("microsoft", INVOICE)[-1]
    assert attempt["outcome"] == "failed"
    assert attempt["message"] == (
        f"The fetch of microsoft invoice {INVOICE} ran longer than its execution_timeout and was stopped."
    )
