"""Worker-slot seconds of one ``fetch`` while Microsoft prepares a slow export: waiting in the task vs deferred.

``python -m benchmarks.deferral [--polls 6] [--retry-after 5]`` serves the demo invoice ``G0525A0005`` (its
lines and daily-rated usage from the two Graph exports) from the sandbox, whose export operations answer
"running" for ``--polls`` polls with ``Retry-After: --retry-after``, so an export takes about polls x
retry-after seconds. The fetch runs twice in a fresh process each (:mod:`benchmarks.worker`), on a fresh
SQLite invoice database: ``deferrable=False`` (the wait in the task, as before deferral) and deferred (the
trigger runs in the same process as a triggerer would; its time is reported apart and is no worker's).
Prints the worker-slot seconds of both.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from benchmarks.pipeline import ROOT, _child, _Database

INVOICE = "G0525A0005"


def measure(polls: int, retry_after: int, log=print) -> dict[str, dict]:
    """``{"in_task": worker output, "deferred": worker output}`` of the fetch against a slow export."""
    from include.sandbox import SandboxServer
    from include.sandbox.demo_data import write_demo_data

    with tempfile.TemporaryDirectory(prefix="invoice-deferral-") as tmp:
        workdir = Path(tmp)
        write_demo_data(workdir / "data")
        with SandboxServer(workdir / "data", export_polls=polls, export_retry_after=retry_after) as sandbox:
            env = {
                **os.environ,
                **sandbox.env({"max_retry_wait": max(retry_after, 1)}),
                "AIRFLOW_HOME": str(workdir / "airflow"),
                "GX_ANALYTICS_ENABLED": "False",
                "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            }
            database = _Database("sqlite", workdir)
            env["AIRFLOW_CONN_INVOICE_DB"] = json.dumps(database.connection)
            runs = {}
            for name, deferrable in (("in_task", False), ("deferred", True)):
                job = {"stage": "fetch", "invoice_id": INVOICE, "run_id": f"deferral-{name}", "deferrable": deferrable}
                runs[name] = out = _child(job, env)
                log(
                    f"fetch {name}: {out['seconds']:.1f} worker-slot s, {out['deferred_seconds']:.1f} s deferred "
                    f"({out['result']['line_count']} lines staged)"
                )
            return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.deferral", description=__doc__.splitlines()[0])
    parser.add_argument("--polls", type=int, default=6, help="polls an export stays running (default 6)")
    parser.add_argument("--retry-after", type=int, default=5, help="its Retry-After in seconds (default 5)")
    args = parser.parse_args(argv)
    measure(args.polls, args.retry_after)
    return 0


if __name__ == "__main__":
    sys.exit(main())
