"""Waits on the triggerer, not in a worker slot, while Microsoft prepares a fetch's Graph exports.

The fetch starts the exports, records their operation locations on its attempt and defers here; this
trigger polls every operation (async HTTP, ``Retry-After`` honoured) until all are ready, and the fetch
resumes to download them. Its kwargs carry the connection id, the invoice id and the operation URLs,
never a secret: the token comes from the connection, through the hook's own token path (in a thread,
so the event loop never blocks on it). Events: ``succeeded``; ``failed`` (Microsoft failed or forgot the
operation: one sentence, no retry helps); ``error`` (polling failed after bounded retries: the task's
retry waits for the same operations).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from include.exact_json import loads_exact
from include.model import InvalidProviderData
from plugins.hooks.http import RETRYABLE_STATUS, parse_retry_after, url_path
from plugins.hooks.partner_center import GRAPH_RESOURCE, ExportState, PartnerCenterHook


class ExportPollFailed(Exception):
    """Polling an operation failed (network, HTTP status) after the connection's bounded retries."""


class PartnerCenterExportTrigger(BaseTrigger):
    """Fires once every export operation of one invoice has succeeded, or one of them cannot."""

    sleep = staticmethod(asyncio.sleep)
    """How the trigger waits between polls; tests replace it to record the waits instead."""

    def __init__(self, conn_id: str, invoice_id: str, operations: dict[str, str]):
        super().__init__()
        self.conn_id = conn_id
        self.invoice_id = invoice_id
        self.operations = operations

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {"conn_id": self.conn_id, "invoice_id": self.invoice_id, "operations": self.operations},
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        import httpx

        hook = PartnerCenterHook(self.conn_id)
        hook.connection = await hook.aget_connection(self.conn_id)
        connect, read = hook.timeout
        pending = dict(self.operations)
        async with httpx.AsyncClient(timeout=httpx.Timeout(read, connect=connect), trust_env=False) as client:
            try:
                while pending:
                    waits = []
                    for export, location in list(pending.items()):
                        state = await self._poll(client, hook, export, location)
                        if state.manifest_link:
                            self.log.info("The %s export of invoice %s is ready", export, self.invoice_id)
                            del pending[export]
                        else:
                            waits.append(state.wait)
                    if pending:
                        await self.sleep(min(waits))
            except InvalidProviderData as err:
                yield TriggerEvent({"status": "failed", "message": str(err)})
                return
            except ExportPollFailed as err:
                yield TriggerEvent({"status": "error", "message": str(err)})
                return
        yield TriggerEvent({"status": "succeeded"})

    async def _poll(self, client, hook: PartnerCenterHook, export: str, location: str) -> ExportState:
        """One answer of the operation, retrying network errors, 429 and 5xx as the hook does (bounded)."""
        import httpx

        hook.check_trusted(location)  # the token goes to the connection's hosts only
        problem = ""
        for attempt in range(1, hook.max_retries + 2):
            headers = await asyncio.to_thread(hook.auth_headers, GRAPH_RESOURCE)
            retry_after = None
            try:
                response = await client.get(location, headers={"Accept": "application/json", **headers})
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}"
            else:
                if response.status_code == 404:
                    raise hook.expired(self.invoice_id, export)
                if response.status_code == 200:
                    try:
                        data = loads_exact(response.content)
                    except ValueError:
                        problem = "a body that is not valid JSON"
                    else:
                        return hook.read_operation(data, response.headers.get("Retry-After"), self.invoice_id, export)
                else:
                    problem = f"HTTP {response.status_code}"
                    if response.status_code not in RETRYABLE_STATUS:
                        break
                    retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if attempt <= hook.max_retries:
                backoff = hook.retry_backoff * 2 ** (attempt - 1)
                await self.sleep(min(backoff if retry_after is None else retry_after, hook.max_retry_wait))
        raise ExportPollFailed(
            f"Polling the {export} export of invoice {self.invoice_id} (GET {url_path(location)}) failed with "
            f"{problem}; a retry of the task waits for the same export."
        )
