"""A real SMTP server on 127.0.0.1, ``smtp_default`` pointed at it, and rows seeded into the invoice DB."""

from __future__ import annotations

import email
import email.policy
import json
import socket

import pytest

from tests.notification.seeding import RECIPIENTS, SENDER, Seeder


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _point_smtp_default_at(monkeypatch, port: int, sender: str | None = SENDER) -> None:
    extra = {"disable_tls": True, "disable_ssl": True, "timeout": 5, "retry_limit": 0}
    conn = {
        "conn_type": "smtp",
        "host": "127.0.0.1",
        "port": port,
        "extra": extra | ({"from_email": sender} if sender else {}),
    }
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps(conn))


class _Collector:
    """aiosmtpd handler that keeps every message the server accepted."""

    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def messages(self) -> list[email.message.EmailMessage]:
        return [email.message_from_bytes(e.content, policy=email.policy.default) for e in self.envelopes]


def _smtp_server(monkeypatch, sender: str | None):
    from aiosmtpd.controller import Controller

    collector = _Collector()
    controller = Controller(collector, hostname="127.0.0.1", port=_free_port())
    controller.start()
    _point_smtp_default_at(monkeypatch, controller.port, sender)
    yield collector
    controller.stop()


@pytest.fixture
def smtp_server(monkeypatch) -> _Collector:
    yield from _smtp_server(monkeypatch, SENDER)


@pytest.fixture
def smtp_server_without_sender(monkeypatch) -> _Collector:
    """As a user sets it up in the UI: the ``smtp_default`` connection has no ``from_email``."""
    yield from _smtp_server(monkeypatch, None)


@pytest.fixture
def smtp_down(monkeypatch) -> None:
    """``smtp_default`` points at a port where nothing listens."""
    _point_smtp_default_at(monkeypatch, _free_port())


@pytest.fixture
def recipients(monkeypatch) -> list[str]:
    monkeypatch.setenv("AIRFLOW_VAR_INVOICE_NOTIFICATION_RECIPIENTS", json.dumps(RECIPIENTS))
    return RECIPIENTS


@pytest.fixture
def seed(invoice_db) -> Seeder:
    return Seeder(invoice_db.engine)


@pytest.fixture
def notification_dag():
    """The DAG of the real DAG file, parsed the way the DAG processor parses it."""
    from pathlib import Path

    from airflow.dag_processing.dagbag import DagBag

    path = Path(__file__).resolve().parents[2] / "dags" / "provider_invoice_daily_notification.py"
    bag = DagBag(dag_folder=str(path))
    assert bag.import_errors == {}
    return bag.dags["provider_invoice_daily_notification"]
