"""A stage: the table one fetch stages an invoice's lines in, and every bulk read and write of it.

The fetch fills a stage (PostgreSQL ``COPY``, SQLite ``executemany``), the checksum reads its totals and
has GX query its exact micros where they are, and a failed checksum drops it; the load makes it the
invoice's partition of the line table on PostgreSQL (:mod:`include.sql.partitions`) and copies and drops
it on SQLite (:mod:`include.sql.store` does both inside its own transactions). Nothing here knows about an
invoice's lifecycle. The stage has the line table's column types, so every write refuses a text longer
than its column first, with one sentence on both databases (PostgreSQL would raise a driver error, SQLite
would store it).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import BigInteger, String, Table, case, cast, func, inspect, literal, select, type_coerce
from sqlalchemy.engine import Connection, Engine

from include.model import MICROS_PER_UNIT, InvalidProviderData, InvoiceLine, from_micros, parse_money, to_micros
from include.sql.schema import (
    LINE_COLUMNS,
    LINE_TEXT_LIMITS,
    STAGE_TABLE_PREFIX,
    USAGE_STAGE_TABLE_PREFIX,
    amounts_view_of,
    line_stage_table,
    usage_stage_table,
)


@dataclass(frozen=True)
class StagedSummary:
    """Exact aggregates of one staged invoice, computed in SQL."""

    line_count: int
    breakdown: dict[str, Decimal]
    line_counts: dict[str, int]
    currency_totals: dict[str, Decimal]
    usage_last_charge_end: date | None


def exact_micros(column, engine: Engine):
    """The Money ``column`` as exact integer micros, in SQL, on either dialect."""
    if engine.dialect.name == "sqlite":
        return type_coerce(column, BigInteger)
    return cast(column * MICROS_PER_UNIT, BigInteger)


def open_stages(engine: Engine) -> list[str]:
    """Stage tables that exist now: fetches waiting for their checksum or load, and orphans of runs that
    are over (see :meth:`include.sql.store.InvoiceStore.orphan_stages`)."""
    prefixes = (STAGE_TABLE_PREFIX, USAGE_STAGE_TABLE_PREFIX)
    return sorted(name for name in inspect(engine).get_table_names() if name.startswith(prefixes))


def drop_stage_view(conn: Connection, name: str) -> None:
    """Drop the checksum's view of the stage table ``name`` (left only if its task was killed)."""
    conn.exec_driver_sql(f"DROP VIEW IF EXISTS {amounts_view_of(name)}")


def drop_stage_table(conn: Connection, name: str) -> None:
    """Drop the stage table ``name`` and the checksum's view of it."""
    drop_stage_view(conn, name)
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")


class LineStage:
    """The stage table of ``stage_id`` (one per fetch of one invoice in one run)."""

    def __init__(self, engine: Engine, stage_id: str):
        self.engine = engine
        self.stage_id = stage_id
        self.table: Table = line_stage_table(stage_id)

    def fill(self, lines: Iterable[InvoiceLine]) -> int:
        """Stage ``lines`` (streamed, one transaction) in a new stage, replacing a retried fetch's one;
        a fill that fails (or is killed) leaves no stage behind."""
        self.create()
        try:
            return self.append(lines)
        except BaseException:
            self.drop()
            raise

    def create(self) -> None:
        """An empty stage table; the table of an earlier try is dropped first."""
        table = self.table
        with self.engine.begin() as conn:
            table.drop(conn, checkfirst=True)
            table.create(conn)

    def append(self, lines: Iterable[InvoiceLine]) -> int:
        """Bulk-load ``lines`` into the stage in one transaction, streaming from the iterator.

        PostgreSQL gets ``COPY ... FROM STDIN`` (psycopg's copy on the connection SQLAlchemy holds, so
        it shares the transaction); SQLite one ``executemany`` fed by a generator. Both bypass the
        per-row bind processing of SQLAlchemy, so the money conversion of :class:`Money` is done here:
        the Decimal as is for NUMERIC, exact micros (refusing finer amounts) for SQLite.
        """
        table = self.table
        columns = ", ".join(LINE_COLUMNS)
        count = 0
        with self.engine.begin() as conn:
            dbapi = conn.connection.dbapi_connection
            if conn.dialect.name == "postgresql":
                with dbapi.cursor() as cursor:
                    with cursor.copy(f"COPY {table.name} ({columns}) FROM STDIN") as copy:
                        for line in lines:
                            copy.write_row(_line_values(line))
                            count += 1
            else:
                counter = itertools.count(1)
                rows = (_sqlite_line_values(line) for line in lines if next(counter))
                marks = ", ".join("?" * len(LINE_COLUMNS))
                cursor = dbapi.cursor()
                try:
                    cursor.executemany(f"INSERT INTO {table.name} ({columns}) VALUES ({marks})", rows)
                finally:
                    cursor.close()
                count = next(counter) - 1
        return count

    def append_table(self, table) -> int:
        """Bulk-load an Arrow table of ``LINE_COLUMNS`` into the stage on PostgreSQL, in one transaction
        (:func:`include.sql.copy.copy_table`), after refusing a too long text."""
        from include.sql.copy import copy_table

        if tuple(table.column_names) != LINE_COLUMNS:
            raise ValueError(f"the table's columns must be {LINE_COLUMNS}")
        _check_table_texts(table)
        return copy_table(self.engine, self.table.name, table)

    @property
    def table_names(self) -> tuple[str, str]:
        """The stage's tables: its lines, and the daily-rated usage staged beside them (:mod:`include.sql.usage`)."""
        return self.table.name, usage_stage_table(self.stage_id).name

    def drop(self, conn: Connection | None = None) -> None:
        """Drop the stage (its lines, a left view of them, and its daily-rated usage), in ``conn``'s
        transaction when given (the load's, a failed checksum's)."""
        from include.sql.usage import drop_usage_stage

        if conn is not None:
            drop_stage_table(conn, self.table.name)
            drop_usage_stage(conn, self.stage_id)
            return
        with self.engine.begin() as own:
            drop_stage_table(own, self.table.name)
            drop_usage_stage(own, self.stage_id)

    def summary(self) -> StagedSummary:
        """Counts and exact micros sums per category and per currency, and the last usage charge end.

        One scan of the staged lines grouped by (category, currency); the totals per category and per
        currency are then added up from those groups as integers, so they are exactly what a query
        grouped by either column alone returns.
        """
        t = self.table
        micros = exact_micros(t.c.amount, self.engine)
        usage_end = func.max(case((t.c.category == "usage", t.c.charge_end_date)))
        with self.engine.connect() as conn:
            groups = conn.execute(
                select(t.c.category, t.c.currency_code, func.count(), func.sum(micros), usage_end).group_by(
                    t.c.category, t.c.currency_code
                )
            ).all()
        by_category: dict[str, list[int]] = {}
        by_currency: dict[str, int] = {}
        usage_ends = []
        for category, currency, count, total, last_usage in groups:
            counted = by_category.setdefault(category, [0, 0])
            counted[0] += count
            counted[1] += int(total)
            by_currency[currency] = by_currency.get(currency, 0) + int(total)
            if last_usage is not None:
                usage_ends.append(last_usage if not isinstance(last_usage, str) else date.fromisoformat(last_usage))
        return StagedSummary(
            line_count=sum(count for count, _ in by_category.values()),
            breakdown={cat: from_micros(total) for cat, (_, total) in by_category.items()},
            line_counts={cat: count for cat, (count, _) in by_category.items()},
            currency_totals={cur: from_micros(total) for cur, total in by_currency.items()},
            usage_last_charge_end=max(usage_ends, default=None),
        )

    def charge_period(self) -> tuple[date | None, date | None]:
        """The earliest charge start and the latest charge end of the staged lines (None when no line has one)."""
        t = self.table
        with self.engine.connect() as conn:
            start, end = conn.execute(select(func.min(t.c.charge_start_date), func.max(t.c.charge_end_date))).one()
        return tuple(date.fromisoformat(day) if isinstance(day, str) else day for day in (start, end))

    @contextmanager
    def amounts_view(self, *, header_tax_micros: int = 0, currency_code: str = "") -> Iterator[str]:
        """The name of a view of the staged lines as ``line_no, category, currency_code, amount_micros``,
        for as long as the ``with`` block runs (the GX suite reads it).

        The micros are computed by the database from the exact stored amounts. ``header_tax_micros``
        (not 0) adds header-only tax as one more row, line 0 of category ``tax``, as the provider's tax
        setting asks. A view rather than a query: GX runs a custom query once in full just to learn
        its column names (and psycopg would hold every row of it: 630 MiB at 3M lines), while a view's
        columns are read from the catalogue. A view left by a killed task goes with its stage.
        """
        t = self.table
        micros = exact_micros(t.c.amount, self.engine).label("amount_micros")
        query = select(t.c.line_no, t.c.category, t.c.currency_code, micros)
        if header_tax_micros:
            tax = select(
                literal(0, BigInteger).label("line_no"),
                literal("tax", String).label("category"),
                literal(currency_code, String).label("currency_code"),
                literal(header_tax_micros, BigInteger).label("amount_micros"),
            )
            query = query.union_all(tax)
        compiled = query.compile(dialect=self.engine.dialect, compile_kwargs={"literal_binds": True})
        name = amounts_view_of(t.name)
        with self.engine.begin() as conn:
            conn.exec_driver_sql(f"DROP VIEW IF EXISTS {name}")
            conn.exec_driver_sql(f"CREATE VIEW {name} AS {compiled}")
        try:
            yield name
        finally:
            with self.engine.begin() as conn:
                conn.exec_driver_sql(f"DROP VIEW IF EXISTS {name}")


_STORED = len(LINE_COLUMNS)
if InvoiceLine._fields[:_STORED] != LINE_COLUMNS:
    raise RuntimeError("InvoiceLine must start with the LINE_COLUMNS, in their order")
_AMOUNT = LINE_COLUMNS.index("amount")
_MONEY = (_AMOUNT, LINE_COLUMNS.index("pre_tax_amount"))
_DATES = tuple(i for i, col in enumerate(LINE_COLUMNS) if col in ("charge_start_date", "charge_end_date"))
_TEXTS = tuple((LINE_COLUMNS.index(col), col, limit) for col, limit in LINE_TEXT_LIMITS.items())
_LINE_NO = LINE_COLUMNS.index("line_no")


def _too_long(line_no: int, column: str, length: int, limit: int) -> InvalidProviderData:
    return InvalidProviderData(
        f"Line {line_no} has a {column} of {length} characters; the database holds at most {limit}."
    )


def _check_texts(values: tuple) -> None:
    """Refuse a line whose text is longer than its column holds."""
    for index, column, limit in _TEXTS:
        text = values[index]
        if text is not None and len(text) > limit:
            raise _too_long(values[_LINE_NO], column, len(text), limit)


def _check_table_texts(table) -> None:
    """:func:`_check_texts` for every row of an Arrow table at once (characters, as ``len`` and the database count)."""
    import pyarrow.compute as pc

    for column, limit in LINE_TEXT_LIMITS.items():
        lengths = pc.utf8_length(table[column])
        longest = pc.max(lengths).as_py()
        if longest is not None and longest > limit:
            row = pc.index(pc.greater(lengths, limit), True).as_py()
            raise _too_long(table["line_no"][row].as_py(), column, lengths[row].as_py(), limit)


def _line_values(line: InvoiceLine) -> tuple:
    """The line's ``LINE_COLUMNS`` in order, as the driver takes them (NUMERIC gets the Decimal)."""
    values = line[:_STORED]
    for index in _MONEY:
        amount = values[index]
        if amount is None:
            continue
        if not isinstance(amount, Decimal):
            values = list(values)
            values[index] = amount = parse_money(amount)  # what Money does with a non-Decimal: exact or refused
            values = tuple(values)
        to_micros(amount)  # refuses more than MONEY_SCALE places, where NUMERIC(24, 6) would silently round
    _check_texts(values)
    return values


def _sqlite_line_values(line: InvoiceLine) -> tuple:
    """Like :func:`_line_values`, with what :class:`Money` and ``Date`` store on SQLite (micros, ISO text)."""
    values = list(line[:_STORED])
    for index in _MONEY:
        amount = values[index]
        if amount is not None:
            values[index] = to_micros(amount if isinstance(amount, Decimal) else parse_money(amount))
    for index in _DATES:
        if values[index] is not None:
            values[index] = values[index].isoformat()
    _check_texts(values)
    return tuple(values)
