"""The optional immediate checksum alert, through a real SMTP server."""

from __future__ import annotations

import json
from types import SimpleNamespace

from airflow.sdk.exceptions import AirflowFailException

from plugins.notifiers.checksum_alert import ChecksumAlertNotifier

LOG_URL = "http://airflow.local/dags/provider_invoice_sync_microsoft/runs/r1/tasks/checksum_validation?try_number=1"


def _failure_context() -> dict:
    ti = SimpleNamespace(
        dag_id="provider_invoice_sync_microsoft",
        task_id="checksum_validation",
        rendered_map_index="microsoft G000042",
        run_id="scheduled__2026-11-23",
        try_number=1,
        log_url=LOG_URL,
    )
    error = AirflowFailException("Checksum error on G000042: header 100 - detail 90 = 10 <late usage>")
    return {"ti": ti, "exception": error}


def test_alert_mails_the_exception_and_log_link(smtp_server, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_INVOICE_CHECKSUM_ALERT_RECIPIENTS", json.dumps(["oncall@reseller.example"]))

    ChecksumAlertNotifier()(_failure_context())

    [envelope] = smtp_server.envelopes
    assert envelope.rcpt_tos == ["oncall@reseller.example"]
    [message] = smtp_server.messages()
    assert message["Subject"] == (
        "[CHECKSUM ERROR] provider_invoice_sync_microsoft / checksum_validation [microsoft G000042]"
    )
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "header 100 - detail 90 = 10 <late usage>" in text and LOG_URL in text
    assert "10 &lt;late usage&gt;" in html and f'href="{LOG_URL}"' in html


def test_alert_is_off_without_the_variable(smtp_server, monkeypatch):
    monkeypatch.delenv("AIRFLOW_VAR_INVOICE_CHECKSUM_ALERT_RECIPIENTS", raising=False)

    ChecksumAlertNotifier()(_failure_context())

    assert smtp_server.envelopes == []


def test_alert_without_from_email_on_the_connection_uses_airflows_sender(smtp_server_without_sender, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_INVOICE_CHECKSUM_ALERT_RECIPIENTS", json.dumps(["oncall@reseller.example"]))
    monkeypatch.setenv("AIRFLOW__SMTP__SMTP_MAIL_FROM", "airflow@reseller.example")

    ChecksumAlertNotifier()(_failure_context())

    [envelope] = smtp_server_without_sender.envelopes
    assert envelope.mail_from == "airflow@reseller.example"


def test_a_usage_error_before_its_escalation_day_does_not_alert(smtp_server, monkeypatch):
    from plugins.operators.base import OutcomeRecorded, UsageRetryPending

    monkeypatch.setenv("AIRFLOW_VAR_INVOICE_CHECKSUM_ALERT_RECIPIENTS", json.dumps(["oncall@reseller.example"]))
    context = _failure_context()

    ChecksumAlertNotifier()({**context, "exception": UsageRetryPending("daily-rated usage not published yet")})
    assert smtp_server.envelopes == []

    ChecksumAlertNotifier()({**context, "exception": OutcomeRecorded("Checksum error (Azure usage): escalated")})
    [message] = smtp_server.messages()
    assert "escalated" in message.get_body(("plain",)).get_content()
