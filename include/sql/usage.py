"""The invoice database's daily-rated usage: its stage, the sums the usage checksum compares, the load
and the mismatch rows.

Daily-rated amounts are :class:`include.sql.schema.UsageAmount` (16 decimals): PostgreSQL sums them in
SQL as NUMERIC, SQLite keeps them as exact text and they are summed here in Python, in a decimal context
wide enough that no sum is ever rounded (``Inexact`` is trapped). Either way the totals are exact.
"""

from __future__ import annotations

import decimal
import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import delete, func, insert, inspect, literal, select, type_coerce, union_all
from sqlalchemy.engine import Connection, Engine

from include.daily_usage import USAGE_PRECISION, UsageLine, parse_usage_amount
from include.sql import partitions
from include.sql.copy import copy_table
from include.sql.schema import (
    USAGE_COLUMNS,
    Money,
    check_text_lengths,
    invoice_usage_mismatch,
    line_stage_table,
    provider_invoice_usage_line,
    usage_stage_table,
)

RECONCILIATION_USAGE_SOURCE = "one_time/"
"""Reconciliation lines with daily-rated counterparts: new-commerce (Azure plan) usage. Legacy Azure
(145P) usage comes with quantity-only daily records, so it has nothing to compare with."""
METERED_MARKETPLACE = "marketplace"
"""Third-party lines are compared too when they are metered: Microsoft's daily-rated usage carries Azure
Marketplace meters (its documented DailyRatedUsageLineItem sample has billing provider "marketplace") but
leaves out "Non-Microsoft or marketplace SaaS" products, reservations, savings plans and seat licences.
No field of a reconciliation line tells the two apart (Microsoft's own SaaS sample has a meterDescription),
so a marketplace line counts when its product is in the daily-rated usage (of any subscription: one whose
daily rows of that meter are still missing is then a difference, not a line left out). Sources:
shared/reference/provider-apis.md 1.5 and Microsoft's "Billed and unbilled daily rated usage reconciliation
API v2" page (the products daily-rated usage does not include)."""
_BATCH = 5_000
_EXACT = decimal.Context(prec=USAGE_PRECISION + 12, traps=[decimal.Inexact, decimal.Overflow, decimal.InvalidOperation])
"""Room for a million 38-digit values: a sum that would still need rounding raises instead."""


@dataclass(frozen=True)
class SubscriptionUsage:
    """One subscription's pre-tax Azure usage in the reconciliation lines and in the daily-rated usage."""

    subscription_id: str | None
    customer_id: str | None
    reconciliation_pre_tax: Decimal
    daily_rated_pre_tax: Decimal
    reconciliation_lines: int
    daily_rated_lines: int
    last_usage_date: date | None
    currency_code: str | None

    @property
    def difference(self) -> Decimal:
        """Reconciliation minus daily-rated (exact: both operands are exact and the context traps rounding)."""
        return _EXACT.subtract(self.reconciliation_pre_tax, self.daily_rated_pre_tax)

    def mismatch_row(self, provider: str, invoice_id: str, run_id: str) -> dict:
        """This subscription as a row of ``invoice_usage_mismatch`` (and of its CSV)."""
        return {
            "provider": provider,
            "invoice_id": invoice_id,
            "run_id": run_id,
            "customer_id": self.customer_id,
            "subscription_id": self.subscription_id,
            "reconciliation_pre_tax": self.reconciliation_pre_tax,
            "daily_rated_pre_tax": self.daily_rated_pre_tax,
            "difference": self.difference,
            "last_usage_date": self.last_usage_date,
        }


def stage_usage(engine: Engine, stage_id: str, lines: Iterable[UsageLine]) -> int:
    """Stage the daily-rated lines of a fetch in a new usage stage (replacing a retried fetch's); returns the
    count. A stage that fails to fill is dropped."""
    create_usage_stage(engine, stage_id)
    try:
        return append_usage(engine, stage_id, lines)
    except BaseException:
        with engine.begin() as conn:
            drop_usage_stage(conn, stage_id)
        raise


def create_usage_stage(engine: Engine, stage_id: str) -> None:
    """An empty usage stage; the one of an earlier try is dropped first."""
    table = usage_stage_table(stage_id)
    with engine.begin() as conn:
        table.drop(conn, checkfirst=True)
        table.create(conn)


def append_usage(engine: Engine, stage_id: str, lines: Iterable[UsageLine]) -> int:
    """Append daily-rated lines to the usage stage in one transaction; returns the count.

    PostgreSQL gets ``COPY ... FROM STDIN`` (a large invoice has hundreds of thousands of daily-rated lines),
    SQLite batched inserts through :class:`include.sql.schema.UsageAmount`. Both check every amount first.
    """
    table = usage_stage_table(stage_id)
    count = 0
    with engine.begin() as conn:
        checked = (_checked(line) for line in lines)
        if conn.dialect.name == "postgresql":
            with conn.connection.dbapi_connection.cursor() as cursor:
                with cursor.copy(f"COPY {table.name} ({', '.join(USAGE_COLUMNS)}) FROM STDIN") as copy:
                    for line in checked:
                        copy.write_row(line)
                        count += 1
            return count
        while batch := list(itertools.islice(checked, _BATCH)):
            conn.execute(insert(table), [line._asdict() for line in batch])
            count += len(batch)
    return count


def append_usage_table(engine: Engine, stage_id: str, table) -> int:
    """Append an Arrow table of ``USAGE_COLUMNS`` to the usage stage on PostgreSQL, in one transaction.

    Its rows must be what :func:`_checked` lets through (:mod:`include.providers.microsoft.vectorised_usage`
    makes sure): the stage's columns are bounded, and a row they refuse would be a driver error.
    """
    if tuple(table.column_names) != USAGE_COLUMNS:
        raise ValueError(f"the table's columns must be {USAGE_COLUMNS}")
    return copy_table(engine, usage_stage_table(stage_id).name, table)


def _checked(line: UsageLine) -> UsageLine:
    """``line`` with every amount exact at the usage scale and every text within its column (refused with one
    sentence otherwise, the same on both databases, never rounded or cut by the column)."""
    for name in ("quantity", "unit_price", "billing_pre_tax_total"):
        value = getattr(line, name)
        if value is not None:
            parse_usage_amount(value, field_name=f"{name} of daily-rated usage line {line.line_no}")
    check_text_lengths(provider_invoice_usage_line, line._asdict(), f"daily-rated usage line {line.line_no}")
    return line


def drop_usage_stage(conn: Connection, stage_id: str) -> None:
    usage_stage_table(stage_id).drop(conn, checkfirst=True)


def has_usage_stage(engine: Engine | Connection, stage_id: str) -> bool:
    return inspect(engine).has_table(usage_stage_table(stage_id).name)


def compare_staged_usage(engine: Engine, stage_id: str) -> list[SubscriptionUsage]:
    """Per subscription (and currency): staged reconciliation pre-tax usage (Azure usage lines and metered
    marketplace lines, :data:`METERED_MARKETPLACE`) against staged daily-rated usage.

    A subscription found on one side only appears with zero on the other. Sorted by subscription id.
    """
    lines = line_stage_table(stage_id)
    usage = usage_stage_table(stage_id)
    with engine.connect() as conn:
        reconciliation_usage = lines.c.source.startswith(RECONCILIATION_USAGE_SOURCE)
        columns = (lines.c.subscription_id, lines.c.customer_id, lines.c.pre_tax_amount)
        compared = select(*columns).where(reconciliation_usage, lines.c.category == "usage")
        if inspect(conn).has_table(usage.name):
            # A branch of its own, not an OR beside the usage lines: only there is the IN a semi-join, which
            # the database hashes at any size. Under the OR it stays a subplan that PostgreSQL hashes only
            # while it expects the daily-rated rows to fit in work_mem, and otherwise rescans them for
            # every marketplace line (10M lines: still running after six minutes).
            metered = lines.c.product_id.in_(select(usage.c.product_id).where(usage.c.product_id.is_not(None)))
            marketplace = select(*columns).where(reconciliation_usage, lines.c.category == METERED_MARKETPLACE, metered)
            compared = union_all(compared, marketplace)
        compared = compared.subquery()
        reconciliation = select(
            compared.c.subscription_id,
            func.max(compared.c.customer_id),
            func.count(),
            func.count(compared.c.pre_tax_amount),
            type_coerce(func.sum(compared.c.pre_tax_amount), Money),
        ).group_by(compared.c.subscription_id)
        recon = {row[0]: row[1:] for row in conn.execute(reconciliation)}
        daily = _daily_sums(conn, usage)
    missing_pre_tax = sum(count - with_pre_tax for _, count, with_pre_tax, _ in recon.values())
    if missing_pre_tax:
        from include.model import InvalidProviderData

        raise InvalidProviderData(
            f"{missing_pre_tax} Azure usage line(s) carry no pre-tax subtotal, so they cannot be compared "
            "with the daily-rated usage."
        )
    currencies: dict[str | None, list[str | None]] = {subscription: [] for subscription in recon}
    for subscription, currency in daily:
        currencies.setdefault(subscription, []).append(currency)
    rows = []
    for subscription in sorted(currencies, key=lambda s: s or ""):
        customer, recon_count, _, recon_total = recon.get(subscription, (None, 0, 0, None))
        # The reconciliation side goes with the subscription's first currency; a second daily-rated currency
        # (which the suite refuses) shows as a row of its own instead of counting the reconciliation twice.
        for number, currency in enumerate(sorted(currencies[subscription] or [None], key=lambda c: c or "")):
            day_customer, day_count, day_total, last_day = daily.get(
                (subscription, currency), (None, 0, Decimal(0), None)
            )
            rows.append(
                SubscriptionUsage(
                    subscription_id=subscription,
                    customer_id=customer or day_customer,
                    reconciliation_pre_tax=(recon_total or Decimal(0)) if number == 0 else Decimal(0),
                    daily_rated_pre_tax=day_total,
                    reconciliation_lines=recon_count if number == 0 else 0,
                    daily_rated_lines=day_count,
                    last_usage_date=last_day,
                    currency_code=currency,
                )
            )
    return rows


def _daily_sums(conn: Connection, usage) -> dict[tuple, tuple]:
    """``(subscription, currency) -> (customer, lines, exact pre-tax sum, last usage date)`` of the staged usage."""
    if not inspect(conn).has_table(usage.name):
        return {}
    keys = (usage.c.subscription_id, usage.c.currency_code)
    if conn.dialect.name == "postgresql":
        query = select(
            *keys,
            func.max(usage.c.customer_id),
            func.count(),
            func.sum(usage.c.billing_pre_tax_total),
            func.max(usage.c.usage_date),
        ).group_by(*keys)
        return {(s, c): (customer, n, Decimal(total), last) for s, c, customer, n, total, last in conn.execute(query)}
    sums: dict[tuple, list] = {}
    query = select(*keys, usage.c.customer_id, usage.c.billing_pre_tax_total, usage.c.usage_date)
    for subscription, currency, customer, amount, day in conn.execute(query):
        entry = sums.setdefault((subscription, currency), [customer, 0, Decimal(0), None])
        entry[0] = max(filter(None, (entry[0], customer)), default=None)
        entry[1] += 1
        entry[2] = _EXACT.add(entry[2], amount)
        entry[3] = day if entry[3] is None or (day is not None and day > entry[3]) else entry[3]
    return {key: tuple(entry) for key, entry in sums.items()}


def exact_sum(amounts: Iterable[Decimal]) -> Decimal:
    """The exact sum of daily-rated scale amounts (raises rather than round)."""
    total = Decimal(0)
    for amount in amounts:
        total = _EXACT.add(total, amount)
    return total


def shape_usage_stage(conn: Connection, stage_id: str, provider: str, invoice_id: str) -> bool:
    """PostgreSQL: give the usage stage the usage table's columns and key (:func:`partitions.shape_stage`, done
    once); whether the fetch staged usage at all."""
    stage = usage_stage_table(stage_id)
    if not inspect(conn).has_table(stage.name):
        return False
    partitions.shape_stage(conn, stage, provider, invoice_id, of=provider_invoice_usage_line)
    return True


def load_usage(conn: Connection, provider: str, invoice_id: str, stage_id: str) -> int:
    """Inside the load's transaction: the invoice's daily-rated usage becomes the staged one; returns its lines.

    PostgreSQL attaches the stage as the invoice's usage partition in place of the previous one (no copy;
    the load has locked the lines' provider partition first, :meth:`include.sql.store.InvoiceStore.load_from_stage`),
    and drops that partition when the fetch staged no usage. SQLite replaces the rows with a copy of the stage.
    """
    table = provider_invoice_usage_line
    stage = usage_stage_table(stage_id)
    if conn.dialect.name == "postgresql":
        staged = shape_usage_stage(conn, stage_id, provider, invoice_id)
        if not (staged or partitions.has_provider_partition(conn, provider, of=table)):
            return 0  # a provider without daily-rated usage: no partition of its own is made
        partitions.lock_invoice_partition(conn, provider, invoice_id, of=table)
        if not staged:
            partitions.drop_invoice_partition(conn, provider, invoice_id, of=table)
            return 0
        loaded = conn.execute(select(func.count()).select_from(stage)).scalar()
        partitions.attach_stage(conn, stage, provider, invoice_id, of=table)
        return loaded
    conn.execute(delete(table).where(table.c.provider == provider, table.c.invoice_id == invoice_id))
    if not inspect(conn).has_table(stage.name):
        return 0
    staged = select(
        literal(provider).label("provider"),
        literal(invoice_id).label("invoice_id"),
        *(stage.c[column] for column in USAGE_COLUMNS),
    )
    loaded = conn.execute(insert(table).from_select(("provider", "invoice_id", *USAGE_COLUMNS), staged)).rowcount
    if loaded is None or loaded < 0:
        loaded = conn.execute(
            select(func.count()).where(table.c.provider == provider, table.c.invoice_id == invoice_id)
        ).scalar()
    return loaded


def usage_lines(engine: Engine, provider: str, invoice_id: str) -> list[dict]:
    table = provider_invoice_usage_line
    with engine.connect() as conn:
        rows = conn.execute(
            select(table)
            .where(table.c.provider == provider, table.c.invoice_id == invoice_id)
            .order_by(table.c.line_no)
        )
        return [dict(row._mapping) for row in rows]


def record_mismatches(
    conn: Connection, provider: str, invoice_id: str, run_id: str, rows: Iterable[SubscriptionUsage]
) -> int:
    """Inside the checksum error's transaction: one row per subscription whose totals differ (a retry replaces)."""
    table = invoice_usage_mismatch
    conn.execute(
        delete(table).where(table.c.provider == provider, table.c.invoice_id == invoice_id, table.c.run_id == run_id)
    )
    now = datetime.now(UTC)
    values = [
        {**row.mismatch_row(provider, invoice_id, run_id), "created_at": now} for row in rows if row.difference != 0
    ]
    if values:
        conn.execute(insert(table), values)
    return len(values)


def mismatches(engine: Engine, provider: str, invoice_id: str, run_id: str | None = None) -> list[dict]:
    """The mismatch rows of one failed usage checksum (the latest when ``run_id`` is None), largest |difference|
    first; ties by subscription id so the order is stable."""
    table = invoice_usage_mismatch
    of_invoice = (table.c.provider == provider, table.c.invoice_id == invoice_id)
    with engine.connect() as conn:
        if run_id is None:
            latest = select(table.c.run_id).where(*of_invoice).order_by(table.c.id.desc()).limit(1)
            run_id = conn.execute(latest).scalar()
            if run_id is None:
                return []
        rows = [dict(row._mapping) for row in conn.execute(select(table).where(*of_invoice, table.c.run_id == run_id))]
    return sorted(rows, key=lambda row: (-abs(row["difference"]), row["subscription_id"] or ""))


if UsageLine._fields != USAGE_COLUMNS:
    raise RuntimeError("UsageLine must have the usage stage's columns, in their order (COPY writes it as a row)")
