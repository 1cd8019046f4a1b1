"""The provider-neutral HTTP base: Retry-After parsing, timeouts, secrets kept out of errors."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests

from plugins.hooks.http import ProviderHttpHook, parse_retry_after


def test_retry_after_in_seconds_and_as_http_date():
    assert parse_retry_after("57") == 57
    assert parse_retry_after(" 1.5 ") == 1.5
    now = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after(format_datetime(now + timedelta(seconds=10), usegmt=True), now) == 10
    assert parse_retry_after(format_datetime(datetime(2000, 1, 1, tzinfo=UTC), usegmt=True)) == 0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({}, (10.0, 120.0)),
        ({"timeout": 30}, (30.0, 30.0)),
        ({"timeout": [5, 60]}, (5.0, 60.0)),
        ({"timeout": {"read": 300}}, (10.0, 300.0)),
    ],
)
def test_timeout_from_connection_extra(monkeypatch, extra, expected):
    monkeypatch.setenv("AIRFLOW_CONN_SOME_API", json.dumps({"conn_type": "http", "host": "x", "extra": extra}))
    assert ProviderHttpHook("some_api").timeout == expected


def test_connection_errors_are_retried_and_reported_without_the_query_string(monkeypatch):
    with socket.socket() as probe:  # a port that nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    extra = {"max_retries": 1, "retry_backoff": 0.01, "timeout": 2}
    monkeypatch.setenv(
        "AIRFLOW_CONN_SOME_API", json.dumps({"conn_type": "http", "host": f"http://127.0.0.1:{port}", "extra": extra})
    )
    hook = ProviderHttpHook("some_api")
    with pytest.raises(requests.ConnectionError) as caught:
        hook.request("GET", hook.url("/container/blob.json.gz?sv=1&sig=SECRET"))
    assert "GET /container/blob.json.gz failed" in str(caught.value)
    assert "SECRET" not in str(caught.value)
