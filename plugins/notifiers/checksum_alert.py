"""Immediate mail when a ``checksum_validation`` task fails: the on-call report and the log link.

Off by default. It is attached as ``on_failure_callback`` and sends only while the Airflow variable
``invoice_checksum_alert_recipients`` holds a JSON list of addresses; unset or ``[]`` means silent. A usage
checksum error is retried by the next scheduled run and alerts only from its escalation day on
(``usage_escalation_day``): before that its exception says ``alert = False``.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from airflow.sdk import BaseNotifier

if TYPE_CHECKING:
    from airflow.sdk import Context

ALERT_RECIPIENTS_VARIABLE = "invoice_checksum_alert_recipients"


class ChecksumAlertNotifier(BaseNotifier):
    """Mail the failed task's exception message (header, detail, difference, likely cause) and its log URL."""

    template_fields = ("recipients_variable", "smtp_conn_id", "from_email")

    def __init__(
        self,
        *,
        recipients_variable: str = ALERT_RECIPIENTS_VARIABLE,
        smtp_conn_id: str = "smtp_default",
        from_email: str | None = None,
    ):
        super().__init__()
        self.recipients_variable = recipients_variable
        self.smtp_conn_id = smtp_conn_id
        self.from_email = from_email

    def notify(self, context: Context) -> None:
        from include.notification.mail import read_recipients, send_mail

        if getattr(context.get("exception"), "alert", True) is False:
            self.log.info("No checksum alert: the failure is retried by the next scheduled run, not escalated yet.")
            return
        recipients = read_recipients(self.recipients_variable)
        if not recipients:
            self.log.info("Checksum alert is off: the Airflow variable %s is not set.", self.recipients_variable)
            return
        ti = context["ti"]
        what = f"{ti.dag_id} / {ti.task_id}" + (f" [{ti.rendered_map_index}]" if ti.rendered_map_index else "")
        error = str(context.get("exception") or "no exception message was recorded")
        log_url = ti.log_url
        text = f"{what} failed (run {ti.run_id}, try {ti.try_number}).\n\n{error}\n\nTask log: {log_url}\n"
        body = (
            f"<html><body><p><b>{html.escape(what)}</b> failed (run {html.escape(ti.run_id)}, "
            f"try {ti.try_number}).</p><pre>{html.escape(error)}</pre>"
            f'<p><a href="{html.escape(log_url)}">Task log</a></p></body></html>'
        )
        send_mail(
            self.smtp_conn_id,
            to=recipients,
            subject=f"[CHECKSUM ERROR] {what}",
            text=text,
            html=body,
            from_email=self.from_email,
        )
