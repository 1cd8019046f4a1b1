"""A sandbox per test on a data dir of the test's choosing, with every provider connection on it."""

from __future__ import annotations

from contextlib import ExitStack

import pytest

from include.sandbox import SandboxServer
from tests.hooks.helpers import FAST_RETRIES


@pytest.fixture
def serve(monkeypatch):
    """``serve(data_dir, **options)`` starts a sandbox and points the provider connections at it."""
    with ExitStack() as stack:

        def start(data_dir, **options) -> SandboxServer:
            server = stack.enter_context(SandboxServer(data_dir, export_retry_after=0, **options))
            for name, value in server.env(FAST_RETRIES).items():
                monkeypatch.setenv(name, value)
            return server

        yield start
