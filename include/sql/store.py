"""The invoice lifecycle in the invoice database: attempts, checksum outcomes, load, activation,
deactivation, notes and the sweep of abandoned stages, one method per business step.

Each write that must be all-or-nothing runs in a single transaction (under the invoice's lock where
two runs could meet); the load turns a stage (:mod:`include.sql.stage`, the bulk staging I/O) into the
invoice's partition of ``provider_invoice_line`` on PostgreSQL (:mod:`include.sql.partitions`) and copies
it with one ``INSERT ... SELECT`` on SQLite, so no line passes through Python twice.

Over 350 lines on purpose: every state change of an invoice (and the checks and locks that guard it) is
here, so the transitions can be read together.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import String, and_, delete, func, insert, literal, select, true, update
from sqlalchemy import column as sql_column
from sqlalchemy import table as sql_table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from include.model import (
    InvalidProviderData,
    InvoiceHeader,
    parse_money,
)
from include.providers import conn_id_of
from include.sql import partitions
from include.sql.engine import IMMEDIATE
from include.sql.schema import (
    LINE_COLUMNS,
    check_text_lengths,
    invoice_sync_attempt,
    provider_invoice,
    provider_invoice_line,
    provider_invoice_note,
    stage_id_for,
    usage_stage_table,
)
from include.sql.stage import LineStage, drop_stage_table, drop_stage_view, open_stages

MESSAGE_LIMIT = 2000
"""Characters of a failure message kept on the attempt and the invoice: enough for our sentence and the
start of whatever the driver said after it, never a megabyte of someone else's error."""
ABANDONED_AFTER = timedelta(hours=24)
"""A stage whose attempt started longer ago than this (longer than any sync run takes) belongs to a run
that is over: the next scheduled sync drops it (:meth:`InvoiceStore.drop_orphan_stages`)."""
LIVE_OUTCOMES = ("running", "checksum_passed", "loaded")
"""Attempt outcomes of a run still under way; every other outcome is final."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def bounded(message: str, limit: int = MESSAGE_LIMIT) -> str:
    """``message`` on one line and at most ``limit`` characters (cut short with an ellipsis)."""
    text = " ".join(str(message).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _lock_key(provider: str, invoice_id: str) -> int:
    """A signed 64-bit key for ``pg_advisory_xact_lock``, one per provider invoice."""
    digest = hashlib.sha256(f"{provider}|{invoice_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class InvoiceStateError(RuntimeError):
    """The invoice is in a state that forbids the requested step (e.g. active, invoiced lines)."""


@dataclass(frozen=True)
class AttemptKey:
    provider: str
    invoice_id: str
    dag_id: str
    run_id: str


class InvoiceStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    # -- helpers -------------------------------------------------------------------------------
    def _rows(self, query) -> list[dict]:
        """Every row of ``query`` as a dict: the one way this store reads rows out."""
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    @contextmanager
    def invoice_transaction(self, provider: str, invoice_id: str) -> Iterator[Connection]:
        """One transaction holding the invoice's lock until it commits or rolls back.

        Fetch start, load, activate, deactivate and failure recording of one invoice take turns here, so
        two runs of the same invoice never interleave their reads and writes. PostgreSQL: a transaction
        advisory lock keyed by the invoice (other invoices go on in parallel). SQLite: ``BEGIN IMMEDIATE``,
        the database's write lock, taken before the first read so the state read is the state written.
        """
        with self.engine.connect() as conn:
            conn.execution_options(**{IMMEDIATE: True})
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.execute(select(func.pg_advisory_xact_lock(_lock_key(provider, invoice_id))))
                yield conn

    def _upsert(self, conn: Connection, table, values: dict, keys: tuple[str, ...], update_cols: Iterable[str]):
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(table).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=list(keys), set_={col: stmt.excluded[col] for col in update_cols}
        )
        conn.execute(stmt)

    # -- invoices ------------------------------------------------------------------------------
    def get_invoice(self, provider: str, invoice_id: str) -> dict | None:
        rows = self._rows(select(provider_invoice).where(_of_invoice(provider_invoice, provider, invoice_id)))
        return rows[0] if rows else None

    def invoice_states(self, provider: str) -> dict[str, dict]:
        """``invoice_id -> {account, status, fingerprint, deactivated_at}``: what a scheduled sync fetches, and from
        which account."""
        t = provider_invoice
        query = select(t.c.invoice_id, t.c.account, t.c.status, t.c.fingerprint, t.c.deactivated_at).where(
            t.c.provider == provider
        )
        return {row["invoice_id"]: row for row in self._rows(query)}

    def lines(self, provider: str, invoice_id: str) -> list[dict]:
        t = provider_invoice_line
        return self._rows(select(t).where(_of_invoice(t, provider, invoice_id)).order_by(t.c.line_no))

    def _header_values(self, header: InvoiceHeader, now: datetime) -> dict:
        values = {
            "provider": header.provider,
            "invoice_id": header.invoice_id,
            "currency_code": header.currency_code,
            "header_total": header.header_total,
            "header_tax": header.header_tax,
            "invoice_date": header.invoice_date,
            "billing_period_start": header.billing_period_start,
            "billing_period_end": header.billing_period_end,
            "document_type": header.document_type,
            "fingerprint": header.fingerprint,
            "created_at": now,
            "updated_at": now,
        }
        check_text_lengths(provider_invoice, values, f"invoice {header.invoice_id[:64]}")
        for column in ("header_total", "header_tax"):
            if values[column] is not None:
                parse_money(values[column], field_name=f"The {column} of invoice {header.invoice_id[:64]}")
        return values

    def check_header(self, header: InvoiceHeader) -> None:
        """Refuse (``InvalidProviderData``, one sentence) a header the invoice table cannot hold as it is."""
        self._header_values(header, utcnow())

    def _write_invoice(self, conn: Connection, key: AttemptKey, header: InvoiceHeader, **fields) -> None:
        """Insert or update the invoice row of ``key``'s attempt, from the account that attempt fetched from."""
        account = _attempt_account(conn, key)
        _check_account(conn, key.provider, key.invoice_id, account)
        values = {**self._header_values(header, utcnow()), **fields, "account": account}
        update_cols = [c for c in values if c not in ("provider", "invoice_id", "created_at")]
        self._upsert(conn, provider_invoice, values, ("provider", "invoice_id"), update_cols)

    def _current_status(self, conn: Connection, provider: str, invoice_id: str) -> str | None:
        return conn.execute(
            select(provider_invoice.c.status).where(_of_invoice(provider_invoice, provider, invoice_id))
        ).scalar()

    def _update_invoice(self, conn: Connection, key: AttemptKey, **values) -> None:
        """Set columns of the invoice an attempt is about; ``updated_at`` is now unless given."""
        values.setdefault("updated_at", utcnow())
        conn.execute(
            update(provider_invoice).where(_of_invoice(provider_invoice, key.provider, key.invoice_id)).values(**values)
        )

    # -- attempts ------------------------------------------------------------------------------
    def start_attempt(
        self,
        key: AttemptKey,
        *,
        account: str | None = None,
        triggered_by: str | None = None,
        override_tolerance: Decimal | None = None,
        override_reason: str | None = None,
    ) -> None:
        """Open (or, on a task retry, reopen) the attempt row of this run for this invoice, fetched from ``account``
        (a connection id; default: the provider's ``_default`` connection).

        Refused, writing nothing, while the invoice is active (it must be deactivated first) or when another
        account of the provider holds the invoice. Checked under the invoice's lock, so an activation cannot
        slip in between the check and the attempt.
        """
        account = account or conn_id_of(key.provider)
        values = {
            **vars(key),
            "account": account,
            "triggered_by": triggered_by,
            "outcome": "running",
            "override_tolerance": override_tolerance,
            "override_reason": override_reason,
            "message": None,
            "started_at": utcnow(),
            "finished_at": None,
        }
        with self.invoice_transaction(key.provider, key.invoice_id) as conn:
            _check_account(conn, key.provider, key.invoice_id, account)
            if self._current_status(conn, key.provider, key.invoice_id) == "active":
                raise InvoiceStateError(
                    f"Invoice {key.invoice_id} of {key.provider} is active; "
                    "run provider_invoice_deactivate first to download it again."
                )
            self._upsert(
                conn,
                invoice_sync_attempt,
                values,
                ("dag_id", "run_id", "provider", "invoice_id"),
                (
                    "account",
                    "outcome",
                    "message",
                    "finished_at",
                    "triggered_by",
                    "override_tolerance",
                    "override_reason",
                ),
            )

    def _finish_attempt(
        self,
        conn: Connection,
        key: AttemptKey,
        outcome: str,
        *,
        final: bool = True,
        message: str | None = None,
        **fields,
    ):
        """Set the attempt's outcome; its message is replaced too, so a step that passes clears an earlier error."""
        conn.execute(
            update(invoice_sync_attempt)
            .where(_of_attempt(key))
            .values(
                outcome=outcome,
                finished_at=utcnow() if final else None,
                message=None if message is None else bounded(message),
                **fields,
            )
        )

    def attempts(self, provider: str, invoice_id: str) -> list[dict]:
        """Every attempt on one invoice, oldest first: the audit trail."""
        t = invoice_sync_attempt
        return self._rows(select(t).where(_of_invoice(t, provider, invoice_id)).order_by(t.c.id))

    def export_operations(self, key: AttemptKey) -> dict[str, str]:
        """``export -> operation location`` of the provider exports this run's fetch started (empty: none)."""
        t = invoice_sync_attempt
        with self.engine.connect() as conn:
            recorded = conn.execute(select(t.c.export_operations).where(_of_attempt(key))).scalar()
        return json.loads(recorded) if recorded else {}

    def record_export_operations(self, key: AttemptKey, operations: dict[str, str]) -> None:
        """Keep the started exports on the attempt, so a retry of the run waits for them instead of starting
        new ones; written right after each start, before the task defers or can crash."""
        with self.engine.begin() as conn:
            conn.execute(
                update(invoice_sync_attempt)
                .where(_of_attempt(key))
                .values(export_operations=json.dumps(operations, sort_keys=True))
            )

    def record_failure(
        self, key: AttemptKey, header: InvoiceHeader | None, message: str, task_url: str | None = None
    ) -> None:
        """A crash or bad provider data: the attempt ends ``failed``, and so does an invoice nobody loaded.

        Cannot itself fail on bad values: the message is bounded, and a header that the invoice table
        cannot hold (or that names another invoice) is left out. An invoice that is active, or loaded and
        waiting for its activation (by this run or another one), or that another account holds, keeps its
        status: the failure is the attempt's. Should the database refuse even so, the attempt alone is closed
        with both sentences.
        """
        message = bounded(message)
        if header is not None and not self._writable(key, header):
            header = None
        try:
            with self.invoice_transaction(key.provider, key.invoice_id) as conn:
                self._finish_attempt(conn, key, "failed", message=message, task_url=task_url)
                current = conn.execute(
                    select(
                        provider_invoice.c.status, provider_invoice.c.deactivated_at, provider_invoice.c.account
                    ).where(_of_invoice(provider_invoice, key.provider, key.invoice_id))
                ).first()
                if current is not None and (
                    current.status == "active"
                    or (current.status == "inactive" and current.deactivated_at is None)
                    or current.account != _attempt_account(conn, key)
                ):
                    return
                if header is not None:
                    self._write_invoice(conn, key, header, status="failed", status_message=message)
                elif current is not None:
                    self._update_invoice(conn, key, status="failed", status_message=message)
        except SQLAlchemyError as err:
            with self.engine.begin() as conn:
                self._finish_attempt(
                    conn,
                    key,
                    "failed",
                    message=f"{message} Recording the failure on the invoice failed as well: {driver_text(err)}",
                    task_url=task_url,
                )

    def _writable(self, key: AttemptKey, header: InvoiceHeader) -> bool:
        """Whether ``header`` is this attempt's invoice and fits the invoice table."""
        if (header.provider, header.invoice_id) != (key.provider, key.invoice_id):
            return False
        try:
            self.check_header(header)
        except InvalidProviderData:
            return False
        return True

    # -- stages --------------------------------------------------------------------------------
    def stage(self, stage_id: str) -> LineStage:
        """The stage table of one fetch (bulk staging I/O lives in :mod:`include.sql.stage`)."""
        return LineStage(self.engine, stage_id)

    def orphan_stages(self, now: datetime | None = None) -> list[str]:
        """Open stages older than a run: a killed fetch's, or one whose run ended without dropping it.

        A stage belongs to the attempt of its run and invoice. While that attempt started less than
        :data:`ABANDONED_AFTER` before ``now`` its run may still need the stage (a failed checksum task
        can be retried), whatever the attempt says now; any other stage is an orphan.
        """
        since = (now or utcnow()) - ABANDONED_AFTER
        t = invoice_sync_attempt
        with self.engine.connect() as conn:
            recent = conn.execute(
                select(t.c.dag_id, t.c.run_id, t.c.provider, t.c.invoice_id).where(t.c.started_at >= since)
            ).all()
        owned = {name for row in recent for name in self.stage(stage_id_for(*row)).table_names}
        return [name for name in open_stages(self.engine) if name not in owned]

    def drop_orphan_stages(self, now: datetime | None = None) -> list[str]:
        """Drop :meth:`orphan_stages`, and close the attempts they were abandoned by as ``failed``.

        Run by every scheduled sync before it lists invoices, so that a killed fetch costs one day of
        disk at most and its attempt does not stay ``running`` for ever.
        """
        now = now or utcnow()
        orphans = self.orphan_stages(now)
        t = invoice_sync_attempt
        with self.engine.begin() as conn:
            for name in orphans:
                drop_stage_table(conn, name)
            conn.execute(
                update(t)
                .where(t.c.outcome.in_(LIVE_OUTCOMES), t.c.started_at < now - ABANDONED_AFTER)
                .values(
                    outcome="failed",
                    finished_at=now,
                    message="The attempt was abandoned: its run ended without recording an outcome (a killed or "
                    "lost task), and its staged lines were dropped.",
                )
            )
        return orphans

    # -- checksum outcome ---------------------------------------------------------------------
    def record_checksum_error(
        self,
        key: AttemptKey,
        header: InvoiceHeader,
        stage_id: str,
        *,
        totals: dict,
        line_count: int,
        message: str,
        diagnostics: dict,
        note: str | None = None,
        task_url: str | None = None,
        usage_mismatches: Iterable | None = None,
    ) -> None:
        """Failed checksum: header row ``checksum_error`` and the attempt; no line is loaded.

        The row keeps the ``line_count`` of the lines validated (its ``detail_total`` is their sum too), so
        billing staff see how many lines the failing invoice had.

        A failed usage checksum also keeps its ``usage_mismatches`` (:class:`include.sql.usage.SubscriptionUsage`)
        in ``invoice_usage_mismatch``, in the same transaction.
        """
        with self.engine.begin() as conn:
            if usage_mismatches is not None:
                from include.sql.usage import record_mismatches

                record_mismatches(conn, key.provider, key.invoice_id, key.run_id, usage_mismatches)
            self._write_invoice(
                conn, key, header, status="checksum_error", status_message=message, line_count=line_count, **totals
            )
            self._finish_attempt(
                conn,
                key,
                "checksum_error",
                message=message,
                diagnostics=json.dumps(diagnostics),
                task_url=task_url,
                **_attempt_totals(totals),
            )
            if note:
                self.add_note(key.provider, key.invoice_id, note, _author(conn, key), conn=conn)
            self.stage(stage_id).drop(conn)

    def record_checksum_pass(self, key: AttemptKey, *, totals: dict, diagnostics: dict, note: str | None) -> None:
        with self.engine.begin() as conn:
            self._finish_attempt(
                conn,
                key,
                "checksum_passed",
                final=False,
                diagnostics=json.dumps(diagnostics),
                **_attempt_totals(totals),
            )
            if note:
                self.add_note(key.provider, key.invoice_id, note, _author(conn, key), conn=conn)

    def block_activation(self, key: AttemptKey, message: str) -> None:
        """The invoice stays loaded but inactive; the reason is kept on the invoice and the attempt."""
        with self.engine.begin() as conn:
            self._finish_attempt(conn, key, "activation_blocked", message=message)
            self._update_invoice(conn, key, status_message=message)

    def sibling_invoices(self, header: InvoiceHeader, account: str | None = None) -> list[dict]:
        """Other invoices of the same provider, billing period and currency (charges may be split), of the same
        ``account`` when one is given: another region's invoices share no charges with this one."""
        if header.billing_period_start is None:
            return []
        t = provider_invoice
        return self._rows(
            select(t.c.invoice_id, t.c.header_total, t.c.status).where(
                t.c.provider == header.provider,
                t.c.invoice_id != header.invoice_id,
                t.c.billing_period_start == header.billing_period_start,
                t.c.currency_code == header.currency_code,
                true() if account is None else t.c.account == account,
            )
        )

    # -- load and activate ---------------------------------------------------------------------
    def load_from_stage(self, key: AttemptKey, header: InvoiceHeader, stage_id: str, *, totals: dict) -> int:
        """Replace the invoice's lines (and its daily-rated usage) with the staged ones and write its header, in
        one transaction.

        Under the invoice's lock: of two runs loading one invoice, the second waits, then replaces the
        lines again (the invoice is not active yet) or is refused (it is), and a refused load drops its
        stage, since nothing will read it again.
        """
        try:
            return self._load(key, header, stage_id, totals)
        except InvoiceStateError:
            self.stage(stage_id).drop()
            raise

    def _load(self, key: AttemptKey, header: InvoiceHeader, stage_id: str, totals: dict) -> int:
        from include.sql.usage import load_usage

        with self.invoice_transaction(key.provider, key.invoice_id) as conn:
            if self._current_status(conn, key.provider, key.invoice_id) == "active":
                raise InvoiceStateError(
                    f"Invoice {key.invoice_id} of {key.provider} is active; deactivate it before it is loaded again."
                )
            try:
                if conn.dialect.name == "postgresql":
                    loaded = self._attach_stage(conn, key, stage_id)
                else:
                    load_usage(conn, key.provider, key.invoice_id, stage_id)
                    loaded = self._copy_lines(conn, key, stage_id)
            except IntegrityError:  # the key refuses the stage: only a fault of the staging can do that
                raise InvoiceStateError(
                    f"The staged lines or daily-rated usage of invoice {key.invoice_id} of {key.provider} repeat a "
                    "line number, so they cannot be loaded; sync the invoice again."
                ) from None
            self._write_invoice(
                conn,
                key,
                header,
                status="inactive",
                status_message=None,
                deactivated_at=None,
                line_count=loaded,
                **totals,
            )
            self._finish_attempt(conn, key, "loaded", final=False, **_attempt_totals(totals))
            self.stage(stage_id).drop(conn)
        return loaded

    def shape_stage(self, stage_id: str, provider: str, invoice_id: str) -> bool:
        """PostgreSQL: give the stage (its lines and usage) the columns and key of their tables now, so that the
        load, which would otherwise do it, only attaches them, and their statistics: freshly copied tables have
        none, and PostgreSQL would plan the checksum's queries for a handful of rows (sorts spilled to disk
        where a hash would do). Nothing else may read the stage meanwhile: its tables are locked exclusively for
        the rewrite and the sort. SQLite copies the stage: nothing to do.

        Whether it was shaped: a stage whose line numbers repeat cannot take the key and stays as it was, for the
        checksum's uniqueness expectation to refuse it in a sentence of ours (a failed checksum drops it).
        """
        if self.engine.dialect.name != "postgresql":
            return False
        try:
            with self.engine.begin() as conn:
                with_usage = self._shape_stage(conn, stage_id, provider, invoice_id)
                conn.exec_driver_sql(f"ANALYZE {self.stage(stage_id).table.name}")
                if with_usage:
                    conn.exec_driver_sql(f"ANALYZE {usage_stage_table(stage_id).name}")
        except IntegrityError:
            return False
        return True

    def _shape_stage(self, conn: Connection, stage_id: str, provider: str, invoice_id: str) -> bool:
        """:func:`partitions.shape_stage` for the stage's lines, and for its usage when it has some (whether it has)."""
        from include.sql.usage import shape_usage_stage

        lines = self.stage(stage_id).table
        drop_stage_view(conn, lines.name)  # a killed checksum's view would hold the column types
        partitions.shape_stage(conn, lines, provider, invoice_id)
        return shape_usage_stage(conn, stage_id, provider, invoice_id)

    def _attach_stage(self, conn: Connection, key: AttemptKey, stage_id: str) -> int:
        """PostgreSQL: the stage's lines and usage become the invoice's partitions of their tables (no second copy).

        The stage is shaped first (a rewrite and a sort, on the stage alone, unless the checksum did it); only
        then are the provider's partitions locked, the lines' first, for the check and a few catalogue changes
        (:mod:`include.sql.partitions`; the usage: :func:`include.sql.usage.load_usage`).
        """
        from include.sql.usage import load_usage

        lines = self.stage(stage_id).table
        self._shape_stage(conn, stage_id, key.provider, key.invoice_id)
        loaded = conn.execute(select(func.count()).select_from(lines)).scalar()
        current = partitions.lock_invoice_partition(conn, key.provider, key.invoice_id)
        if current is not None:
            _refuse_invoiced_lines(conn, key, sql_table(current, sql_column("customer_invoice_ref")))
        partitions.attach_stage(conn, lines, key.provider, key.invoice_id)
        load_usage(conn, key.provider, key.invoice_id, stage_id)
        return loaded

    def _copy_lines(self, conn: Connection, key: AttemptKey, stage_id: str) -> int:
        """SQLite: the invoice's lines are replaced by a copy of the stage, in the load's transaction."""
        line, stage = provider_invoice_line, self.stage(stage_id).table
        same_invoice = _of_invoice(line, key.provider, key.invoice_id)
        _refuse_invoiced_lines(conn, key, line, same_invoice)
        conn.execute(delete(line).where(same_invoice))
        # Every line of the invoice was deleted just above, in this transaction, and the stage holds
        # this invoice's lines only: the rows inserted are exactly the invoice's lines now (a count
        # query would re-read a million index entries to say the same).
        staged = select(
            literal(key.provider, String).label("provider"),
            literal(key.invoice_id, String).label("invoice_id"),
            *(stage.c[c] for c in LINE_COLUMNS),
        )
        loaded = conn.execute(insert(line).from_select(("provider", "invoice_id", *LINE_COLUMNS), staged)).rowcount
        if loaded is None or loaded < 0:  # a driver that does not report it: count instead
            loaded = conn.execute(select(func.count()).where(same_invoice)).scalar()
        return loaded

    def activate(self, key: AttemptKey) -> None:
        with self.invoice_transaction(key.provider, key.invoice_id) as conn:
            status = self._current_status(conn, key.provider, key.invoice_id)
            if status == "active":
                raise InvoiceStateError(
                    f"Invoice {key.invoice_id} of {key.provider} is already active: another run loaded and "
                    "activated it first, and this run leaves it as it is."
                )
            now = utcnow()
            result = conn.execute(
                update(provider_invoice)
                .where(
                    _of_invoice(provider_invoice, key.provider, key.invoice_id), provider_invoice.c.status == "inactive"
                )
                .values(status="active", activated_at=now, updated_at=now, status_message=None)
            )
            if result.rowcount != 1:
                raise InvoiceStateError(
                    f"Invoice {key.invoice_id} of {key.provider} is not loaded; nothing to activate."
                )
            self._finish_attempt(conn, key, "activated")

    def deactivate(self, key: AttemptKey, *, reason: str, author: str | None) -> None:
        """Active -> inactive so the invoice can be downloaded again; refused while lines are invoiced."""
        line = provider_invoice_line
        with self.invoice_transaction(key.provider, key.invoice_id) as conn:
            status = self._current_status(conn, key.provider, key.invoice_id)
            if status is None:
                raise InvoiceStateError(f"Invoice {key.invoice_id} of {key.provider} is not in the invoice database.")
            account = conn.execute(
                select(provider_invoice.c.account).where(_of_invoice(provider_invoice, key.provider, key.invoice_id))
            ).scalar()
            if status != "active":
                raise InvoiceStateError(
                    f"Invoice {key.invoice_id} of {key.provider} is {status}, not active; only an active invoice "
                    "can be deactivated."
                )
            blocking = conn.execute(
                select(line.c.line_no, line.c.customer_invoice_ref)
                .where(_of_invoice(line, key.provider, key.invoice_id), line.c.customer_invoice_ref.is_not(None))
                .order_by(line.c.line_no)
            ).all()
            if blocking:
                shown = ", ".join(
                    f"line {r.line_no} (customer invoice {r.customer_invoice_ref})" for r in blocking[:50]
                )
                more = f" and {len(blocking) - 50} more" if len(blocking) > 50 else ""
                raise InvoiceStateError(
                    f"Invoice {key.invoice_id} of {key.provider} cannot be deactivated: {len(blocking)} line(s) are "
                    f"already invoiced to customers: {shown}{more}. Unlink them from the customer invoices first."
                )
            now = utcnow()
            self._update_invoice(
                conn,
                key,
                status="inactive",
                deactivated_at=now,
                updated_at=now,
                status_message=f"Deactivated: {reason}",
            )
            self.add_note(key.provider, key.invoice_id, f"Deactivated: {reason}", author, conn=conn)
            self._upsert(
                conn,
                invoice_sync_attempt,
                {
                    **vars(key),
                    "account": account,
                    "triggered_by": author,
                    "outcome": "deactivated",
                    "message": reason,
                    "started_at": now,
                    "finished_at": now,
                },
                ("dag_id", "run_id", "provider", "invoice_id"),
                ("triggered_by", "outcome", "message", "finished_at"),
            )

    # -- notes ---------------------------------------------------------------------------------
    def add_note(self, provider: str, invoice_id: str, note: str, author: str | None, conn: Connection | None = None):
        values = {
            "provider": provider,
            "invoice_id": invoice_id,
            "note": note,
            "author": author,
            "created_at": utcnow(),
        }
        if conn is not None:
            conn.execute(insert(provider_invoice_note).values(**values))
            return
        with self.engine.begin() as own:
            own.execute(insert(provider_invoice_note).values(**values))

    def notes(self, provider: str, invoice_id: str) -> list[dict]:
        t = provider_invoice_note
        return self._rows(select(t).where(_of_invoice(t, provider, invoice_id)).order_by(t.c.id))


def _of_invoice(table, provider: str, invoice_id: str):
    """The rows of one provider invoice in ``table`` (every table here carries provider and invoice_id)."""
    return and_(table.c.provider == provider, table.c.invoice_id == invoice_id)


def _attempt_account(conn: Connection, key: AttemptKey) -> str:
    """The account ``key``'s attempt fetches from (the provider's default connection before the attempt has a row)."""
    account = conn.execute(select(invoice_sync_attempt.c.account).where(_of_attempt(key))).scalar()
    return account or conn_id_of(key.provider)


def _check_account(conn: Connection, provider: str, invoice_id: str, account: str) -> None:
    """Refuse (one sentence) to write ``account``'s copy of an invoice that another account of the provider holds."""
    holder = conn.execute(
        select(provider_invoice.c.account).where(_of_invoice(provider_invoice, provider, invoice_id))
    ).scalar()
    if holder is not None and holder != account:
        raise InvoiceStateError(account_conflict(provider, invoice_id, holder, account))


def account_conflict(provider: str, invoice_id: str, holder: str, other: str) -> str:
    """The sentence of an invoice id that two accounts of one provider list: the first keeps it."""
    return (
        f"Invoice {invoice_id} of {provider} belongs to account {holder}, and account {other} lists it too; it is "
        f"left with {holder}: check that the connections {holder} and {other} are not the same provider account."
    )


def _refuse_invoiced_lines(conn: Connection, key: AttemptKey, lines, *where) -> None:
    """A load never replaces lines already invoiced to customers (the invoice's rows of ``lines``: its
    partition, or the line table ``where`` it is this invoice)."""
    invoiced = conn.execute(
        select(func.count()).select_from(lines).where(lines.c.customer_invoice_ref.is_not(None), *where)
    ).scalar()
    if invoiced:
        raise InvoiceStateError(
            f"Invoice {key.invoice_id} of {key.provider} has {invoiced} line(s) already invoiced to customers."
        )


def _of_attempt(key: AttemptKey):
    """The attempt row of ``key`` (one per DAG run and invoice)."""
    return and_(*(invoice_sync_attempt.c[k] == v for k, v in vars(key).items()))


def _author(conn: Connection, key: AttemptKey) -> str | None:
    """Notes are signed by whoever triggered the attempt they come from."""
    return conn.execute(select(invoice_sync_attempt.c.triggered_by).where(_of_attempt(key))).scalar()


def driver_text(err: BaseException, limit: int = 300) -> str:
    """What a database driver said, on one line and cut short (it may follow a sentence of ours)."""
    text = str(getattr(err, "orig", None) or err)
    return bounded(text.split("[SQL:")[0], limit)


def _attempt_totals(totals: dict) -> dict:
    return {k: totals[k] for k in ("header_total", "detail_total", "difference", "tolerance_applied") if k in totals}
