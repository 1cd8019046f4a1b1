"""A real browser for the workspace test: Debian's headless Chromium driven by Playwright for Python.

Playwright cannot download its own browser here (no internet), so it drives ``/usr/bin/chromium``,
which :func:`ensure_chromium` installs from Debian (``apt-get install chromium``) when it is missing
and this process may run apt (root on a CI machine). Without a browser the test skips locally and
fails with ``CI=true``. Every network request the page makes to another host is blocked, so a page
that needed a CDN would show it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("INVOICE_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OUTPUT = Path(__file__).resolve().parents[1] / "output" / "workspace-browser"
"""Screenshots of each step (``tests/output/`` is ignored by git)."""


def ensure_chromium() -> Path:
    """``/usr/bin/chromium``, installed from Debian first when missing and apt-get may run."""
    if CHROMIUM.exists():
        return CHROMIUM
    problem = "apt-get is not available"
    if shutil.which("apt-get") and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]):
            result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900, check=False)
            if result.returncode != 0:
                problem = f"{' '.join(command)} failed: {result.stderr.strip()[-500:]}"
                break
        else:
            if CHROMIUM.exists():
                return CHROMIUM
            problem = f"the chromium package did not install {CHROMIUM}"
    elif shutil.which("apt-get"):
        problem = "installing chromium needs root (run: apt-get install -y chromium)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"The browser test needs {CHROMIUM} on CI: {problem}")
    pytest.skip(f"No browser at {CHROMIUM}: {problem}")


def only_local_requests(page, allowed_origin: str) -> list[str]:
    """Abort every request the page makes outside ``allowed_origin``; returns the list of blocked URLs."""
    blocked: list[str] = []

    def handle(route):
        url = route.request.url
        if url.startswith(allowed_origin) or url.startswith(("data:", "blob:", "about:")):
            route.continue_()
        else:
            blocked.append(url)
            route.abort()

    page.route("**/*", handle)
    return blocked
