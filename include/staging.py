"""Stage one invoice's lines: normalise them and bulk-load them into the staging table.

Parsing and normalising cost far more CPU than downloading and unzipping (about 15 µs against 2 µs
per export line), and in one Python process they leave the machine's other cores idle. So when a
provider hands over its lines as JSON-lines text (:meth:`iter_line_batches` of the hook) and the
invoice database is PostgreSQL, this process only downloads, unzips and counts, and worker processes
(one per core) parse, normalise and ``COPY`` the batches, each into the same ``stage_id``. The line
numbers stay those of the sequential path: a batch's first line number is the count of the non-blank
lines before it, known without parsing.

Everything else (SQLite, which takes one writer at a time; page-by-page APIs; an invoice of a single
batch, where starting processes would cost more than it saves) is staged here in one streamed
transaction. If any batch fails, the stage is emptied before the error is raised.
"""

from __future__ import annotations

import functools
import importlib
import itertools
import os
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from include.exact_json import LineBatch
from include.model import InvoiceHeader
from include.sql.store import InvoiceStore

IN_FLIGHT_PER_PROCESS = 2
"""Batches handed over per worker and not yet staged: keeps every worker busy, bounds the memory held."""


def default_processes() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclass(frozen=True)
class StageJob:
    """What a worker needs to stage a batch; sent to it with every batch (it is small)."""

    db_url: str
    """With the password: it only travels through the pipe to the worker, never into a log."""
    stage_id: str
    header: InvoiceHeader
    normaliser_path: str


def stage_invoice(
    store: InvoiceStore,
    job: StageJob,
    hook: Any,
    raw_invoice: dict,
    *,
    processes: int | None = None,
) -> int:
    """Stage every line of ``raw_invoice`` under ``job.stage_id`` (replacing what it held); returns the count."""
    header = job.header
    normaliser = importlib.import_module(job.normaliser_path)
    processes = processes or default_processes()
    batches = hook.iter_line_batches(raw_invoice)
    if batches is not None and processes > 1 and store.engine.dialect.name == "postgresql":
        first_two = list(itertools.islice(batches, 2))
        if len(first_two) > 1:
            return _stage_in_processes(store, job, itertools.chain(first_two, batches), processes)
        items = (item for batch in first_two for item in batch.items())
    elif batches is not None:
        items = (item for batch in batches for item in batch.items())
    else:
        items = hook.iter_line_items(raw_invoice)
    lines = normaliser.normalize_lines(header, items)
    return store.stage_lines(job.stage_id, header.provider, header.invoice_id, lines)


def _stage_in_processes(store: InvoiceStore, job: StageJob, batches: Iterator[LineBatch], processes: int) -> int:
    """Hand the batches to ``processes`` workers in order, each with its first line number; wait for all."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    store.drop_stage(job.stage_id)
    # spawn, not fork: a fork would copy this task process's threads, sockets and log handlers.
    pool = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"))
    in_flight: deque = deque()
    staged = 0
    next_line_no = 1
    try:
        for batch in batches:
            in_flight.append((batch, pool.submit(stage_batch, job, next_line_no, batch)))
            next_line_no += batch.count
            if len(in_flight) > IN_FLIGHT_PER_PROCESS * processes:
                staged += _staged(*in_flight.popleft())
        while in_flight:
            staged += _staged(*in_flight.popleft())
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)  # no worker may write after the stage is emptied
        store.drop_stage(job.stage_id)
        raise
    pool.shutdown(wait=True)
    return staged


def _staged(batch: LineBatch, future) -> int:
    count = future.result()
    if count != batch.count:  # the numbering of every later batch relied on it
        raise RuntimeError(f"{batch.origin}: staged {count} lines of a batch of {batch.count}.")
    return count


def stage_batch(job: StageJob, first_line_no: int, batch: LineBatch) -> int:
    """In a worker process: parse, normalise and append one batch to the stage, in one transaction."""
    normaliser = importlib.import_module(job.normaliser_path)
    lines = normaliser.normalize_lines(job.header, batch.items(), first_line_no)
    return _store(job.db_url).append_to_stage(job.stage_id, job.header.provider, job.header.invoice_id, lines)


@functools.cache
def _store(db_url: str) -> InvoiceStore:
    from include.sql.engine import engine_for

    return InvoiceStore(engine_for(db_url))
