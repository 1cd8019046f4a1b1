"""A local mail catcher (a real SMTP server on 127.0.0.1) for the demo and the tests.

Each accepted message is kept in memory and, when a directory is given, written there as an
``.eml`` file that any mail client opens.
"""

from __future__ import annotations

import email
import email.policy
import itertools
import logging
import socket
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path


@dataclass
class CaughtMail:
    envelope_from: str
    envelope_to: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def body(self, subtype: str = "plain") -> str:
        part = self.message.get_body(preferencelist=(subtype,))
        return part.get_content() if part is not None else ""


@dataclass
class _Handler:
    directory: Path | None
    messages: list[CaughtMail] = field(default_factory=list)
    _counter: itertools.count = field(default_factory=lambda: itertools.count(1))

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append(CaughtMail(envelope.mail_from, list(envelope.rcpt_tos), message))
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            (self.directory / f"mail-{next(self._counter):03d}.eml").write_bytes(envelope.content)
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MailCatcher:
    """``with MailCatcher() as mail: ...`` serves SMTP on ``mail.port`` until the block ends."""

    def __init__(self, directory: Path | None = None, port: int | None = None):
        self.port = port or free_port()
        self._handler = _Handler(directory)
        self._controller = None

    @property
    def messages(self) -> list[CaughtMail]:
        return self._handler.messages

    def connection(self) -> dict:
        """The ``smtp_default`` connection that points at this catcher (plain SMTP, no TLS)."""
        return {
            "conn_type": "smtp",
            "host": "127.0.0.1",
            "port": self.port,
            "extra": {"disable_tls": True, "disable_ssl": True, "from_email": "invoice-sync@localhost"},
        }

    def __enter__(self) -> MailCatcher:
        from aiosmtpd.controller import Controller

        logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP verb at INFO
        self._controller = Controller(self._handler, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self._controller.stop()
