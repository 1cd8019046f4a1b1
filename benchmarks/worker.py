"""One benchmark step in its own process, the way an Airflow worker runs one task instance.

``python -m benchmarks.worker '<json>'`` runs one of ``fetch``, ``checksum_validation``, ``load``,
``activate`` (the DAG's operators, ``execute()`` with a minimal context: same hook, normaliser, store
and GX code as a DAG run), ``floor`` (:mod:`benchmarks.floor`) or ``duckdb``
(:mod:`benchmarks.duckdb_reference`), and prints one JSON line:
``{"seconds": ..., "deferred_seconds": ..., "cpu_seconds": ..., "peak_rss": bytes, "workers_peak_rss": bytes,
"result": ...}``.
Connections and the settings Variable come from ``AIRFLOW_CONN_*`` / ``AIRFLOW_VAR_*`` set by the
parent. ``seconds`` is the wall time of ``execute()`` alone (and of the resumed method of a deferred
task), including what it imports lazily (GX in ``checksum_validation``), as in Airflow: the worker-slot
seconds (a fetch job with ``"deferrable": false`` waits for the exports in the task, as before
deferral); ``deferred_seconds`` the time its trigger waited (a triggerer's, not a worker's);
``cpu_seconds`` the CPU time of this process and its workers meanwhile (not the database server's).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from types import SimpleNamespace

DAG_ID = "provider_invoice_sync_microsoft"
PROVIDER = "microsoft"


class _TaskInstance:
    log_url = "benchmark://task-log"

    def xcom_push(self, key: str, value) -> None:  # the Data Docs link; nothing reads it here
        self.pushed = (key, value)


def _context(run_id: str) -> dict:
    return {
        "ti": _TaskInstance(),
        "dag": SimpleNamespace(dag_id=DAG_ID),
        "run_id": run_id,
        "dag_run": SimpleNamespace(triggering_user_name="benchmark", run_type="manual"),
    }


def _operator(stage: str, invoice_id: str, upstream, deferrable: bool = True):
    from plugins.operators.activate import ActivateInvoiceOperator
    from plugins.operators.checksum import ChecksumValidationOperator
    from plugins.operators.fetch import FetchInvoiceOperator
    from plugins.operators.load import LoadInvoiceOperator

    common = {"task_id": stage, "provider": PROVIDER, "invoice_id": invoice_id}
    if stage == "fetch":
        return FetchInvoiceOperator(deferrable=deferrable, **common)
    if stage == "checksum_validation":
        return ChecksumValidationOperator(staged=upstream, **common)
    if stage == "load":
        return LoadInvoiceOperator(checked=upstream, **common)
    if stage == "activate":
        return ActivateInvoiceOperator(**common)
    raise ValueError(f"unknown stage {stage!r}")


def run(job: dict) -> dict:
    stage = job["stage"]
    deferred = 0.0
    if stage == "floor":
        import sqlite3  # noqa: F401  (imports are not part of the floor's time, as for the operators)

        import psycopg  # noqa: F401
        import sqlalchemy  # noqa: F401

        import include.sql.schema  # noqa: F401
        import plugins.hooks.partner_center  # noqa: F401
        from benchmarks.floor import run_floor

        cpu_before, started = cpu_seconds(), time.perf_counter()
        result = run_floor(job["invoice_id"], job["db_url"])
    elif stage == "duckdb":
        import duckdb  # noqa: F401
        import psycopg  # noqa: F401

        from benchmarks.data import generate
        from benchmarks.duckdb_reference import run_reference

        bench = generate(job["lines"], job["cache_dir"])  # cached: only reads meta.json
        cpu_before, started = cpu_seconds(), time.perf_counter()
        result = run_reference(bench, job["db_url"])
    else:
        operator = _operator(stage, job["invoice_id"], job.get("upstream"), job.get("deferrable", True))
        context = _context(job["run_id"])
        cpu_before, started = cpu_seconds(), time.perf_counter()
        result, deferred = _execute(operator, context)
    seconds = time.perf_counter() - started - deferred
    return {
        "seconds": seconds,
        "deferred_seconds": deferred,
        "cpu_seconds": cpu_seconds() - cpu_before,
        "peak_rss": peak_rss(),
        "workers_peak_rss": workers_peak_rss(),
        "result": result,
    }


def _execute(operator, context: dict) -> tuple[object, float]:
    """``execute()``; a task that defers has its trigger run here, as the triggerer would, and is resumed with
    the event. Returns the result and the seconds spent in the trigger: the time no worker slot is held."""
    import asyncio

    from airflow.sdk.exceptions import TaskDeferred

    try:
        return operator.execute(context), 0.0
    except TaskDeferred as deferred:
        waited = time.perf_counter()
        event = asyncio.run(anext(deferred.trigger.run()))
        waited = time.perf_counter() - waited
        return operator.resume_execution(deferred.method_name, {"event": event.payload}, context), waited


def cpu_seconds() -> float:
    """User + system CPU time of this process and of its finished children (the fetch's workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def workers_peak_rss() -> int:
    """Peak resident set of the largest child process in bytes (0 without any), e.g. a fetch worker.

    The workers are spawned (fork + exec), so this is their own address space, not this process's.
    """
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale


def peak_rss() -> int:
    """Peak resident set of this process in bytes.

    ``VmHWM`` belongs to the address space this process got at ``exec``; ``ru_maxrss`` would also
    count the parent's pages the child had between fork and exec (the parent holds the sandbox).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for row in status:
                if row.startswith("VmHWM:"):
                    return int(row.split()[1]) * 1024
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB elsewhere
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def main(argv: list[str]) -> int:
    outcome = run(json.loads(argv[0]))
    sys.stdout.write("\n" + json.dumps(outcome, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
