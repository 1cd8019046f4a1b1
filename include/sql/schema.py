"""The invoice database: four contract tables (DESIGN.md) plus one table per staged fetch, on SQLite and PostgreSQL.

This module describes the current schema; :mod:`include.sql.migrations` builds it. Change both together:
a new column or table comes with an Alembic revision (``tests/sql/test_migrations.py`` compares them).

Money columns use :class:`Money`: ``NUMERIC(24, 6)`` on PostgreSQL and integer micros on SQLite,
where ``NUMERIC`` would be stored as a binary float. Either way SQL ``SUM`` over a Money column is
exact and SQLAlchemy hands back ``Decimal``.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

from include.daily_usage import USAGE_PRECISION, USAGE_SCALE, parse_usage_amount
from include.model import MONEY_DIGITS, MONEY_SCALE, InvalidProviderData, from_micros, parse_money, to_micros


class Money(TypeDecorator):
    """Exact money: NUMERIC on PostgreSQL, integer micros on SQLite."""

    impl = Numeric(MONEY_DIGITS, MONEY_SCALE)
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(MONEY_DIGITS, MONEY_SCALE, asdecimal=True))

    def process_bind_param(self, value, dialect):
        """Every amount passes the one money parser: NUMERIC would round a finer one, SQLite refuse it."""
        if value is None:
            return None
        amount = parse_money(value)
        return to_micros(amount) if dialect.name == "sqlite" else amount

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return from_micros(value) if dialect.name == "sqlite" else Decimal(value)


class UsageAmount(TypeDecorator):
    """Exact daily-rated values at ``USAGE_SCALE`` decimals: ``NUMERIC(38, 16)`` on PostgreSQL, text on SQLite.

    Not integers on SQLite as :class:`Money` is: at 16 decimals a 64-bit integer ends at 922 currency units,
    less than one day of a large subscription. So SQLite keeps the exact decimal text, and sums over it are
    made in Python (:mod:`include.sql.usage`), where PostgreSQL sums the NUMERIC in SQL.
    """

    impl = Numeric(USAGE_PRECISION, USAGE_SCALE)
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(USAGE_PRECISION + 2))
        return dialect.type_descriptor(Numeric(USAGE_PRECISION, USAGE_SCALE, asdecimal=True))

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        amount = parse_usage_amount(value, field_name="daily-rated amount")
        return format(amount, "f") if dialect.name == "sqlite" else amount

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return Decimal(value)


metadata = MetaData()

INVOICE_STATUSES = ("active", "checksum_error", "inactive", "failed")

provider_invoice = Table(
    "provider_invoice",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("provider", String(32), nullable=False),
    Column("invoice_id", String(64), nullable=False),
    Column("account", String(64), nullable=False),
    Column("status", String(20), nullable=False),
    Column("currency_code", String(3)),
    Column("header_total", Money),
    Column("header_tax", Money),
    Column("detail_total", Money),
    Column("difference", Money),
    Column("tolerance_applied", Money),
    Column("line_count", Integer),
    Column("invoice_date", Date),
    Column("billing_period_start", Date),
    Column("billing_period_end", Date),
    Column("document_type", String(32)),
    Column("fingerprint", String(64)),
    Column("status_message", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("activated_at", DateTime(timezone=True)),
    Column("deactivated_at", DateTime(timezone=True)),
    UniqueConstraint("provider", "invoice_id", name="uq_provider_invoice"),
)
"""``account``: the connection id of the provider account the invoice comes from (``invoice_sync_settings``);
an invoice id stays unique per provider, and one listed by a second account is refused, never crossed."""

_line_columns = (
    ("line_no", Integer, False),
    ("category", String(32), False),
    ("amount", Money, False),
    ("currency_code", String(3), False),
    ("customer_id", String(64), True),
    ("customer_name", String(255), True),
    ("subscription_id", String(64), True),
    ("product_id", String(64), True),
    ("sku_id", String(64), True),
    ("charge_type", String(64), True),
    ("charge_start_date", Date, True),
    ("charge_end_date", Date, True),
    ("description", Text, True),
    ("source", String(64), True),
    ("pre_tax_amount", Money, True),
)
LINE_COLUMNS = tuple(name for name, _, _ in _line_columns)


provider_invoice_line = Table(
    "provider_invoice_line",
    metadata,
    Column("provider", String(32), nullable=False),
    Column("invoice_id", String(64), nullable=False),
    *(Column(col, type_, nullable=nullable) for col, type_, nullable in _line_columns),
    Column("customer_invoice_ref", String(64)),
    PrimaryKeyConstraint("provider", "invoice_id", "line_no", name="pk_provider_invoice_line"),
    postgresql_partition_by="LIST (provider)",
)
"""Keyed by what names a line for good: a reload replaces an invoice's rows, so a surrogate id would
change with every reload, and a second index would slow every bulk load for nothing. On PostgreSQL
partitioned by provider, then by invoice (:mod:`include.sql.partitions`): a load attaches its checked
stage as the invoice's partition instead of copying it."""

LINE_PARTITION_PREFIX = "provider_invoice_line__"
"""The partitions of ``provider_invoice_line`` (PostgreSQL): made by loads, not part of the schema."""

invoice_sync_attempt = Table(
    "invoice_sync_attempt",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("provider", String(32), nullable=False),
    Column("invoice_id", String(64), nullable=False),
    Column("dag_id", String(250), nullable=False),
    Column("run_id", String(250), nullable=False),
    Column("account", String(64), nullable=False),
    Column("triggered_by", String(250)),
    Column("outcome", String(32), nullable=False),
    Column("header_total", Money),
    Column("detail_total", Money),
    Column("difference", Money),
    Column("tolerance_applied", Money),
    Column("override_tolerance", Money),
    Column("override_reason", Text),
    Column("message", Text),
    Column("diagnostics", Text),
    Column("task_url", Text),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("export_operations", Text),
    UniqueConstraint("dag_id", "run_id", "provider", "invoice_id", name="uq_invoice_sync_attempt"),
)
Index("ix_attempt_invoice", invoice_sync_attempt.c.provider, invoice_sync_attempt.c.invoice_id)

provider_invoice_note = Table(
    "provider_invoice_note",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("provider", String(32), nullable=False),
    Column("invoice_id", String(64), nullable=False),
    Column("note", Text, nullable=False),
    Column("author", String(250)),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
Index("ix_note_invoice", provider_invoice_note.c.provider, provider_invoice_note.c.invoice_id)


provider_invoice_listing = Table(
    "provider_invoice_listing",
    metadata,
    Column("provider", String(32), nullable=False),
    Column("account", String(64), nullable=False),
    Column("invoice_id", String(64), nullable=False),
    Column("currency_code", String(3)),
    Column("header_total", Money),
    Column("invoice_date", Date),
    Column("billing_period_start", Date),
    Column("billing_period_end", Date),
    Column("document_type", String(32)),
    Column("listed_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("provider", "account", "invoice_id", name="pk_provider_invoice_listing"),
)
"""What each provider account's API listed at the last scheduled sync: the invoices a person can pick in the
workspace's manual sync, without the page calling the provider. Replaced per account by each listing (an
account whose listing failed keeps the rows of its last one)."""


invoice_notification = Table(
    "invoice_notification",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dag_id", String(250), nullable=False),
    Column("run_id", String(250), nullable=False),
    Column("window_start", DateTime(timezone=True)),
    Column("window_end", DateTime(timezone=True), nullable=False),
    Column("recipients", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=False),
)
"""One row per daily mail that was actually handed to the SMTP server; the next summary starts here."""


def text_limits(table: Table) -> dict[str, int]:
    """``column -> maximum characters`` of the table's bounded text columns, read from the schema itself."""
    return {column.name: column.type.length for column in table.columns if getattr(column.type, "length", None)}


def check_text_lengths(table: Table, values: dict, what: str) -> None:
    """Refuse, with one sentence, a text longer than its column holds, before any database sees it.

    PostgreSQL would raise a driver error and SQLite would store it: checked here, both refuse alike.
    """
    for column, limit in text_limits(table).items():
        value = values.get(column)
        if isinstance(value, str) and len(value) > limit:
            raise InvalidProviderData(
                f"The {column} of {what} has {len(value)} characters; the database holds at most {limit}."
            )


_usage_columns = (
    ("line_no", Integer, False),
    ("customer_id", String(64), True),
    ("subscription_id", String(64), True),
    ("usage_date", Date, True),
    ("product_id", String(64), True),
    ("meter_id", String(64), True),
    ("meter_name", String(255), True),
    ("meter_category", String(255), True),
    ("resource_uri", Text, True),
    ("quantity", UsageAmount, True),
    ("unit_price", UsageAmount, True),
    ("billing_pre_tax_total", UsageAmount, False),
    ("currency_code", String(3), False),
)
USAGE_COLUMNS = tuple(name for name, _, _ in _usage_columns)

provider_invoice_usage_line = Table(
    "provider_invoice_usage_line",
    metadata,
    Column("provider", String(32), nullable=False),
    Column("invoice_id", String(64), nullable=False),
    *(Column(col, type_, nullable=nullable) for col, type_, nullable in _usage_columns),
    PrimaryKeyConstraint("provider", "invoice_id", "line_no", name="pk_provider_invoice_usage_line"),
    postgresql_partition_by="LIST (provider)",
)
"""Billed daily-rated usage of an invoice (Microsoft), loaded with its lines: Azure is billed on per day. On
PostgreSQL partitioned like the lines, so that the load attaches the usage stage too."""

USAGE_PARTITION_PREFIX = "provider_invoice_usage_line__"
"""The partitions of ``provider_invoice_usage_line`` (PostgreSQL): made by loads, not part of the schema."""

invoice_usage_mismatch = Table(
    "invoice_usage_mismatch",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("provider", String(32), nullable=False),
    Column("invoice_id", String(64), nullable=False),
    Column("run_id", String(250), nullable=False),
    Column("customer_id", String(64)),
    Column("subscription_id", String(64)),
    Column("reconciliation_pre_tax", UsageAmount, nullable=False),
    Column("daily_rated_pre_tax", UsageAmount, nullable=False),
    Column("difference", UsageAmount, nullable=False),
    Column("last_usage_date", Date),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
"""One row per subscription whose reconciliation and daily-rated pre-tax totals differ, per failed usage
checksum; ``difference`` = reconciliation - daily-rated."""
Index("ix_usage_mismatch_invoice", invoice_usage_mismatch.c.provider, invoice_usage_mismatch.c.invoice_id)


STAGE_TABLE_PREFIX = "invoice_line_stage_"
USAGE_STAGE_TABLE_PREFIX = "invoice_usage_stage_"


def stage_id_for(dag_id: str, run_id: str, provider: str, invoice_id: str) -> str:
    """Stable per run and invoice, so a retried fetch replaces its own stage (and the sweep finds its owner)."""
    return hashlib.sha256(f"{dag_id}|{run_id}|{provider}|{invoice_id}".encode()).hexdigest()[:40]


LINE_TEXT_LIMITS = {name: type_.length for name, type_, _ in _line_columns if getattr(type_, "length", None)}
"""The bounded text columns of a line; whoever writes a stage refuses a longer text first (:mod:`include.sql.stage`)."""


def line_stage_table(stage_id: str) -> Table:
    """The table holding one fetch's lines until a failed checksum drops it or the load takes it (on
    PostgreSQL it becomes the invoice's partition: :mod:`include.sql.partitions`).

    One table per stage: every reader takes all of it, nothing has to filter other fetches' rows, and
    getting rid of a million staged lines is a ``DROP`` instead of a ``DELETE``. Only the line columns,
    with the line table's own types: provider and invoice id are the stage's. A bare heap (no key, no
    index) and logged: a partition of the logged line table must be, and its rows reach the WAL once,
    in the fetch's ``COPY``, instead of in a rewrite at the load. A stage left by a crash is an orphan
    the next sync drops (:meth:`include.sql.store.InvoiceStore.orphan_stages`).
    """
    name = STAGE_TABLE_PREFIX + hashlib.sha256(stage_id.encode()).hexdigest()[:32]
    return Table(name, MetaData(), *(Column(col, type_, nullable=nullable) for col, type_, nullable in _line_columns))


STAGE_AMOUNTS_PREFIX = "invoice_line_amounts_"


def made_at_run_time(table_name: str) -> bool:
    """Stage tables and line and usage partitions come and go with fetches and loads; the migrations leave them
    alone."""
    prefixes = (STAGE_TABLE_PREFIX, USAGE_STAGE_TABLE_PREFIX, LINE_PARTITION_PREFIX, USAGE_PARTITION_PREFIX)
    return table_name.startswith(prefixes)


def amounts_view_of(stage_table_name: str) -> str:
    """The name of the checksum's view of the stage table ``stage_table_name``."""
    return STAGE_AMOUNTS_PREFIX + stage_table_name.removeprefix(STAGE_TABLE_PREFIX)


def usage_stage_table(stage_id: str) -> Table:
    """The daily-rated usage staged beside the lines of the same fetch; dropped with them, or (PostgreSQL)
    attached by the load as the invoice's usage partition, like the lines' stage (:func:`line_stage_table`)."""
    name = USAGE_STAGE_TABLE_PREFIX + hashlib.sha256(stage_id.encode()).hexdigest()[:32]
    columns = (Column(col, type_, nullable=nullable) for col, type_, nullable in _usage_columns)
    return Table(name, MetaData(), *columns)
