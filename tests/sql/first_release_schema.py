"""The invoice schema of the first release, verbatim from ``git show 38017c2:include/sql/schema.py``:
the upgrade test builds a database with it (tests/sql/test_migrations.py)."""

from __future__ import annotations

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
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Engine
from sqlalchemy.types import TypeDecorator

from include.model import MONEY_SCALE, from_micros, parse_money, to_micros


class Money(TypeDecorator):
    """Exact money: NUMERIC on PostgreSQL, integer micros on SQLite."""

    impl = Numeric(24, MONEY_SCALE)
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(24, MONEY_SCALE, asdecimal=True))

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        amount = value if isinstance(value, Decimal) else parse_money(value)
        return to_micros(amount) if dialect.name == "sqlite" else amount

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return from_micros(value) if dialect.name == "sqlite" else Decimal(value)


metadata = MetaData()

INVOICE_STATUSES = ("active", "checksum_error", "inactive", "failed")

provider_invoice = Table(
    "provider_invoice",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("provider", String(32), nullable=False),
    Column("invoice_id", String(64), nullable=False),
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
)
LINE_COLUMNS = tuple(name for name, _, _ in _line_columns)


def _line_table(name: str, *extra) -> Table:
    return Table(
        name,
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        *extra,
        Column("provider", String(32), nullable=False),
        Column("invoice_id", String(64), nullable=False),
        *(Column(col, type_, nullable=nullable) for col, type_, nullable in _line_columns),
    )


provider_invoice_line = _line_table(
    "provider_invoice_line",
    Column("customer_invoice_ref", String(64)),
)
UniqueConstraint(
    provider_invoice_line.c.provider,
    provider_invoice_line.c.invoice_id,
    provider_invoice_line.c.line_no,
    name="uq_provider_invoice_line",
)

provider_invoice_line_staging = _line_table(
    "provider_invoice_line_staging",
    Column("stage_id", String(64), nullable=False),
)
"""Lines of one fetch, keyed by ``stage_id``, waiting for the checksum; moved by the load in SQL."""
Index("ix_line_staging_stage", provider_invoice_line_staging.c.stage_id)

invoice_sync_attempt = Table(
    "invoice_sync_attempt",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("provider", String(32), nullable=False),
    Column("invoice_id", String(64), nullable=False),
    Column("dag_id", String(250), nullable=False),
    Column("run_id", String(250), nullable=False),
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


def create_schema(engine: Engine) -> None:
    """Create every table and index that does not exist yet (idempotent)."""
    metadata.create_all(engine, checkfirst=True)
