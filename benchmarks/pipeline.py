"""``make bench``: the Microsoft sync pipeline against a floor, at 10k, 100k and 1M one-time lines.

For every size and database (SQLite always; PostgreSQL when it answers, in a throw-away database
``invoice_sync_bench_<pid>`` that is dropped afterwards) it

1. generates (once, cached) a v2-export invoice of that many lines (:mod:`benchmarks.data`) and
   serves it from the provider sandbox over real HTTP (:mod:`benchmarks.sandbox`);
2. runs ``fetch`` -> ``checksum_validation`` -> ``load`` -> ``activate`` each in a fresh process,
   the operators' own ``execute()`` with XCom passed along (:mod:`benchmarks.worker`), timing each
   stage and taking each process's peak RSS;
3. checks the result: invoice active, every line loaded, detail total == header total, exactly;
4. runs the floor (:mod:`benchmarks.floor`) on the same data and database, and reports the ratio;
5. on PostgreSQL, runs the DuckDB reference (:mod:`benchmarks.duckdb_reference`) on the same blobs, checks
   its count and sum against the header too, and reports the ratio.

``python -m benchmarks.pipeline [--lines N] [--db sqlite|postgres|all] [--cache DIR]``. The DAG
import timings of :mod:`benchmarks.dag_import` are printed at the end (``--no-dag-import`` skips).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from benchmarks.data import generate
from benchmarks.sandbox import bench_sandbox

ROOT = Path(__file__).resolve().parents[1]
SIZES = (10_000, 100_000, 1_000_000)
STAGES = ("fetch", "checksum_validation", "load", "activate")
PG_DATABASE = f"invoice_sync_bench_{os.getpid()}"
"""One throw-away database per run: two benchmarks at once (or a test beside one) never drop each other's."""
SETTINGS = {"microsoft": {"usage_mismatch_tolerance": 0, "active_currencies": ["EUR"]}}
MIB = 1024 * 1024


def default_cache_dir() -> Path:
    return Path(os.environ.get("INVOICE_BENCH_CACHE") or ROOT / ".airflow" / "bench-cache")


@dataclass
class StageRun:
    seconds: float
    cpu_seconds: float
    peak_rss: int
    workers_peak_rss: int = 0


@dataclass
class BenchResult:
    lines: int
    db: str
    header_total: Decimal
    stages: dict[str, StageRun] = field(default_factory=dict)
    pipeline_total: Decimal | None = None
    pipeline_lines: int | None = None
    floor: StageRun | None = None
    floor_total: Decimal | None = None
    floor_lines: int | None = None
    reference: StageRun | None = None
    reference_parse_seconds: float | None = None

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.stages.values())

    @property
    def cpu_seconds(self) -> float:
        return sum(s.cpu_seconds for s in self.stages.values())

    @property
    def peak_rss(self) -> int:
        return max(max(s.peak_rss, s.workers_peak_rss) for s in self.stages.values())

    @property
    def ratio(self) -> float | None:
        return self.seconds / self.floor.seconds if self.floor else None

    @property
    def reference_ratio(self) -> float | None:
        return self.seconds / self.reference.seconds if self.reference else None


# -- databases -------------------------------------------------------------------------------------


def _pg_params() -> dict:
    return {
        "host": os.environ.get("INVOICE_BENCH_PG_HOST", "127.0.0.1"),
        "port": int(os.environ.get("INVOICE_BENCH_PG_PORT", "5432")),
        "user": os.environ.get("INVOICE_BENCH_PG_USER", "postgres"),
        "password": os.environ.get("INVOICE_BENCH_PG_PASSWORD") or None,
    }


def postgres_available() -> bool:
    import psycopg

    try:
        with psycopg.connect(**_pg_params(), dbname="postgres", connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(**_pg_params(), dbname="postgres", autocommit=True) as conn:
        conn.execute(sql)


class _Database:
    """A fresh, empty invoice database for one run; removed by :meth:`drop`."""

    def __init__(self, kind: str, workdir: Path):
        self.kind = kind
        if kind == "sqlite":
            path = workdir / "invoices.db"
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            self.connection = {"conn_type": "sqlite", "host": str(path)}
            self.url = f"sqlite:///{path}"
        else:
            params = _pg_params()
            _pg_admin(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
            _pg_admin(f'CREATE DATABASE "{PG_DATABASE}"')
            self.connection = {
                "conn_type": "postgres",
                "host": params["host"],
                "port": params["port"],
                "login": params["user"],
                "password": params["password"],
                "schema": PG_DATABASE,
            }
            auth = params["user"] + (f":{params['password']}" if params["password"] else "")
            self.url = f"postgresql+psycopg://{auth}@{params['host']}:{params['port']}/{PG_DATABASE}"
        from include.sql.migrate import upgrade

        upgrade(self.url)

    def verify(self, invoice_id: str) -> tuple[str, int, Decimal, Decimal]:
        """``(status, line_count, detail_total, sum of loaded lines)`` read back in SQL."""
        from sqlalchemy import create_engine, func, select

        from include.sql.schema import provider_invoice_line
        from include.sql.stage import exact_micros
        from include.sql.store import InvoiceStore

        engine = create_engine(self.url)
        try:
            store = InvoiceStore(engine)
            invoice = store.get_invoice("microsoft", invoice_id)
            line = provider_invoice_line
            with engine.connect() as conn:
                count, micros = conn.execute(
                    select(func.count(), func.sum(exact_micros(line.c.amount, store.engine))).where(
                        line.c.invoice_id == invoice_id
                    )
                ).one()
            assert invoice is not None and invoice["line_count"] == count
            return invoice["status"], count, invoice["detail_total"], Decimal(int(micros or 0)) / 10**6
        finally:
            engine.dispose()

    def drop(self) -> None:
        if self.kind == "postgres":
            _pg_admin(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')


# -- running ---------------------------------------------------------------------------------------


def _child(job: dict, env: dict) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.worker", json.dumps(job, default=str)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"benchmark step {job['stage']} failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_size(
    lines: int,
    dbs: list[str],
    *,
    cache_dir: Path | None = None,
    floor: bool = True,
    reference: bool = True,
    log=print,
) -> list[BenchResult]:
    """The pipeline (the floor, and on PostgreSQL the DuckDB reference) on ``lines`` lines for each of ``dbs``."""
    started = time.perf_counter()
    bench = generate(lines, cache_dir or default_cache_dir())
    log(f"[{lines:,} lines] data ready in {time.perf_counter() - started:.1f} s ({len(bench.blobs)} blobs)")
    results = []
    with tempfile.TemporaryDirectory(prefix="invoice-bench-") as tmp, bench_sandbox(bench) as sandbox:
        workdir = Path(tmp)
        base_env = {
            **os.environ,
            **sandbox.env(),
            "AIRFLOW_HOME": str(workdir / "airflow"),
            "INVOICE_DATA_DOCS_DIR": str(workdir / "data_docs"),
            "GX_ANALYTICS_ENABLED": "False",
            "AIRFLOW_VAR_INVOICE_SYNC_SETTINGS": json.dumps(SETTINGS),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        for kind in dbs:
            database = _Database(kind, workdir)
            try:
                env = {**base_env, "AIRFLOW_CONN_INVOICE_DB": json.dumps(database.connection)}
                result = BenchResult(lines, kind, bench.header_total)
                upstream = None
                for stage in STAGES:
                    job = {"stage": stage, "invoice_id": bench.invoice_id, "run_id": f"bench-{lines}"}
                    out = _child({**job, "upstream": upstream}, env)
                    result.stages[stage] = StageRun(
                        out["seconds"], out["cpu_seconds"], out["peak_rss"], out["workers_peak_rss"]
                    )
                    upstream = out["result"]
                    log(f"[{lines:,} lines, {kind}] {stage}: {out['seconds']:.2f} s, {out['peak_rss'] / MIB:.0f} MiB")
                status, count, detail_total, loaded_total = database.verify(bench.invoice_id)
                if status != "active" or count != lines or not (detail_total == loaded_total == bench.header_total):
                    raise AssertionError(
                        f"pipeline result is wrong: status {status}, {count} lines, detail {detail_total}, "
                        f"loaded {loaded_total}, header {bench.header_total}"
                    )
                result.pipeline_total, result.pipeline_lines = loaded_total, count
                if floor:
                    out = _child({"stage": "floor", "invoice_id": bench.invoice_id, "db_url": database.url}, env)
                    result.floor = StageRun(out["seconds"], out["cpu_seconds"], out["peak_rss"])
                    result.floor_total = Decimal(out["result"]["sum"])
                    result.floor_lines = out["result"]["line_count"]
                    log(f"[{lines:,} lines, {kind}] floor: {out['seconds']:.2f} s, {out['peak_rss'] / MIB:.0f} MiB")
                if reference and kind == "postgres":
                    job = {
                        "stage": "duckdb",
                        "lines": lines,
                        "cache_dir": str(bench.root.parent),
                        "db_url": database.url,
                    }
                    out = _child(job, env)
                    count, total = out["result"]["line_count"], Decimal(out["result"]["sum"])
                    if count != lines or total != bench.header_total:
                        raise AssertionError(f"DuckDB reference result is wrong: {count} lines, sum {total}")
                    result.reference = StageRun(out["seconds"], out["cpu_seconds"], out["peak_rss"])
                    result.reference_parse_seconds = out["result"]["parse_seconds"]
                    log(f"[{lines:,} lines, {kind}] DuckDB reference: {out['seconds']:.2f} s")
                results.append(result)
            finally:
                database.drop()
    return results


# -- reporting -------------------------------------------------------------------------------------


def table(results: list[BenchResult]) -> str:
    """A Markdown table: seconds per stage, throughput, peak RSS, CPU time, floor and ratio."""
    head = (
        "| lines | db | fetch s | checksum s | load s | activate s | total s | lines/s "
        "| peak RSS MiB (fetch/checksum/load/activate) | fetch worker RSS MiB | CPU s | floor s | floor RSS MiB "
        "| floor CPU s | pipeline/floor | DuckDB s (parse) | pipeline/DuckDB |"
    )
    rows = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        stages = [r.stages[s] for s in STAGES]
        rss = "/".join(f"{s.peak_rss / MIB:.0f}" for s in stages)
        workers = r.stages["fetch"].workers_peak_rss
        workers_rss = f"{workers / MIB:.0f}" if workers else "-"
        floor = "- | - | -"
        if r.floor:
            floor = f"{r.floor.seconds:.2f} | {r.floor.peak_rss / MIB:.0f} | {r.floor.cpu_seconds:.1f}"
        ratio = f"{r.ratio:.2f}" if r.ratio else "-"
        reference = "- | -"
        if r.reference:
            reference = f"{r.reference.seconds:.2f} ({r.reference_parse_seconds:.2f}) | {r.reference_ratio:.2f}"
        rows.append(
            f"| {r.lines:,} | {r.db} | "
            + " | ".join(f"{s.seconds:.2f}" for s in stages)
            + f" | {r.seconds:.2f} | {r.lines / r.seconds:,.0f} | {rss} | {workers_rss} | {r.cpu_seconds:.1f}"
            + f" | {floor} | {ratio} | {reference} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pipeline", description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, action="append", help="run only this size (repeatable)")
    parser.add_argument("--db", choices=("all", "sqlite", "postgres"), default="all")
    parser.add_argument("--cache", type=Path, default=None, help="where generated invoices are kept")
    parser.add_argument("--no-floor", action="store_true")
    parser.add_argument("--no-reference", action="store_true", help="skip the DuckDB reference")
    parser.add_argument("--no-dag-import", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)

    dbs = ["sqlite", "postgres"] if args.db == "all" else [args.db]
    if "postgres" in dbs and not postgres_available():
        print("PostgreSQL is not reachable: benchmarking SQLite only.")
        if args.db == "postgres":
            return 1
        dbs.remove("postgres")
    results: list[BenchResult] = []
    for lines in args.lines or SIZES:
        results.extend(
            run_size(lines, dbs, cache_dir=args.cache, floor=not args.no_floor, reference=not args.no_reference)
        )
    print()
    print(f"Pipeline benchmark ({os.cpu_count()} CPUs, Python {sys.version.split()[0]})")
    print(table(results))
    if args.json:
        args.json.write_text(
            json.dumps(
                [
                    {
                        "lines": r.lines,
                        "db": r.db,
                        "stages": {k: vars(v) for k, v in r.stages.items()},
                        "seconds": r.seconds,
                        "floor": vars(r.floor) if r.floor else None,
                        "ratio": r.ratio,
                        "reference": vars(r.reference) if r.reference else None,
                        "reference_parse_seconds": r.reference_parse_seconds,
                        "reference_ratio": r.reference_ratio,
                    }
                    for r in results
                ],
                indent=1,
            )
        )
    if not args.no_dag_import:
        from benchmarks import dag_import

        print()
        dag_import.main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
