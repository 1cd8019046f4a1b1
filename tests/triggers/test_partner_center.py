"""The export trigger on its own, over real HTTP against the sandbox: its waits are recorded, never slept."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import pytest

from plugins.hooks.partner_center import PartnerCenterHook
from plugins.triggers.partner_center import PartnerCenterExportTrigger

INVOICE = "G0526A0002"
"""A demo invoice of the Graph exports."""


@pytest.fixture
def sandbox(serve, demo_data_dir):
    return serve(demo_data_dir, export_polls=2, export_retry_after=1)


@pytest.fixture
def waits(monkeypatch) -> list[float]:
    recorded: list[float] = []

    async def sleep(seconds: float) -> None:
        recorded.append(seconds)

    monkeypatch.setattr(PartnerCenterExportTrigger, "sleep", staticmethod(sleep))
    return recorded


def _events(operations: dict[str, str]) -> list[dict]:
    async def collect():
        trigger = PartnerCenterExportTrigger("partner_center_default", INVOICE, operations)
        return [event.payload async for event in trigger.run()]

    return asyncio.run(collect())


def _started(*exports: str) -> dict[str, str]:
    hook = PartnerCenterHook()
    return {export: hook.start_export(INVOICE, export) for export in exports}


def test_it_fires_once_every_operation_succeeded(sandbox, waits):
    operations = _started("reconciliation", "usage")
    assert _events(operations) == [{"status": "succeeded"}]
    assert waits == [1, 1]  # two rounds running (Retry-After: 1), the third succeeded
    polls = [r for r in sandbox.requests if "/operations/" in r["path"]]
    assert len(polls) == 6


def test_a_throttled_poll_waits_as_long_as_retry_after_says(sandbox, waits):
    operations = _started("reconciliation")
    sandbox.add_fault("status", r"/operations/", times=1, status=429, retry_after="2")
    assert _events(operations) == [{"status": "succeeded"}]
    assert waits[0] == 2  # FAST_RETRIES caps any wait at 2 s; Retry-After said 2


def test_polling_that_keeps_failing_ends_with_a_retryable_sentence(sandbox, waits):
    operations = _started("reconciliation")
    sandbox.add_fault("status", r"/operations/", times=10, status=503)
    (event,) = _events(operations)
    assert event["status"] == "error"
    path = urlsplit(operations["reconciliation"]).path
    assert event["message"] == (
        f"Polling the reconciliation export of invoice {INVOICE} (GET {path}) failed with HTTP 503; "
        "a retry of the task waits for the same export."
    )
    assert len(waits) == 2  # the connection's max_retries, no more


def test_an_operation_elsewhere_never_gets_the_token(sandbox, waits):
    (event,) = _events({"reconciliation": "http://203.0.113.9/graph/v1.0/reports/partners/billing/operations/x"})
    assert event["status"] == "failed"
    assert "which is not a host of connection partner_center_default" in event["message"]
    assert [r for r in sandbox.requests if "/operations/" in r["path"]] == []
