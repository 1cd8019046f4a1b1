"""Stage one invoice's lines, and its daily-rated usage beside them: normalise and bulk-load them.

When a provider hands over its lines as JSON-lines text (:meth:`iter_line_batches` of the hook) and
the invoice database is PostgreSQL, the lines are staged batch by batch: a normaliser with
``normalize_batch`` maps a whole batch at once (Arrow, exactly; Microsoft's
:mod:`include.providers.microsoft.vectorised`), and ``COPY`` takes it as CSV; a batch it declines
goes through ``normalize_lines`` line by line. A large invoice (``parallel_from_lines``) is staged by
worker processes (:func:`default_processes` of them) while this process only downloads, unzips and
counts; a smaller one batch after batch here. The line numbers stay those of the sequential path: a
batch's first line number is the count of the non-blank lines before it, known without parsing. The
daily-rated usage export's batches follow the line batches the same way (``normalize_usage_batch``,
numbered from 1 of their own), into the same workers when the lines went there. If any batch fails,
the stage (lines and usage) is dropped before the error is raised.

Everything else (SQLite, which takes one writer at a time; page-by-page APIs) is staged here line by
line in one streamed transaction.

The workers are ``python -m include.staging`` processes fed over pipes, not :mod:`multiprocessing`:
its spawn start method re-runs the parent's main script in each child, and inside an Airflow task that
script is the ``airflow`` command, which cannot start there.
"""

from __future__ import annotations

import collections
import functools
import importlib
import itertools
import logging
import os
import pickle
import queue
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, NamedTuple

from include.exact_json import LineBatch
from include.model import InvoiceHeader
from include.sql.store import InvoiceStore

log = logging.getLogger(__name__)

PARALLEL_FROM_LINES = 20_000
"""By default, invoices with fewer lines are staged in the task's own process."""


def default_processes() -> int:
    """The cores this process may run on, shared among the tasks that may run beside it (at least 1).

    A Celery worker runs up to ``[celery] worker_concurrency`` tasks at once on its machine, and each
    of them may be a fetch staging a large invoice: each gets its share of the cores, so a worker never
    starts more staging processes than its machine has cores. Under other executors the fetch takes
    every core (the LocalExecutor's other tasks mostly wait on HTTP); ``stage_processes`` overrides both.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // _celery_worker_slots())


def _celery_worker_slots() -> int:
    """``[celery] worker_concurrency`` when this task runs under the CeleryExecutor, else 1."""
    from airflow.sdk.configuration import conf

    executors = conf.get("core", "executor", fallback="") or ""
    if "CeleryExecutor" not in executors:
        return 1
    return max(1, conf.getint("celery", "worker_concurrency", fallback=16))


@dataclass(frozen=True)
class StageJob:
    """What a worker needs to stage a batch; sent to it with every batch (it is small)."""

    db_url: str
    """With the password: it only travels through the pipe to the worker, never into a log."""
    stage_id: str
    header: InvoiceHeader
    normaliser_path: str
    usage_normaliser_path: str | None = None
    """The provider's daily-rated usage normaliser (``ProviderSpec.usage_normaliser_path``): the usage is
    staged beside the lines. None: the provider has none."""


class Staged(NamedTuple):
    """What one fetch staged: its lines, and its daily-rated usage lines (None: the invoice has none)."""

    lines: int
    usage_lines: int | None


LINES, USAGE = "lines", "usage"
"""What a batch holds: the invoice's lines, or its daily-rated usage (numbered from 1 of its own)."""


def stage_invoice(
    store: InvoiceStore,
    job: StageJob,
    hook: Any,
    raw_invoice: dict,
    *,
    processes: int | None = None,
    parallel_from_lines: int = PARALLEL_FROM_LINES,
) -> Staged:
    """Stage every line of ``raw_invoice`` under ``job.stage_id`` (replacing what it held), then its daily-rated
    usage when the provider has some (:func:`stage_usage`); on any failure nothing stays staged."""
    header = job.header
    processes = processes or default_processes()
    batches = hook.iter_line_batches(raw_invoice)
    if batches is None:
        items = hook.iter_line_items(raw_invoice)
    elif store.engine.dialect.name == "postgresql":
        if processes > 1:
            first, batches = _first_lines(batches, parallel_from_lines)
            if sum(batch.count for batch in first) >= parallel_from_lines:
                batches = itertools.chain(first, batches)
                return _stage_in_processes(store, job, hook, raw_invoice, batches, processes)
            batches = iter(first)
        return _stage_batches_here(store, job, hook, raw_invoice, batches)
    else:
        items = (item for batch in batches for item in batch.items())
    lines = importlib.import_module(job.normaliser_path).normalize_lines(header, items)
    stage = store.stage(job.stage_id)
    count = stage.fill(lines)
    try:
        return Staged(count, stage_usage(store, job, hook, raw_invoice))
    except BaseException:
        stage.drop()
        raise


def stage_usage(store: InvoiceStore, job: StageJob, hook: Any, raw_invoice: dict) -> int | None:
    """Stage the invoice's billed daily-rated usage in this process; ``None`` when it has no such usage.

    Export batches on PostgreSQL go batch by batch (Arrow when it can, numbered from 1 in export order, as
    the lines' batches); anything else line by line in one streamed transaction. A large invoice's usage
    goes to the workers with its lines instead (:func:`stage_invoice`). On a failure the caller drops the
    stage, lines included.
    """
    return _stage_usage_here(store, job, hook, raw_invoice, _usage_batches(store, job, hook, raw_invoice))


def _usage_batches(store: InvoiceStore, job: StageJob, hook: Any, raw_invoice: dict) -> Iterator[LineBatch] | None:
    """The daily-rated usage as JSON-lines batches to stage one by one (PostgreSQL), or ``None``."""
    if job.usage_normaliser_path is None or store.engine.dialect.name != "postgresql":
        return None
    return hook.iter_usage_batches(raw_invoice)


def _stage_usage_here(
    store: InvoiceStore, job: StageJob, hook: Any, raw_invoice: dict, batches: Iterator[LineBatch] | None
) -> int | None:
    from include.sql.usage import create_usage_stage
    from include.sql.usage import stage_usage as stage_usage_lines

    if batches is not None:
        create_usage_stage(store.engine, job.stage_id)
        staged = 0
        for batch in batches:
            staged += _stage_batch(store, job, USAGE, staged + 1, batch)
        return staged
    if job.usage_normaliser_path is None or (items := hook.iter_usage_items(raw_invoice)) is None:
        return None
    lines = importlib.import_module(job.usage_normaliser_path).normalize_usage_lines(job.header, items)
    return stage_usage_lines(store.engine, job.stage_id, lines)


def _first_lines(batches: Iterator[LineBatch], lines: int) -> tuple[list[LineBatch], Iterator[LineBatch]]:
    """The first batches holding ``lines`` lines (or all of them), and the rest."""
    first, seen = [], 0
    for batch in batches:
        first.append(batch)
        seen += batch.count
        if seen >= lines:
            break
    return first, batches


def _stage_batches_here(
    store: InvoiceStore, job: StageJob, hook: Any, raw_invoice: dict, batches: Iterable[LineBatch]
) -> Staged:
    """What the workers do, batch after batch in this process (one transaction each; a failure drops the stage)."""
    stage = store.stage(job.stage_id)
    stage.create()
    staged = 0
    try:
        for batch in batches:
            staged += _stage_batch(store, job, LINES, staged + 1, batch)
        return Staged(staged, stage_usage(store, job, hook, raw_invoice))
    except BaseException:
        stage.drop()
        raise


def _stage_in_processes(
    store: InvoiceStore, job: StageJob, hook: Any, raw_invoice: dict, batches: Iterable[LineBatch], processes: int
) -> Staged:
    """Hand the line batches, then the usage export's, to ``processes`` workers, each with its first line
    number; wait for all of them. Usage that does not come as batches is staged here after them."""
    from include.sql.usage import create_usage_stage

    stage = store.stage(job.stage_id)
    stage.create()
    log.info("%d worker processes parse and stage invoice %s", processes, job.header.invoice_id)
    workers = _Workers(processes)
    try:
        usage_batches = _usage_batches(store, job, hook, raw_invoice)
        if usage_batches is not None:
            create_usage_stage(store.engine, job.stage_id)
        tasks = itertools.chain(_numbered(LINES, batches), _numbered(USAGE, usage_batches or ()))
        staged = workers.stage(job, tasks)
        usage = staged[USAGE] if usage_batches is not None else _stage_usage_here(store, job, hook, raw_invoice, None)
    except BaseException:
        workers.stop()  # no worker may write after the stage is dropped
        stage.drop()
        raise
    workers.stop()
    return Staged(staged[LINES], usage)


def _numbered(kind: str, batches: Iterable[LineBatch]) -> Iterator[tuple[str, int, LineBatch]]:
    """``(kind, first line number, batch)``: a batch's first line number is the count of the lines before it."""
    next_line_no = 1
    for batch in batches:
        yield kind, next_line_no, batch
        next_line_no += batch.count


class _Workers:
    """``processes`` staging workers, each fed by a thread of this process over its stdin and stdout.

    A bounded queue holds the batches not yet taken (one per worker), and each feeder the two it sent
    whose reply is to come: at most three batches per worker are in memory here, two in the worker.
    """

    def __init__(self, processes: int):
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(path for path in sys.path if path)}
        self.processes = [
            subprocess.Popen([sys.executable, "-m", __name__], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
            for _ in range(processes)
        ]
        self.tasks: queue.Queue = queue.Queue(maxsize=processes)
        self.failures: list[BaseException] = []
        self.staged = {LINES: 0, USAGE: 0}
        self.lock = threading.Lock()

    def stage(self, job: StageJob, tasks: Iterable[tuple[str, int, LineBatch]]) -> dict[str, int]:
        """Stage every ``(kind, first line number, batch)``; the lines staged of each kind."""
        threads = [threading.Thread(target=self._feed, args=(process,), daemon=True) for process in self.processes]
        for thread in threads:
            thread.start()
        try:
            for kind, first_line_no, batch in tasks:
                self._put((job, kind, first_line_no, batch))
        finally:
            for _ in threads:
                self._put(None)
            for thread in threads:
                thread.join()
        if self.failures:
            raise self.failures[0]
        return self.staged

    def _put(self, task) -> None:
        """Queue a task, unless a worker failed (then every feeding thread is stopping)."""
        while not (self.failures and task is not None):
            try:
                self.tasks.put(task, timeout=0.2)
                return
            except queue.Full:
                continue
        raise self.failures[0]

    def _feed(self, process: subprocess.Popen) -> None:
        """Keep two batches with ``process``: the one it stages and the next, which it reads meanwhile (a
        batch is megabytes through a pipe, too long a wait between two batches); its replies come in order."""
        sent: collections.deque = collections.deque()  # tasks whose reply is still to come
        more, broken = True, False
        while more or sent:
            if more and (len(sent) < 2 or broken):
                task = self.tasks.get()
                if task is None:
                    more = False
                elif not (self.failures or broken):  # else drain: the producer stops at its next batch
                    if self._send(process, task):
                        sent.append(task)
                    else:
                        broken = True
                continue
            task = sent.popleft()
            if broken:  # its reply will not come
                continue
            ok, value = self._reply(process)
            broken = value is _STOPPED
            _, kind, _, batch = task
            if ok and value != batch.count:  # the numbering of every later batch relied on it
                ok, value = False, RuntimeError(f"{batch.origin}: staged {value} lines of a batch of {batch.count}.")
            failure = _stopped(process) if broken else value  # waits for its exit: outside the lock
            with self.lock:
                if ok:
                    self.staged[kind] += value
                else:
                    self.failures.append(failure)

    def _send(self, process: subprocess.Popen, task) -> bool:
        """Whether ``task`` reached the worker (it reads one while it stages another)."""
        try:
            pickle.dump(task, process.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            process.stdin.flush()
            return True
        except (OSError, ValueError):  # its pipe is closed (it exited, or stop() closed it)
            failure = _stopped(process)
        except Exception as exc:  # a thread must report, never die silently: the producer waits on it
            failure = exc
        with self.lock:
            self.failures.append(failure)
        return False

    def _reply(self, process: subprocess.Popen) -> tuple[bool, Any]:
        """``(ok, count or error)`` of the oldest batch sent; ``(False, _STOPPED)`` when the worker is gone."""
        try:
            return pickle.load(process.stdout)
        except (OSError, EOFError, pickle.UnpicklingError):
            return False, _STOPPED
        except Exception as exc:  # a thread must report, never die silently: the producer waits on it
            return False, exc

    def stop(self) -> None:
        """Close the workers' input and wait until each has finished what it was doing and exited."""
        for process in self.processes:
            try:
                process.stdin.close()
            except OSError:
                pass
        for process in self.processes:
            process.wait()
            process.stdout.close()


_STOPPED = object()
"""What :meth:`_Workers._reply` returns for a worker whose pipe closed."""


def _stopped(process: subprocess.Popen) -> RuntimeError:
    return RuntimeError(f"A staging worker stopped unexpectedly (exit code {_exit_code(process)}).")


def _exit_code(process: subprocess.Popen) -> int | None:
    """The code of a worker whose pipe just closed (it is exiting), or ``None`` if it does not exit."""
    try:
        return process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        return None


def stage_batch(job: StageJob, kind: str, first_line_no: int, batch: LineBatch) -> int:
    """In a worker: parse, normalise and append one batch of ``kind`` to the stage, in one transaction.

    A normaliser with ``normalize_batch`` (``normalize_usage_batch``) maps the whole batch at once when it
    can (an Arrow table); otherwise, or when it returns ``None``, the lines go through ``normalize_lines``
    (``normalize_usage_lines``) one by one.
    """
    return _stage_batch(_store(job.db_url), job, kind, first_line_no, batch)


def _stage_batch(store: InvoiceStore, job: StageJob, kind: str, first_line_no: int, batch: LineBatch) -> int:
    if kind == USAGE:
        return _stage_usage_batch(store, job, first_line_no, batch)
    normaliser = importlib.import_module(job.normaliser_path)
    stage = store.stage(job.stage_id)
    whole_batch = getattr(normaliser, "normalize_batch", None)
    table = whole_batch(job.header, batch, first_line_no) if whole_batch else None
    if table is not None:
        return stage.append_table(table)
    return stage.append(normaliser.normalize_lines(job.header, batch.items(), first_line_no))


def _stage_usage_batch(store: InvoiceStore, job: StageJob, first_line_no: int, batch: LineBatch) -> int:
    from include.sql.usage import append_usage, append_usage_table

    normaliser = importlib.import_module(job.usage_normaliser_path)
    whole_batch = getattr(normaliser, "normalize_usage_batch", None)
    table = whole_batch(job.header, batch, first_line_no) if whole_batch else None
    if table is not None:
        return append_usage_table(store.engine, job.stage_id, table)
    lines = normaliser.normalize_usage_lines(job.header, (line for _, line in batch.items()), first_line_no)
    return append_usage(store.engine, job.stage_id, lines)


@functools.cache
def _store(db_url: str) -> InvoiceStore:
    from include.sql.engine import engine_for

    return InvoiceStore(engine_for(db_url))


def _serve(tasks: BinaryIO, results: BinaryIO) -> None:
    """The worker loop: one pickled ``(job, kind, first_line_no, batch)`` in, one ``(ok, count or error)`` out.

    A thread reads the next task while this one stages the current one (:meth:`_Workers._feed` sends two).
    """
    incoming: queue.Queue = queue.Queue(maxsize=1)
    threading.Thread(target=_read_tasks, args=(tasks, incoming), daemon=True).start()
    while (task := incoming.get()) is not None:
        if isinstance(task, BaseException):
            raise task  # an unreadable task: the worker exits, its feeder reports it stopped
        job, kind, first_line_no, batch = task
        try:
            reply = (True, stage_batch(job, kind, first_line_no, batch))
        except Exception as exc:
            reply = (False, _portable(exc))
        pickle.dump(reply, results, protocol=pickle.HIGHEST_PROTOCOL)
        results.flush()


def _read_tasks(tasks: BinaryIO, incoming: queue.Queue) -> None:
    """Unpickle tasks into ``incoming`` until the input closes (then ``None``) or cannot be read (the error)."""
    while True:
        try:
            task = pickle.load(tasks)
        except EOFError:
            incoming.put(None)
            return
        except BaseException as exc:
            incoming.put(exc)
            return
        incoming.put(task)


def _portable(exc: Exception) -> Exception:
    """``exc`` if it survives pickling (the provider-data errors do), else its type and message."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


if __name__ == "__main__":
    # stdout is the reply channel: anything printed by accident goes to stderr (the task log) instead.
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    _serve(sys.stdin.buffer, replies)
