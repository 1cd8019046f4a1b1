"""Daily-rated usage at scale: N billed DailyRatedUsageLineItems staged, checked and loaded.

``python -m benchmarks.usage [--lines N] [--db sqlite|postgres|all] [--cache DIR] [--json FILE]``
(default 1M lines; kept apart from :mod:`benchmarks.pipeline`, whose invoice carries no daily-rated usage).

For each database (a throw-away one, as the pipeline bench makes) it

1. generates (once, cached) N daily-rated lines as gzip JSON-lines blobs of the Graph billed-usage export
   (PascalCase, 15 significant digits like Microsoft's ``0.486031696515249``): subscriptions of ten meters
   used on 30 days, and the reconciliation's pre-tax usage lines, one per subscription and meter, each the
   FLOOR to the cent of its daily rows as Microsoft rounds;
2. runs each step in a fresh process, timed, with its peak RSS (``VmHWM``), the project's own code:
   ``stage``: the blobs read as the hook reads them (:func:`include.exact_json.gzip_line_batches`), staged in
   one process as the fetch of a small invoice does (``include.staging.stage_usage``: on PostgreSQL batch by
   batch, Arrow and ``COPY``; on SQLite parsed exactly and inserted line by line); ``check``:
   :func:`include.checksum.usage.check_usage` (the per-subscription sums in SQL and the GX usage suite);
   ``load``: :func:`include.sql.usage.load_usage`, the load's part for the usage;
3. checks that every line was staged and loaded and that the daily-rated total GX saw is the generator's
   exact sum. The reconciliation lines are staged before the timed steps (the line bench measures that).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import subprocess
import sys
import tempfile
from datetime import date, timedelta
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INVOICE_ID = "G0526U0001"
PERIOD_START = date(2026, 5, 1)
DAYS = 30
METERS = 10
BLOB_LINES = 250_000
STEPS = ("stage", "check", "load")
MIB = 1024 * 1024


def _cache(cache_dir: Path, lines: int) -> Path:
    return cache_dir / f"usage-{lines}"


def generate(lines: int, cache_dir: Path) -> dict:
    """The cached data set of ``lines`` daily-rated lines; its ``meta.json`` (totals, blobs, recon lines)."""
    folder = _cache(cache_dir, lines)
    meta_path = folder / "meta.json"
    if meta_path.exists():
        return json.loads(meta_path.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(lines)
    per_meter: dict[tuple[int, int], Decimal] = {}
    blobs, written, blob = [], 0, None
    for n in range(lines):
        if n % BLOB_LINES == 0:
            if blob:
                blob.close()
            name = f"usage-{len(blobs):04d}.json.gz"
            blobs.append(name)
            blob = gzip.open(folder / name, "wt", encoding="utf-8", compresslevel=1)
        subscription, rest = divmod(n, METERS * DAYS)
        meter, day = divmod(rest, DAYS)
        amount = Decimal(rng.randint(10**13, 10**15 - 1)).scaleb(-15)
        per_meter[subscription, meter] = per_meter.get((subscription, meter), Decimal(0)) + amount
        blob.write(_daily_line(subscription, meter, PERIOD_START + timedelta(days=day), amount) + "\n")
        written += 1
    if blob:
        blob.close()
    recon = [
        [f"sub-{subscription:06d}", f"P{meter:03d}", str(total.quantize(Decimal("0.01"), rounding=ROUND_FLOOR))]
        for (subscription, meter), total in per_meter.items()
    ]
    meta = {
        "lines": written,
        "blobs": blobs,
        "daily_rated_total": str(sum(per_meter.values(), Decimal(0))),
        "reconciliation_total": str(sum((Decimal(r[2]) for r in recon), Decimal(0))),
        "recon": recon,
    }
    meta_path.write_text(json.dumps(meta))
    return meta


def _daily_line(subscription: int, meter: int, day: date, amount: Decimal) -> str:
    return json.dumps(
        {
            "CustomerId": f"cust-{subscription // 4:06d}",
            "SubscriptionId": f"sub-{subscription:06d}",
            "UsageDate": f"{day.isoformat()}T00:00:00Z",
            "ProductId": f"P{meter:03d}",
            "MeterId": f"00000000-0000-4000-8000-{meter:012d}",
            "MeterName": f"Meter {meter}",
            "MeterCategory": "Virtual Machines",
            "ResourceUri": f"/subscriptions/sub-{subscription:06d}/resourceGroups/rg/providers/vm-{meter}",
            "Quantity": 24,
            "UnitPrice": "0.0209496384791679",
            "BillingPreTaxTotal": f"{amount:f}",
            "BillingCurrency": "EUR",
            "InvoiceLineItemType": "usage_line_items",
            "BillingProvider": "one_time",
        }
    )


# -- one step in its own process ----------------------------------------------------------------------


def _header(meta: dict):
    from include.model import InvoiceHeader

    end = PERIOD_START + timedelta(days=DAYS - 1)
    return InvoiceHeader(
        "microsoft",
        INVOICE_ID,
        "EUR",
        Decimal(meta["reconciliation_total"]),
        end + timedelta(days=8),
        PERIOD_START,
        end,
    )


class _BlobHook:
    """``iter_usage_batches`` and ``iter_usage_items`` of :class:`plugins.hooks.partner_center.PartnerCenterHook`
    on the cached blobs."""

    def __init__(self, folder: Path, blobs: list[str]):
        self.folder, self.blobs = folder, blobs

    def iter_usage_batches(self, invoice: dict):
        from include.exact_json import gzip_line_batches

        for name in self.blobs:
            with open(self.folder / name, "rb") as raw:
                # the hook's BATCH_LINES
                yield from gzip_line_batches(raw, source="one_time/usage_line_items", origin=name, batch_lines=10_000)

    def iter_usage_items(self, invoice: dict):
        return (line for batch in self.iter_usage_batches(invoice) for _, line in batch.items())


def run_step(step: str, db_url: str, cache_dir: Path, lines: int) -> dict:
    """One timed step; what it returns is checked by the parent."""
    import time

    from sqlalchemy import create_engine

    from benchmarks.worker import cpu_seconds, peak_rss
    from include.sql.store import InvoiceStore

    meta = generate(lines, cache_dir)
    engine = create_engine(db_url, pool_size=1, max_overflow=0) if "postgresql" in db_url else create_engine(db_url)
    store, header, stage_id = InvoiceStore(engine), _header(meta), f"usage_bench_{lines}"
    try:
        if step == "stage":
            from include.model import InvoiceLine
            from include.staging import StageJob, stage_usage

            recon = (
                InvoiceLine(n, "usage", Decimal(amount), "EUR", subscription_id=sub, product_id=product,
                            source="one_time/billing_line_items", pre_tax_amount=Decimal(amount))
                for n, (sub, product, amount) in enumerate(meta["recon"], start=1)
            )  # fmt: skip
            store.stage(stage_id).fill(recon)
            job = StageJob(
                db_url, stage_id, header, "include.providers.microsoft.normaliser", "include.providers.microsoft.usage"
            )
            hook = _BlobHook(_cache(cache_dir, lines), meta["blobs"])
            cpu, started = cpu_seconds(), time.perf_counter()
            result = stage_usage(store, job, hook, {})
        elif step == "check":
            from include.checksum.usage import check_usage
            from include.settings import ProviderSettings

            tolerance = Decimal(len(meta["recon"])) / 100  # each FLOOR to the cent drops less than a cent
            cpu, started = cpu_seconds(), time.perf_counter()
            check = check_usage(
                engine,
                "microsoft_usage.json",
                header,
                stage_id,
                tolerance=tolerance,
                settings=ProviderSettings(),
                validation_name="usage_bench",
                run_name=f"usage_bench_{lines}",
            )
            result = {
                "success": check.success,
                "daily_rated_pre_tax": str(check.daily_rated_pre_tax),
                "daily_rated_lines": check.daily_rated_lines,
            }
        elif step == "load":
            from include.sql.usage import load_usage

            cpu, started = cpu_seconds(), time.perf_counter()
            with engine.begin() as conn:
                result = load_usage(conn, "microsoft", INVOICE_ID, stage_id)
            store.stage(stage_id).drop()
        else:
            raise ValueError(f"unknown step {step!r}")
        seconds = time.perf_counter() - started
        return {"seconds": seconds, "cpu_seconds": cpu_seconds() - cpu, "peak_rss": peak_rss(), "result": result}
    finally:
        engine.dispose()


# -- the parent ------------------------------------------------------------------------------------


def _step(step: str, db_url: str, cache_dir: Path, lines: int, env: dict) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.usage", "--step", step, "--db-url", db_url, "--cache", str(cache_dir),
         "--lines", str(lines)],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"usage benchmark step {step} failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_db(kind: str, lines: int, cache_dir: Path) -> dict:
    """All steps on one fresh database; raises when a line is lost or a sum is not exact."""
    from benchmarks.pipeline import _Database

    meta = generate(lines, cache_dir)
    with tempfile.TemporaryDirectory(prefix="usage-bench-") as workdir:
        database = _Database(kind, Path(workdir))
        env = {**os.environ, "PYTHONPATH": str(ROOT), "AIRFLOW_HOME": workdir, "GX_ANALYTICS_ENABLED": "False"}
        try:
            steps = {step: _step(step, database.url, cache_dir, lines, env) for step in STEPS}
        finally:
            database.drop()
    checked = steps["check"]["result"]
    if steps["stage"]["result"] != lines or steps["load"]["result"] != lines:
        raise AssertionError(f"{kind}: staged {steps['stage']['result']}, loaded {steps['load']['result']} of {lines}")
    if not checked["success"] or Decimal(checked["daily_rated_pre_tax"]) != Decimal(meta["daily_rated_total"]):
        raise AssertionError(f"{kind}: usage check {checked} against the exact total {meta['daily_rated_total']}")
    return {"db": kind, "lines": lines, "recon_lines": len(meta["recon"]), "steps": steps}


def table(results: list[dict]) -> str:
    head = "| lines | db | recon lines | " + " | ".join(f"{s} s" for s in STEPS) + " | peak RSS MiB (" + "/".join(STEPS)
    rows = [head + ") | CPU s |", "|---" * (len(STEPS) + 5) + "|"]
    for r in results:
        steps = [r["steps"][s] for s in STEPS]
        rows.append(
            f"| {r['lines']:,} | {r['db']} | {r['recon_lines']:,} | "
            + " | ".join(f"{s['seconds']:.2f}" for s in steps)
            + " | "
            + "/".join(str(round(s["peak_rss"] / MIB)) for s in steps)
            + f" | {sum(s['cpu_seconds'] for s in steps):.1f} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    from benchmarks.pipeline import default_cache_dir, postgres_available

    parser = argparse.ArgumentParser(prog="python -m benchmarks.usage", description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--db", choices=("all", "sqlite", "postgres"), default="all")
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--step", choices=STEPS, help=argparse.SUPPRESS)
    parser.add_argument("--db-url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    cache_dir = args.cache or default_cache_dir()
    if args.step:
        outcome = run_step(args.step, args.db_url, cache_dir, args.lines)
        sys.stdout.write("\n" + json.dumps(outcome, default=str) + "\n")
        return 0
    dbs = ["sqlite", "postgres"] if args.db == "all" else [args.db]
    if "postgres" in dbs and not postgres_available():
        print("PostgreSQL does not answer: skipped")
        dbs.remove("postgres")
    generate(args.lines, cache_dir)
    results = [run_db(kind, args.lines, cache_dir) for kind in dbs]
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
