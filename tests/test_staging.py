"""Staging an invoice's lines in this process or, for a large JSON-lines export on PostgreSQL, in workers."""

from __future__ import annotations

import random
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select

import include.staging
from include.exact_json import LineBatch, loads_exact
from include.model import InvalidProviderData, InvoiceHeader
from include.providers.microsoft.demo import daily_rated_for, one_time_line
from include.sandbox.server import dumps
from include.sql.schema import LINE_COLUMNS, line_stage_table, usage_stage_table
from include.sql.stage import open_stages
from include.staging import Staged, StageJob, stage_invoice

INVOICE = "G000000077"
KINDS = ("licence", "usage", "reserved_instance", "credit", "marketplace", "remove")
HEADER = InvoiceHeader(provider="microsoft", invoice_id=INVOICE, currency_code="EUR", header_total=0)


def _texts(count: int) -> list[str]:
    rng = random.Random(11)
    return [dumps(one_time_line(rng, INVOICE, date(2026, 3, 1), KINDS[i % len(KINDS)])) for i in range(count)]


def _usage_texts(recon_lines: int) -> list[str]:
    """Billed daily-rated usage as the Graph export spells it (PascalCase), three days per usage line."""
    rng = random.Random(12)
    recon = [one_time_line(rng, INVOICE, date(2026, 3, 1), "usage") for _ in range(recon_lines)]
    usage = daily_rated_for(rng, recon, date(2026, 3, 1), days=3)
    return [dumps({key[:1].upper() + key[1:]: value for key, value in line.items()}) for line in usage]


def _batches(name: str, texts: list[str], size: int) -> list[LineBatch]:
    return [
        LineBatch.of(
            f"one_time/{name}_line_items",
            f"{name.capitalize()} blob {n}",
            0,
            "".join(f"{text}\n" for text in texts[start : start + size]).encode(),
        )
        for n, start in enumerate(range(0, len(texts), size), start=1)
    ]


class _ExportHook:
    """A hook whose lines (and daily-rated usage, when given) arrive as JSON-lines batches of ``size`` texts
    (blank lines included)."""

    def __init__(self, texts: list[str], size: int, usage: list[str] | None = None):
        self.batches = [
            LineBatch.of(
                "one_time/billing_line_items",
                f"Blob {n}",
                0,
                "".join(f"{text}\n" for text in texts[start : start + size]).encode(),
            )
            for n, start in enumerate(range(0, len(texts), size), start=1)
        ]
        self.usage = None if usage is None else _batches("usage", usage, size)

    def iter_line_batches(self, invoice: dict):
        return iter(self.batches)

    def iter_line_items(self, invoice: dict):
        raise AssertionError("an export's lines are read from its batches")

    def iter_usage_batches(self, invoice: dict):
        return None if self.usage is None else iter(self.usage)

    def iter_usage_items(self, invoice: dict):
        return None if self.usage is None else (line for batch in self.usage for _, line in batch.items())


def _stage_invoice(
    store, hook, stage_id: str, processes: int, parallel_from_lines: int = 50, normaliser: str = ""
) -> Staged:
    job = StageJob(
        db_url=store.engine.url.render_as_string(hide_password=False),
        stage_id=stage_id,
        header=HEADER,
        normaliser_path=normaliser or "include.providers.microsoft.normaliser",
        usage_normaliser_path=None if getattr(hook, "usage", None) is None else "include.providers.microsoft.usage",
    )
    return stage_invoice(
        store, job, hook, {"id": INVOICE}, processes=processes, parallel_from_lines=parallel_from_lines
    )


def _stage(store, hook, stage_id: str, processes: int, parallel_from_lines: int = 50, normaliser: str = "") -> int:
    staged = _stage_invoice(store, hook, stage_id, processes, parallel_from_lines, normaliser)
    assert staged.usage_lines is None  # the hook has no usage
    return staged.lines


def _staged(store, stage_id: str) -> list[tuple]:
    """The stage's rows, or ``[]`` when it does not exist (any more)."""
    if line_stage_table(stage_id).name not in open_stages(store.engine):
        return []
    table = line_stage_table(stage_id)
    with store.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(select(table).order_by(table.c.line_no))]


def _staged_usage(store, stage_id: str) -> list[tuple]:
    """The usage stage's rows, or ``[]`` when it does not exist (any more)."""
    table = usage_stage_table(stage_id)
    if table.name not in open_stages(store.engine):
        return []
    with store.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(select(table).order_by(table.c.line_no))]


@pytest.fixture
def worker_runs(monkeypatch):
    """The stage ids staged by worker processes."""
    runs = []
    original = include.staging._stage_in_processes

    def spy(store, job, *args):
        runs.append(job.stage_id)
        return original(store, job, *args)

    monkeypatch.setattr(include.staging, "_stage_in_processes", spy)
    return runs


def test_workers_stage_exactly_what_this_process_stages(invoice_db, worker_runs):
    texts = _texts(230)
    texts[40:40] = ["", "   "]  # blank lines are no line items and take no line number
    hook = _ExportHook(texts, size=25)

    assert _stage(invoice_db, hook, "in-workers", processes=2) == 230
    assert _stage(invoice_db, hook, "in-process", processes=1) == 230

    assert worker_runs == (["in-workers"] if invoice_db.engine.dialect.name == "postgresql" else [])
    staged = _staged(invoice_db, "in-workers")
    assert staged == _staged(invoice_db, "in-process")
    assert [row[0] for row in staged] == list(range(1, 231))
    assert {row[LINE_COLUMNS.index("category")] for row in staged} >= {"licence", "usage", "credit", "marketplace"}
    invoice_db.stage("in-workers").drop()
    invoice_db.stage("in-process").drop()


@pytest.mark.parametrize("invoice_db", ["postgres"], indirect=True)
@pytest.mark.parametrize("processes", [2, 1], ids=["workers", "this-process"])
def test_one_bad_batch_fails_the_stage_and_leaves_it_empty(invoice_db, worker_runs, processes):
    texts = _texts(100)
    texts[63] = texts[63][:-20]  # cut off inside the fourth batch
    _stage(invoice_db, _ExportHook(_texts(10), size=25), "retried", processes=processes)  # an earlier try's rows

    with pytest.raises(InvalidProviderData, match=r"^Blob 4 is truncated or corrupt after 4 lines"):
        _stage(invoice_db, _ExportHook(texts, size=20), "retried", processes=processes)

    assert worker_runs == (["retried"] if processes > 1 else [])
    assert _staged(invoice_db, "retried") == []


@pytest.mark.parametrize("invoice_db", ["postgres"], indirect=True)
def test_an_export_below_the_threshold_is_staged_in_this_process(invoice_db, worker_runs):
    hook = _ExportHook(_texts(30), size=10)
    assert _stage(invoice_db, hook, "small", processes=2, parallel_from_lines=31) == 30
    assert _stage(invoice_db, hook, "at-threshold", processes=2, parallel_from_lines=30) == 30
    assert worker_runs == ["at-threshold"]
    assert _staged(invoice_db, "small") == _staged(invoice_db, "at-threshold")
    invoice_db.stage("small").drop()
    invoice_db.stage("at-threshold").drop()


@pytest.mark.parametrize("invoice_db", ["postgres"], indirect=True)
def test_an_error_inside_a_worker_reaches_the_task_with_its_message(invoice_db, worker_runs):
    with pytest.raises(ModuleNotFoundError, match="include.providers.nowhere"):
        _stage(
            invoice_db, _ExportHook(_texts(60), size=10), "broken", processes=2, normaliser="include.providers.nowhere"
        )
    assert worker_runs == ["broken"]
    assert _staged(invoice_db, "broken") == []


@pytest.mark.parametrize("invoice_db", ["postgres"], indirect=True)
def test_a_worker_that_dies_fails_the_stage_with_one_sentence(invoice_db, worker_runs, tmp_path, monkeypatch):
    (tmp_path / "dying_normaliser.py").write_text("import os\n\nos._exit(3)\n")
    monkeypatch.syspath_prepend(str(tmp_path))  # the workers get this process's path
    hook = _ExportHook(_texts(60), size=10)
    with pytest.raises(RuntimeError, match=r"^A staging worker stopped unexpectedly \(exit code 3\)\.$"):
        _stage(invoice_db, hook, "dying", processes=2, normaliser="dying_normaliser")
    assert worker_runs == ["dying"]
    assert _staged(invoice_db, "dying") == []


@pytest.mark.parametrize(
    ("executor", "worker_concurrency", "cores", "expected"),
    [
        ("LocalExecutor", "16", 8, 8),  # the fetch takes every core
        ("CeleryExecutor", "4", 8, 2),  # four slots share eight cores
        ("CeleryExecutor", "2", 2, 1),
        ("CeleryExecutor", "16", 2, 1),  # Airflow's default concurrency on a small worker: never fewer than one
        ("LocalExecutor,CeleryExecutor", "1", 4, 4),  # several executors: this task may be a Celery one
    ],
)
def test_default_processes_share_a_celery_workers_cores_among_its_slots(
    monkeypatch, executor, worker_concurrency, cores, expected
):
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", executor)
    monkeypatch.setenv("AIRFLOW__CELERY__WORKER_CONCURRENCY", worker_concurrency)
    monkeypatch.setattr(include.staging.os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    assert include.staging.default_processes() == expected


@pytest.mark.parametrize("invoice_db", ["postgres"], indirect=True)
def test_batches_copied_from_arrow_stage_the_rows_the_line_by_line_copy_stages(invoice_db):
    from include.providers.microsoft.normaliser import normalize_batch, normalize_lines

    texts = _texts(120)
    hook = _ExportHook(texts, size=50)
    assert all(normalize_batch(HEADER, batch, 1) is not None for batch in hook.batches)  # the Arrow path
    assert _stage(invoice_db, hook, "from-arrow", processes=1) == 120
    items = (item for batch in hook.batches for item in batch.items())
    assert invoice_db.stage("line-by-line").fill(normalize_lines(HEADER, items)) == 120

    assert _staged(invoice_db, "from-arrow") == _staged(invoice_db, "line-by-line")
    invoice_db.stage("from-arrow").drop()
    invoice_db.stage("line-by-line").drop()


def test_workers_stage_lines_and_usage_exactly_as_this_process_does(invoice_db, worker_runs):
    usage = _usage_texts(40)
    usage[70:70] = [""]  # a blank line takes no line number (and sends its batch line by line)
    hook = _ExportHook(_texts(230), size=25, usage=usage)

    assert _stage_invoice(invoice_db, hook, "in-workers", processes=2) == Staged(230, 120)
    assert _stage_invoice(invoice_db, hook, "in-process", processes=1) == Staged(230, 120)

    assert worker_runs == (["in-workers"] if invoice_db.engine.dialect.name == "postgresql" else [])
    staged = _staged_usage(invoice_db, "in-workers")
    assert staged == _staged_usage(invoice_db, "in-process")
    assert [row[0] for row in staged] == list(range(1, 121))
    assert _staged(invoice_db, "in-workers") == _staged(invoice_db, "in-process")
    invoice_db.stage("in-workers").drop()
    invoice_db.stage("in-process").drop()


def test_a_key_spelled_otherwise_on_a_later_usage_line_stages_the_same_rows(invoice_db, worker_runs):
    usage = _usage_texts(20)
    respelled = [*usage]
    respelled[33] = respelled[33].replace('"BillingPreTaxTotal"', '"billingPreTaxTotal"')
    assert respelled != usage

    assert _stage_invoice(invoice_db, _ExportHook(_texts(60), 25, usage), "as-sent", processes=2).usage_lines == 60
    assert _stage_invoice(invoice_db, _ExportHook(_texts(60), 25, respelled), "respelled", processes=2) == (60, 60)

    assert _staged_usage(invoice_db, "respelled") == _staged_usage(invoice_db, "as-sent")
    invoice_db.stage("as-sent").drop()
    invoice_db.stage("respelled").drop()


@pytest.mark.parametrize("processes", [2, 1], ids=["workers", "this-process"])
def test_a_usage_amount_finer_than_sixteen_places_is_refused_with_our_sentence(invoice_db, processes):
    usage = _usage_texts(20)
    usage[41] = dumps(loads_exact(usage[41]) | {"BillingPreTaxTotal": Decimal("0.48603169651524917")})

    with pytest.raises(InvalidProviderData) as refused:
        _stage_invoice(invoice_db, _ExportHook(_texts(60), 25, usage), "too-fine", processes=processes)

    assert str(refused.value) == (
        f"billingPreTaxTotal of daily-rated usage line 42 of invoice {INVOICE} 0.48603169651524917 has more "
        "than 16 decimal places; amounts are kept to 16 places and are never rounded."
    )
    assert _staged(invoice_db, "too-fine") == [] and _staged_usage(invoice_db, "too-fine") == []


@pytest.mark.parametrize("invoice_db", ["postgres"], indirect=True)
@pytest.mark.parametrize("processes", [2, 1], ids=["workers", "this-process"])
def test_a_bad_usage_batch_drops_the_staged_lines_and_usage(invoice_db, worker_runs, processes):
    usage = _usage_texts(30)
    usage[63] = usage[63][:-20]  # cut off inside the third usage batch
    _stage_invoice(invoice_db, _ExportHook(_texts(10), 25, usage[:10]), "retried", processes=processes)

    with pytest.raises(InvalidProviderData, match=r"^Usage blob 3 is truncated or corrupt after 14 lines"):
        _stage_invoice(invoice_db, _ExportHook(_texts(100), 25, usage), "retried", processes=processes)

    assert worker_runs == (["retried"] if processes > 1 else [])
    assert _staged(invoice_db, "retried") == [] and _staged_usage(invoice_db, "retried") == []


def test_a_batch_that_cannot_be_sent_fails_the_stage_instead_of_hanging_it():
    """The feeder reports any error of its own (here: a job pickle refuses), or the producer would wait forever."""
    import pickle

    workers = include.staging._Workers(1)
    batch = LineBatch.of("s", "Blob b", 0, b'{"a": 1}\n')
    try:
        with pytest.raises((pickle.PicklingError, AttributeError), match="pickle"):
            workers.stage(lambda: None, [("lines", 1 + n, batch) for n in range(3)])
    finally:
        workers.stop()
