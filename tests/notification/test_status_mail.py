"""The daily status mail end to end: invoice DB on SQLite and PostgreSQL, a real SMTP server, real DAG."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from airflow.sdk.exceptions import AirflowFailException
from sqlalchemy import select

from include.notification.render import render_text
from include.sql.schema import invoice_notification
from include.sql.status_report import as_utc, build_report
from tests.notification.seeding import NOW, RECIPIENTS, SENDER

TASK_ID = "send_status_mail"


def _run(dag, *, run_id="manual__test", data_interval_start=None):
    interval_end = NOW if data_interval_start else None
    return dag.get_task(TASK_ID).execute(
        {"run_id": run_id, "data_interval_start": data_interval_start, "data_interval_end": interval_end}
    )


def test_first_window_covers_the_data_interval_or_the_last_24_hours():
    from plugins.operators.notification import first_window_start

    day_before = NOW - timedelta(days=1)
    assert first_window_start({"data_interval_start": day_before, "data_interval_end": NOW}, NOW) == day_before
    # A cron-triggered (or `airflow dags test`) run has an empty interval right before "now".
    empty = {"data_interval_start": NOW - timedelta(seconds=5), "data_interval_end": NOW - timedelta(seconds=5)}
    assert first_window_start(empty, NOW) == NOW - timedelta(hours=24)


def _bodies(message) -> tuple[str, str]:
    return message.get_body(("plain",)).get_content(), message.get_body(("html",)).get_content()


def _notifications(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(select(invoice_notification).order_by(invoice_notification.c.sent_at)).all()


def test_busy_day_mail_tells_what_needs_attention(invoice_db, seed, smtp_server, recipients, notification_dag):
    seed.busy_day()

    _run(notification_dag)

    [envelope] = smtp_server.envelopes
    assert (envelope.mail_from, sorted(envelope.rcpt_tos)) == (SENDER, sorted(RECIPIENTS))
    [message] = smtp_server.messages()
    sent = _notifications(invoice_db.engine)[-1]
    day = as_utc(sent.window_end).date().isoformat()
    assert message["Subject"] == (
        f"[ACTION NEEDED] Provider invoices {day}: 1 checksum error, 1 failure, 1 still waiting, "
        "2 activated, 1 deactivated"
    )
    assert message["To"] == ", ".join(RECIPIENTS)
    text, html = _bodies(message)
    for body in (text, html):
        for expected in (
            "Microsoft Partner Center",
            "G-CHK: header 1,000.00, detail 989.6625 in 1,412 lines, difference 10.3375 EUR",
            "Likely cause: late usage lines (10.3375 EUR)",
            "wait a day and re-run the sync",
            "G-ACT-1: 1,234.50 EUR",
            "G-FIXED: 99.99 EUR",
            "S-FAIL: failed at",
            "G-DEACT: deactivated by bob",
            "Reason: Partner Center re-issued the invoice",
            "G-OLD: checksum error since",
            "difference -3.20 EUR",
        ):
            assert expected in body, expected
        assert "G-YESTERDAY" not in body
        assert "header tax" not in body  # only the best-ranked hint
    task_url = "http://airflow.local/dags/provider_invoice_sync_microsoft/runs/r1/tasks/checksum_validation"
    assert f"Airflow task: {task_url}?x=1&y=2" in text
    assert f'<a href="{task_url}?x=1&amp;y=2">Airflow task</a>' in html
    assert "Ion API answered 500 <boom>" in text
    assert "Ion API answered 500 &lt;boom&gt;" in html and "<boom>" not in html
    assert json.loads(sent.recipients) == RECIPIENTS
    assert sent.subject == message["Subject"]
    assert as_utc(sent.window_start) == NOW - timedelta(hours=24)  # where the previous mail ended


def test_report_counts_the_latest_outcome_per_invoice(invoice_db, seed):
    seed.busy_day()

    report = build_report(invoice_db.engine, NOW - timedelta(hours=24), NOW)

    def ids(entries):
        return [entry.invoice_id for entry in entries]

    assert ids(report.activated) == ["G-ACT-1", "G-FIXED"]  # G-FIXED's checksum error was fixed later
    assert ids(report.checksum_errors) == ["G-CHK"]
    assert ids(report.failures) == ["S-FAIL"]
    assert [(e.invoice_id, e.by) for e in report.deactivations] == [("G-DEACT", "bob")]
    assert [(e.invoice_id, e.task_url) for e in report.waiting] == [("G-OLD", "http://airflow.local/old")]
    [error] = report.checksum_errors
    assert (error.difference, error.hint.amount, error.hint.cause) == (
        Decimal("10.3375"),
        Decimal("10.3375"),
        "late usage lines",
    )
    assert report.needs_attention
    assert report.several_accounts == frozenset()
    assert "G-CHK (partner_center_default)" not in render_text(report)  # one account: no account to name


def test_the_mail_names_the_account_of_a_provider_with_several(invoice_db, seed):
    seed.invoice("G-EMEA", "active", header_total=Decimal("5"), account="partner_center_emea")
    seed.attempt("G-EMEA", "activated", header_total=Decimal("5"), account="partner_center_emea")
    seed.invoice("G-APAC", "failed", account="partner_center_apac")
    seed.attempt("G-APAC", "failed", message="The fetch failed.", account="partner_center_apac")
    seed.invoice("S-ONE", "active", provider="synnex", header_total=Decimal("7"))
    seed.attempt("S-ONE", "activated", provider="synnex", header_total=Decimal("7"))

    report = build_report(invoice_db.engine, NOW - timedelta(hours=24), NOW)
    text = render_text(report)

    assert report.several_accounts == frozenset({"microsoft"})
    assert "G-EMEA (partner_center_emea): 5.00 EUR" in text
    assert "G-APAC (partner_center_apac): failed at" in text
    assert "S-ONE: 7.00 EUR" in text  # TD SYNNEX has one account


def test_nothing_new_is_an_ok_mail_and_the_next_window_continues(invoice_db, smtp_server, recipients, notification_dag):
    interval_start = NOW - timedelta(hours=24)

    _run(notification_dag, run_id="scheduled__1", data_interval_start=interval_start)
    _run(notification_dag, run_id="scheduled__2", data_interval_start=interval_start)

    first, second = smtp_server.messages()
    rows = _notifications(invoice_db.engine)
    assert first["Subject"] == f"[OK] Provider invoices {as_utc(rows[0].window_end).date()}: nothing new"
    assert "Nothing new." in _bodies(first)[0] and "Nothing new." in _bodies(first)[1]
    assert [row.run_id for row in rows] == ["scheduled__1", "scheduled__2"]
    assert as_utc(rows[0].window_start) == interval_start
    assert as_utc(rows[1].window_start) == as_utc(rows[0].window_end)


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (None, "No recipients: set the Airflow variable invoice_notification_recipients to a JSON list"),
        ("[]", "No recipients: set the Airflow variable invoice_notification_recipients to a JSON list"),
        ("billing@reseller.example", "Invalid recipients: the Airflow variable invoice_notification_recipients"),
        ('["nobody"]', "Invalid recipients: the Airflow variable invoice_notification_recipients"),
    ],
)
def test_no_recipients_fails_clearly_and_sends_nothing(
    invoice_db, seed, smtp_server, notification_dag, monkeypatch, raw, error
):
    seed.busy_day()
    if raw is None:
        monkeypatch.delenv("AIRFLOW_VAR_INVOICE_NOTIFICATION_RECIPIENTS", raising=False)
    else:
        monkeypatch.setenv("AIRFLOW_VAR_INVOICE_NOTIFICATION_RECIPIENTS", raw)

    with pytest.raises(AirflowFailException, match=error):
        _run(notification_dag)

    assert smtp_server.envelopes == []
    assert len(_notifications(invoice_db.engine)) == 1  # only the seeded earlier mail


def test_smtp_down_fails_for_a_retry_and_marks_nothing_sent(invoice_db, seed, smtp_down, recipients, notification_dag):
    seed.busy_day()

    with pytest.raises(ConnectionRefusedError):  # not AirflowFailException: the DAG's retries apply
        _run(notification_dag)

    assert len(_notifications(invoice_db.engine)) == 1


def test_dag_run_sends_the_mail(airflow_db, invoice_db, seed, smtp_server, recipients, notification_dag):
    seed.busy_day()

    dag_run = notification_dag.test()

    assert dag_run.get_task_instance(TASK_ID).state == "success"
    [message] = smtp_server.messages()
    assert message["Subject"].startswith("[ACTION NEEDED] Provider invoices")
    assert _notifications(invoice_db.engine)[-1].subject == message["Subject"]


def test_a_connection_without_from_email_sends_as_airflow_does(
    airflow_db, invoice_db, seed, smtp_server_without_sender, recipients, notification_dag, monkeypatch
):
    monkeypatch.setenv("AIRFLOW__SMTP__SMTP_MAIL_FROM", "airflow@reseller.example")
    seed.busy_day()

    dag_run = notification_dag.test()

    assert dag_run.get_task_instance(TASK_ID).state == "success"
    [envelope] = smtp_server_without_sender.envelopes
    assert envelope.mail_from == "airflow@reseller.example"
    assert smtp_server_without_sender.messages()[0]["From"] == "airflow@reseller.example"


def test_no_sender_anywhere_fails_with_one_sentence(invoice_db, smtp_server_without_sender, recipients, monkeypatch):
    from include.notification.mail import MailSetupError, send_mail

    monkeypatch.setenv("AIRFLOW__SMTP__SMTP_MAIL_FROM", "")

    with pytest.raises(MailSetupError) as error:
        send_mail("smtp_default", to=recipients, subject="s", text="t", html="<p>t</p>")

    assert str(error.value) == (
        "No sender: set from_email in the extra of the Airflow connection smtp_default, "
        "or [smtp] smtp_mail_from in the Airflow configuration."
    )
    assert smtp_server_without_sender.envelopes == []


def test_dag_run_without_recipients_fails_without_retrying(
    airflow_db, invoice_db, smtp_server, notification_dag, monkeypatch
):
    monkeypatch.delenv("AIRFLOW_VAR_INVOICE_NOTIFICATION_RECIPIENTS", raising=False)

    dag_run = notification_dag.test()

    ti = dag_run.get_task_instance(TASK_ID)
    assert (ti.state, ti.try_number) == ("failed", 1)
    assert smtp_server.envelopes == []
    assert _notifications(invoice_db.engine) == []
