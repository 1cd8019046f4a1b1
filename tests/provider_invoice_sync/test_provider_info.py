"""The installed distribution's connection types, as Airflow's providers manager and the UI see them, and
each provider hook's ``test_connection`` (the UI's *Test* button) the way the API server runs it."""

from __future__ import annotations

import json
import socket
import uuid

import pytest

from include.providers import PROVIDERS
from provider_invoice_sync import get_provider_info

FIELDS = {
    "partner_center": {"tenant_id", "refresh_token", "token_url", "graph_url", "v2_export_from"},
    "streamone_ion": {"account_id", "page_size", "billing_start_from"},
}


def test_the_providers_manager_offers_our_connection_types_and_the_database_ones():
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    assert "provider-invoice-sync" in manager.providers
    hooks = manager.hooks
    for spec in PROVIDERS.values():
        module, _, name = spec.hook_path.rpartition(".")
        hook_class = getattr(__import__(module, fromlist=[name]), name)
        info = hooks[hook_class.conn_type]
        assert (info.hook_class_name, info.hook_name, info.connection_testable) == (
            spec.hook_path,
            spec.display_name,
            True,
        )
        assert spec.sandbox().connection("http://127.0.0.1:1")["conn_type"] == hook_class.conn_type
    assert hooks["sqlite"].package_name == "apache-airflow-providers-sqlite"
    assert hooks["postgres"].package_name == "apache-airflow-providers-postgres"
    widgets = manager.connection_form_widgets
    for conn_type, fields in FIELDS.items():
        assert {w.field_name for k, w in widgets.items() if k.startswith(f"extra__{conn_type}__")} == fields
    assert widgets["extra__partner_center__refresh_token"].is_sensitive


def test_the_connections_form_shows_labelled_fields():
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

    meta = {m.connection_type: m for m in HookMetaService.hook_meta_data()}
    assert {"partner_center", "streamone_ion", "sqlite", "postgres"} <= set(meta)
    pc = meta["partner_center"]
    assert pc.hook_name == "Microsoft Partner Center"
    assert pc.extra_fields["tenant_id"]["schema"]["title"] == "Tenant ID"
    assert pc.extra_fields["refresh_token"]["schema"]["format"] == "password"
    assert pc.standard_fields.login.title == "Client ID" and pc.standard_fields.port.hidden
    assert meta["streamone_ion"].extra_fields["account_id"]["schema"]["title"] == "Account ID"
    assert meta["streamone_ion"].standard_fields.password.title == "API secret"


def test_the_provider_info_names_every_registered_provider_once():
    types = get_provider_info()["connection-types"]
    assert sorted(t["hook-class-name"] for t in types) == sorted(spec.hook_path for spec in PROVIDERS.values())


def ui_test(connection: dict, monkeypatch) -> tuple[bool, str]:
    """What ``POST /api/v2/connections/test`` does: a transient connection id, the connection exported as
    a URI under it, then ``Connection.test_connection()`` (the hook found by the connection type)."""
    from airflow.models.connection import Connection

    fields = {**connection, "extra": json.dumps(connection["extra"])}
    conn = Connection(conn_id=f"test_{uuid.uuid4().hex[:8]}", **fields)
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn.conn_id.upper()}", conn.get_uri())
    return conn.test_connection()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("conn_id", [spec.conn_id for spec in PROVIDERS.values()])
def test_the_test_button_reaches_the_invoice_list(demo_sandbox, conn_id, monkeypatch):
    demo_sandbox.clear_requests()
    status, message = ui_test(demo_sandbox.connections()[conn_id], monkeypatch)
    assert status, message
    assert message.startswith("Connected to ") and "invoice list answered" in message
    assert any("invoices" in entry["path"] and entry["status"] == 200 for entry in demo_sandbox.requests)


@pytest.mark.parametrize("conn_id", [spec.conn_id for spec in PROVIDERS.values()])
def test_the_test_button_reports_a_wrong_secret_in_one_sentence(demo_sandbox, conn_id, monkeypatch):
    connection = {**demo_sandbox.connections()[conn_id], "password": "wrong-secret-value"}
    status, message = ui_test(connection, monkeypatch)
    assert not status
    assert "refused the test" in message and "HTTP 401" in message
    assert "wrong-secret-value" not in message and message.count("\n") == 0


@pytest.mark.parametrize("conn_id", [spec.conn_id for spec in PROVIDERS.values()])
def test_the_test_button_reports_an_unreachable_host_at_once(demo_sandbox, conn_id, monkeypatch):
    connection = demo_sandbox.connections()[conn_id]
    unreachable = f"http://127.0.0.1:{closed_port()}"
    connection = {
        **connection,
        "host": connection["host"].replace(demo_sandbox.url, unreachable),
        "extra": {k: v.replace(demo_sandbox.url, unreachable) for k, v in connection["extra"].items()},
    }
    status, message = ui_test(connection, monkeypatch)
    assert not status
    assert "could not be reached" in message and "check the connection's host and URLs" in message
    assert connection["password"] not in message


def test_the_test_button_explains_a_refused_refresh_token(demo_sandbox, monkeypatch):
    connection = demo_sandbox.connections()["partner_center_default"]
    connection["extra"]["refresh_token"] = "sbx-rt-consent-expired-90-days-ago"
    status, message = ui_test(connection, monkeypatch)
    assert not status
    assert message == (
        "Microsoft Partner Center test failed: the refresh token was refused (invalid_grant: expired, revoked or "
        "already used); if the scheduled syncs still work, the connection's Refresh token field is older than the "
        "rotated token they keep in the Variable <connection id>_refresh_token, otherwise renew the consent and put "
        "its new refresh token into that Variable."
    )
