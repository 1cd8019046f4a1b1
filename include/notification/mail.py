"""How our mails go out: recipients from an Airflow Variable, one text + HTML message through SmtpHook.

``SmtpHook.send_email_smtp`` can only build an HTML-only body, so the multipart message is built here
and handed to the client the hook opened: the hook still owns the connection (host, TLS, login,
OAuth2, timeout) as configured on ``smtp_default``. The sender is, like Airflow's: the caller's
``from_email``, else the connection's ``from_email`` extra, else ``[smtp] smtp_mail_from``.
"""

from __future__ import annotations

import json
from email.message import EmailMessage
from email.utils import formatdate, make_msgid


class MailSetupError(ValueError):
    """The mail cannot go out until someone fixes a Variable or connection; retrying will not help."""


def parse_recipients(raw: str | None, variable: str) -> list[str]:
    """Addresses from the JSON list in ``variable``; ``[]`` when it is unset or empty."""
    if raw is None or not raw.strip():
        return []
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, list) or not all(isinstance(a, str) and "@" in a for a in value):
        raise MailSetupError(
            f"Invalid recipients: the Airflow variable {variable} must be a JSON list of addresses such as "
            f'["billing@example.com"], not {raw[:80]!r}.'
        )
    return [address.strip() for address in value]


def read_recipients(variable: str) -> list[str]:
    from airflow.sdk import Variable

    return parse_recipients(Variable.get(variable, default=None), variable)


def _airflow_mail_from() -> str | None:
    """Airflow's own sender (``[smtp] smtp_mail_from``), what its e-mail backend uses when nothing else names one."""
    from airflow.providers.common.compat.sdk import conf

    return conf.get("smtp", "smtp_mail_from", fallback=None) or None


def send_mail(
    smtp_conn_id: str, *, to: list[str], subject: str, text: str, html: str, from_email: str | None = None
) -> dict:
    """Send one multipart/alternative mail; returns the recipients the server refused (usually ``{}``).

    Returns only once the server accepted the message; any connection or SMTP error propagates.
    """
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    with SmtpHook(smtp_conn_id) as hook:
        sender = from_email or hook.from_email or _airflow_mail_from()
        if not sender:
            raise MailSetupError(
                f"No sender: set from_email in the extra of the Airflow connection {smtp_conn_id}, "
                "or [smtp] smtp_mail_from in the Airflow configuration."
            )
        message = EmailMessage()
        message["Subject"] = subject
        message["From"] = sender
        message["To"] = ", ".join(to)
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2])
        message.set_content(text)
        message.add_alternative(html, subtype="html")
        return hook._smtp_client.send_message(message)
