"""A sandbox on the demo data, stopped at teardown, and a client holding Partner Center/Graph tokens."""

from __future__ import annotations

import pytest
import requests

from include.providers.microsoft import sandbox as sandbox_microsoft
from include.sandbox import SandboxServer
from include.sandbox.demo_data import write_demo_data
from tests.hooks.helpers import refresh_grant


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    write_demo_data(root)
    return root


@pytest.fixture
def sandbox(demo_dir):
    with SandboxServer(demo_dir, export_retry_after=0, blob_lines=1000) as server:
        yield server


@pytest.fixture
def get_token():
    """``get_token(server, resource)``: an access token from the sandbox's token endpoint."""

    def fetch(server: SandboxServer, resource: str) -> str:
        return refresh_grant(server, sandbox_microsoft.REFRESH_TOKEN, resource).json()["access_token"]

    return fetch


@pytest.fixture
def pc(sandbox, get_token):
    """A session authorised for the sandbox's Partner Center API."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {get_token(sandbox, sandbox_microsoft.PARTNER_CENTER)}"
    yield session
    session.close()
