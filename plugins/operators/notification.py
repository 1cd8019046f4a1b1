"""``send_status_mail``: the daily sync status summary for billing staff."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

if TYPE_CHECKING:
    from airflow.sdk import Context

RECIPIENTS_VARIABLE = "invoice_notification_recipients"


class InvoiceStatusMailOperator(BaseOperator):
    """Mail what happened since the last mail that went out, then record that this one went out.

    The ``invoice_notification`` row is written only after the SMTP server accepted the message, so
    a mail that was never sent is never counted as sent: the next run reports its events again (and
    if recording fails after the send, the retry mails again: a duplicate beats a lost summary).
    Missing or invalid recipients (or no sender) fail the task without retries; an unreachable
    mail server fails it normally, so the DAG's retries apply.
    """

    template_fields: Sequence[str] = ("recipients_variable", "smtp_conn_id", "invoice_db_conn_id", "from_email")
    ui_color = "#fff4e0"

    def __init__(
        self,
        *,
        recipients_variable: str = RECIPIENTS_VARIABLE,
        smtp_conn_id: str = "smtp_default",
        invoice_db_conn_id: str = "invoice_db",
        from_email: str | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.recipients_variable = recipients_variable
        self.smtp_conn_id = smtp_conn_id
        self.invoice_db_conn_id = invoice_db_conn_id
        self.from_email = from_email

    def execute(self, context: Context) -> dict:
        from include.notification.mail import MailSetupError, read_recipients, send_mail
        from include.notification.render import render
        from include.sql.status_report import build_report, record_notification, window_start
        from plugins.hooks.invoice_db import InvoiceDbHook

        try:
            recipients = read_recipients(self.recipients_variable)
        except MailSetupError as err:
            raise AirflowFailException(str(err)) from None
        if not recipients:
            raise AirflowFailException(
                f"No recipients: set the Airflow variable {self.recipients_variable} to a JSON list of addresses."
            )

        engine = InvoiceDbHook(self.invoice_db_conn_id).get_engine()
        end = datetime.now(UTC)
        report = build_report(engine, window_start(engine, fallback=first_window_start(context, end)), end)
        mail = render(report)
        try:
            refused = send_mail(
                self.smtp_conn_id,
                to=recipients,
                subject=mail.subject,
                text=mail.text,
                html=mail.html,
                from_email=self.from_email,
            )
        except MailSetupError as err:
            raise AirflowFailException(str(err)) from None
        if refused:
            self.log.warning("The mail server refused these recipients: %s", refused)
        record_notification(
            engine,
            dag_id=self.dag_id,
            run_id=context["run_id"],
            report=report,
            recipients=recipients,
            subject=mail.subject,
            sent_at=datetime.now(UTC),
        )
        self.log.info("Sent %r to %s", mail.subject, ", ".join(recipients))
        return {"subject": mail.subject, "window_start": report.window_start.isoformat(), "recipients": recipients}


def first_window_start(context: Context, end: datetime) -> datetime:
    """Before any mail was sent: the run's data interval start, or 24 hours when the interval is empty.

    Cron schedules (``CronTriggerTimetable``) give runs an empty interval, hence the 24 hours.
    """
    start, interval_end = context.get("data_interval_start"), context.get("data_interval_end")
    return (
        start if start is not None and interval_end is not None and start < interval_end else end - timedelta(hours=24)
    )
