"""Reading the sandbox's request log from hook tests."""

from __future__ import annotations

import time

import requests

from include.providers.microsoft import sandbox as sandbox_microsoft
from include.sandbox import SandboxServer

FAST_RETRIES = {"max_retries": 2, "retry_backoff": 0.01, "max_retry_wait": 2}
"""Connection extras that keep retry tests fast: short backoff, and no wait longer than 2 s."""


def calls(server: SandboxServer, fragment: str, expect: int = 0) -> list[dict]:
    """Logged requests whose path contains ``fragment``, waiting up to 3 s for ``expect`` of them
    (a delayed response is logged only when the sandbox finishes it)."""
    deadline = time.monotonic() + 3
    while True:
        found = [entry for entry in server.requests if fragment in entry["path"]]
        if len(found) >= expect or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def refresh_grant(
    server: SandboxServer, refresh_token: str, resource: str = sandbox_microsoft.PARTNER_CENTER
) -> requests.Response:
    """The sandbox's Microsoft token endpoint asked for an access token with ``refresh_token``."""
    form = {
        "grant_type": "refresh_token",
        "client_id": sandbox_microsoft.CLIENT_ID,
        "client_secret": sandbox_microsoft.CLIENT_SECRET,
        "refresh_token": refresh_token,
        "resource": resource,
    }
    return requests.post(f"{server.url}/login/{sandbox_microsoft.TENANT_ID}/oauth2/token", data=form, timeout=5)
