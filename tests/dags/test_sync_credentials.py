"""Rotating refresh tokens through Airflow (``dag.test()``): the Task SDK keeps each rotation in the
Variable, the next run starts from it, and no token reaches a task log; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from include.providers.microsoft import sandbox as sandbox_microsoft
from plugins.hooks.refresh_token import variable_name
from tests.dags.helpers import run_dag, task_states
from tests.hooks.helpers import refresh_grant

DAG_ID = "provider_invoice_sync_microsoft"
VARIABLE = variable_name("partner_center_default")


@pytest.fixture
def stored_variable(airflow_db):
    """The Variable as the metadata database holds it; none before and after each test."""
    from airflow.models.variable import Variable

    Variable.delete(VARIABLE)
    yield lambda: Variable.get(VARIABLE, default_var=None)
    Variable.delete(VARIABLE)


def task_logs() -> str:
    """Every task log file ``dag.test()`` left in the Airflow home."""
    logs = Path(os.environ["AIRFLOW_HOME"]) / "logs"
    return "".join(path.read_text(errors="replace") for path in logs.rglob("*") if path.is_file())


def test_two_runs_in_a_row_keep_the_rotated_refresh_token(invoice_db, serve, demo_data_dir, stored_variable, capsys):
    server = serve(demo_data_dir, rotate_refresh_tokens=True)
    first = run_dag(DAG_ID)
    after_first = stored_variable()
    second = run_dag(DAG_ID)

    for run in (first, second):
        assert set(task_states(run, "list_invoices").values()) == {"success"}
        assert task_states(run, "fetch") and set(task_states(run, "fetch").values()) == {"success"}
    issued = server.issued_refresh_tokens
    assert after_first in issued and stored_variable() == issued[-1] != after_first
    refused = refresh_grant(server, after_first)
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_grant")  # spent by the second run

    logged = capsys.readouterr().out + task_logs()
    assert logged.count("list_invoices") >= 2  # the task logs were read
    for token in [sandbox_microsoft.REFRESH_TOKEN, *issued]:
        assert token not in logged


def test_an_expired_consent_fails_the_run_with_how_to_renew_it(
    invoice_db, serve, demo_data_dir, stored_variable, monkeypatch, capsys
):
    serve(demo_data_dir)
    conn = json.loads(os.environ["AIRFLOW_CONN_PARTNER_CENTER_DEFAULT"])
    conn["extra"]["refresh_token"] = "sbx-rt-consent-expired-90-days-ago"
    monkeypatch.setenv("AIRFLOW_CONN_PARTNER_CENTER_DEFAULT", json.dumps(conn))
    run = run_dag(DAG_ID)

    assert task_states(run, "list_invoices") == {"-1": "failed"}
    (listing,) = [ti for ti in run.get_task_instances() if ti.task_id == "list_invoices"]
    assert listing.try_number == 1  # no retry can renew a consent
    assert not task_states(run, "fetch") or set(task_states(run, "fetch").values()) == {"upstream_failed"}
    out = capsys.readouterr().out
    assert (
        "renew the consent and put its new refresh token into the Airflow Variable "
        "partner_center_default_refresh_token, which takes precedence over the connection's refresh_token field."
    ) in out
    assert "sbx-rt-consent-expired-90-days-ago" not in out
    assert stored_variable() is None
