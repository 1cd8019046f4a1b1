"""The ``invoice_db`` connection in the forms the README promises, each turned into one SQLAlchemy URL."""

from __future__ import annotations

import json

import pytest

from plugins.hooks.invoice_db import InvoiceDbHook, default_sqlite_path


def _url(monkeypatch, value: str):
    monkeypatch.setenv("AIRFLOW_CONN_INVOICE_DB", value)
    return InvoiceDbHook().get_url()


def test_sqlite_uri_with_an_absolute_path(monkeypatch, tmp_path):
    url = _url(monkeypatch, f"sqlite:///{tmp_path}/invoices.db")
    assert (url.drivername, url.database) == ("sqlite", f"{tmp_path}/invoices.db")


def test_sqlite_json_with_the_path_in_host_or_schema(monkeypatch, tmp_path):
    path = str(tmp_path / "invoices.db")
    assert _url(monkeypatch, json.dumps({"conn_type": "sqlite", "host": path})).database == path
    assert _url(monkeypatch, json.dumps({"conn_type": "sqlite", "schema": path})).database == path


def test_postgres_uri_keeps_an_encoded_password_exact(monkeypatch):
    url = _url(monkeypatch, "postgresql://billing:p%40ss%3Aw%2Frd@db.internal:6543/invoices")
    assert url.drivername == "postgresql+psycopg"
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "billing",
        "p@ss:w/rd",
        "db.internal",
        6543,
        "invoices",
    )


def test_postgres_json_defaults_host_port_and_database(monkeypatch):
    url = _url(monkeypatch, json.dumps({"conn_type": "postgres", "login": "airflow"}))
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "airflow",
        None,
        "127.0.0.1",
        5432,
        "postgres",
    )


def test_no_connection_means_the_sqlite_file_in_the_airflow_home(monkeypatch, tmp_path):
    monkeypatch.delenv("AIRFLOW_CONN_INVOICE_DB", raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    assert InvoiceDbHook().get_url().database == str(default_sqlite_path()) == str(tmp_path / "invoices.db")


@pytest.mark.parametrize(
    ("value", "sentence"),
    [
        (json.dumps({"conn_type": "sqlite"}), "Connection invoice_db of type sqlite names no database file."),
        (
            json.dumps({"conn_type": "mysql", "host": "x"}),
            "Connection invoice_db has type 'mysql'; use sqlite or postgres.",
        ),
    ],
)
def test_unusable_connections_are_refused_with_one_sentence(monkeypatch, value, sentence):
    with pytest.raises(ValueError) as caught:
        _url(monkeypatch, value)
    assert str(caught.value) == sentence
