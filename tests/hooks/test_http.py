"""The provider-neutral HTTP base: Retry-After parsing, exact JSON, timeouts, secrets kept out of errors."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime

import pytest
import requests

from plugins.hooks.http import ProviderHttpHook, loads_exact, parse_retry_after


def test_retry_after_in_seconds_and_as_http_date():
    assert parse_retry_after("57") == 57
    assert parse_retry_after(" 1.5 ") == 1.5
    in_ten = format_datetime(datetime.now(UTC) + timedelta(seconds=10), usegmt=True)
    assert 8 <= parse_retry_after(in_ten) <= 10
    assert parse_retry_after(format_datetime(datetime(2000, 1, 1, tzinfo=UTC), usegmt=True)) == 0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_json_numbers_are_decimal_and_non_finite_ones_are_refused():
    assert loads_exact('{"a": 0.1, "b": 2, "c": "3.30"}') == {"a": Decimal("0.1"), "b": 2, "c": "3.30"}
    with pytest.raises(ValueError, match="NaN"):
        loads_exact('{"a": NaN}')


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


@pytest.mark.parametrize(
    "text",
    ['{"a": 1.10}', '{"a": 1.10}  \n', '  {"a": 1.10}', '[1.5, "x"]\r\n', '"only a string"', "12.5", "-0.0"],
)
def test_exact_parse_agrees_with_the_json_module(text):
    import json

    assert loads_exact(text) == json.loads(text, parse_float=Decimal)


@pytest.mark.parametrize("text", ['{"a": 1} {"b": 2}', '{"a": 1', "", "   ", '{"a": 1}x'])
def test_exact_parse_refuses_what_the_json_module_refuses(text):
    import json

    with pytest.raises(json.JSONDecodeError):
        loads_exact(text)
