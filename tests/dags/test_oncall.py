"""What the on-call engineer sees: the report at the top of a failed checksum log, settings errors."""

from __future__ import annotations

import json
from decimal import Decimal

from include.providers.microsoft.demo import EXPECTED as MICROSOFT_DEMO
from tests.dags.helpers import run_dag

MANUAL = "provider_invoice_manual_sync"
CREDIT_NOTE = next(i for i, e in MICROSOFT_DEMO.items() if e.difference == Decimal("-1329.7525"))
BALANCED = next(i for i, e in MICROSOFT_DEMO.items() if e.status == "active" and e.difference == 0)


def _run(invoice_id):
    dag_run = run_dag(MANUAL, {"provider": "microsoft", "invoice_id": invoice_id})
    return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


def test_failed_checksum_log_starts_with_the_report(airflow_db, invoice_db, provider_connections, capsys, monkeypatch):
    from plugins.notifiers.checksum_alert import ChecksumAlertNotifier

    alerted = []
    monkeypatch.setattr(ChecksumAlertNotifier, "notify", lambda self, context: alerted.append(context["exception"]))

    states = _run(CREDIT_NOTE)

    assert states["checksum_validation"] == "failed"
    log = capsys.readouterr().out
    report = log[log.index("Checksum FAILED") :]
    for expected in ("Header total", "Detail total", "-1329.7525", "Tolerance", "licence", "credit_note", "Data Docs:"):
        assert expected in report, expected
    assert "override_tolerance=1330" in report  # the suggested action, ready to paste
    attempt = invoice_db.attempts("microsoft", CREDIT_NOTE)[-1]
    diagnostics = json.loads(attempt["diagnostics"])
    assert diagnostics["hints"][0]["cause"] == "credit_note"
    assert Decimal(diagnostics["hints"][0]["amount"]) == Decimal("-1329.7525")
    assert attempt["task_url"] and "checksum_validation" in attempt["task_url"]
    # the report is the whole story: the runner's failure line says the sentence, no stack follows it
    assert "Traceback" not in log and "Task failed with exception" not in log
    assert f"Task failed: {attempt['message']}" in log[log.index("Checksum FAILED") :]
    assert attempt["message"].endswith("exactly.") and not attempt["message"].endswith("..")
    assert [str(error) for error in alerted] == [attempt["message"]]  # the failure callback still runs


def test_an_unexpected_checksum_failure_keeps_its_traceback(
    airflow_db, invoice_db, provider_connections, monkeypatch, capsys
):
    import include.checksum.run

    def crash(*args, **kwargs):
        raise ConnectionError("database went away")

    monkeypatch.setattr(include.checksum.run, "run_checksum", crash)

    assert _run(CREDIT_NOTE)["checksum_validation"] == "failed"
    log = capsys.readouterr().out
    failed_at = log.index("Task failed with exception")
    assert "Traceback (most recent call last)" in log[failed_at:]
    assert "database went away" in log[failed_at:]


def test_inactive_currency_blocks_activation(airflow_db, invoice_db, provider_connections, monkeypatch, capsys):
    monkeypatch.setenv("AIRFLOW_VAR_INVOICE_SYNC_SETTINGS", json.dumps({"microsoft": {"active_currencies": ["USD"]}}))

    states = _run(BALANCED)

    assert (states["load"], states["activate"]) == ("success", "failed")
    assert "is in EUR, which is not an active currency for Microsoft Partner Center" in capsys.readouterr().out
    invoice = invoice_db.get_invoice("microsoft", BALANCED)
    assert invoice["status"] == "inactive" and "not an active currency" in invoice["status_message"]
    assert invoice_db.attempts("microsoft", BALANCED)[-1]["outcome"] == "activation_blocked"


def test_bad_settings_fail_with_the_key_and_reason(airflow_db, invoice_db, provider_connections, monkeypatch, capsys):
    monkeypatch.setenv("AIRFLOW_VAR_INVOICE_SYNC_SETTINGS", '{"microsoft": {"usage_mismatch_tolerance": -2}}')

    states = _run(BALANCED)

    assert states["fetch"] == "failed"  # refused before anything is downloaded or written
    assert "invoice_sync_settings.microsoft.usage_mismatch_tolerance must be zero or more" in capsys.readouterr().out
    assert invoice_db.get_invoice("microsoft", BALANCED) is None
    assert invoice_db.attempts("microsoft", BALANCED) == []
