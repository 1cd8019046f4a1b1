"""``python -m include.sandbox [--data DIR] [--port PORT] [--rotate-refresh-tokens]``: serve until SIGTERM/SIGINT.

Once listening, prints one ``AIRFLOW_CONN_<ID>='<json>'`` line per connection, ready to ``export``.
Without ``--data`` the bundled demo invoices are generated (once, deterministically) into a cache dir.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import threading

from include.sandbox.demo_data import ensure_demo_data
from include.sandbox.server import SandboxServer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m include.sandbox", description=__doc__)
    parser.add_argument("--data", help="data dir in the DESIGN layout (default: the demo data)")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument(
        "--rotate-refresh-tokens",
        action="store_true",
        help="token endpoints return a new refresh token per use and refuse a used one",
    )
    args = parser.parse_args(argv)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with SandboxServer(
        args.data or ensure_demo_data(), args.port, rotate_refresh_tokens=args.rotate_refresh_tokens
    ) as sandbox:
        for name, value in sandbox.env().items():
            print(f"{name}={shlex.quote(value)}", flush=True)
        stop.wait()


if __name__ == "__main__":
    main()
