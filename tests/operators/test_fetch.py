"""The fetch's deferral as the task runner drives it, on SQLite and PostgreSQL: what it defers to, and the
sentence it ends with when Airflow times the wait out (the scheduler resumes it with ``__fail__``)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from airflow.sdk.bases.operator import TRIGGER_FAIL_REPR, TriggerFailureReason
from airflow.sdk.exceptions import TaskDeferred

from include.sql.stage import open_stages
from include.sql.store import AttemptKey
from plugins.operators.base import InvoiceTaskError
from plugins.operators.fetch import FetchInvoiceOperator

INVOICE = "G0525A0005"
"""A demo invoice whose lines come from the Graph exports."""
CONTEXT = {
    "dag": SimpleNamespace(dag_id="provider_invoice_sync_microsoft"),
    "run_id": "scheduled__1",
    "ti": SimpleNamespace(log_url="http://airflow/log", try_number=1, max_tries=2),
    "dag_run": SimpleNamespace(triggering_user_name=None, run_type="scheduled"),
}
KEY = AttemptKey("microsoft", INVOICE, "provider_invoice_sync_microsoft", "scheduled__1")


def _fetch() -> FetchInvoiceOperator:
    return FetchInvoiceOperator(task_id="fetch", provider="microsoft", invoice_id=INVOICE)


def test_the_fetch_defers_with_no_secret_in_the_trigger(invoice_db, provider_connections):
    with pytest.raises(TaskDeferred) as deferred:
        _fetch().execute(CONTEXT)

    classpath, kwargs = deferred.value.trigger.serialize()
    assert classpath == "plugins.triggers.partner_center.PartnerCenterExportTrigger"
    assert kwargs == {
        "conn_id": "partner_center_default",
        "invoice_id": INVOICE,
        "operations": invoice_db.export_operations(KEY),
    }
    connection = json.loads(provider_connections.env()["AIRFLOW_CONN_PARTNER_CENTER_DEFAULT"])
    secrets = (connection["password"], connection["extra"]["refresh_token"])
    assert not any(secret in json.dumps(kwargs) for secret in secrets)
    assert deferred.value.method_name == "export_ready"
    assert deferred.value.timeout.total_seconds() == 1800
    assert open_stages(invoice_db.engine) == []  # nothing is staged while it waits
    assert invoice_db.attempts("microsoft", INVOICE)[-1]["outcome"] == "running"


def test_a_timed_out_wait_ends_with_a_sentence_and_leaves_the_retry_to_the_same_exports(
    invoice_db, provider_connections
):
    with pytest.raises(TaskDeferred):
        _fetch().execute(CONTEXT)
    operations = invoice_db.export_operations(KEY)

    with pytest.raises(InvoiceTaskError) as failed:  # not AirflowFailException: the task's retries apply
        _fetch().resume_execution(TRIGGER_FAIL_REPR, {"error": TriggerFailureReason.TRIGGER_TIMEOUT}, CONTEXT)

    sentence = (
        f"Microsoft Partner Center had not prepared the exports of invoice {INVOICE} after 30 minutes "
        "(connection extra export_timeout); a retry waits for the same exports."
    )
    assert str(failed.value) == sentence
    assert invoice_db.attempts("microsoft", INVOICE)[-1]["message"] == sentence
    assert invoice_db.export_operations(KEY) == operations  # kept for the retry
