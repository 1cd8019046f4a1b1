"""Baseline: the invoice schema as it was when migrations were adopted.

Tables that already exist are left alone: a database made by ``create_all`` before this revision is
adopted as it is, and a database of the first release keeps its tables for revision 0002 to reshape.
The definitions are frozen copies, not ``include.sql.schema``, which moves on with later revisions.

Revision ID: 0001_baseline
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from include.sql.schema import Money

revision = "0001_baseline"
down_revision = None
branch_labels = None
depends_on = None


def _line_columns() -> list[sa.Column]:
    return [
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("invoice_id", sa.String(64), nullable=False),
        sa.Column("line_no", sa.Integer, nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("amount", Money, nullable=False),
        sa.Column("currency_code", sa.String(3), nullable=False),
        sa.Column("customer_id", sa.String(64)),
        sa.Column("customer_name", sa.String(255)),
        sa.Column("subscription_id", sa.String(64)),
        sa.Column("product_id", sa.String(64)),
        sa.Column("sku_id", sa.String(64)),
        sa.Column("charge_type", sa.String(64)),
        sa.Column("charge_start_date", sa.Date),
        sa.Column("charge_end_date", sa.Date),
        sa.Column("description", sa.Text),
        sa.Column("source", sa.String(64)),
    ]


def _tables() -> dict[str, tuple]:
    return {
        "provider_invoice": (
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("provider", sa.String(32), nullable=False),
            sa.Column("invoice_id", sa.String(64), nullable=False),
            sa.Column("status", sa.String(20), nullable=False),
            sa.Column("currency_code", sa.String(3)),
            sa.Column("header_total", Money),
            sa.Column("header_tax", Money),
            sa.Column("detail_total", Money),
            sa.Column("difference", Money),
            sa.Column("tolerance_applied", Money),
            sa.Column("line_count", sa.Integer),
            sa.Column("invoice_date", sa.Date),
            sa.Column("billing_period_start", sa.Date),
            sa.Column("billing_period_end", sa.Date),
            sa.Column("document_type", sa.String(32)),
            sa.Column("fingerprint", sa.String(64)),
            sa.Column("status_message", sa.Text),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("activated_at", sa.DateTime(timezone=True)),
            sa.Column("deactivated_at", sa.DateTime(timezone=True)),
            sa.UniqueConstraint("provider", "invoice_id", name="uq_provider_invoice"),
        ),
        "provider_invoice_line": (
            *_line_columns(),
            sa.Column("customer_invoice_ref", sa.String(64)),
            sa.PrimaryKeyConstraint("provider", "invoice_id", "line_no", name="pk_provider_invoice_line"),
        ),
        "invoice_sync_attempt": (
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("provider", sa.String(32), nullable=False),
            sa.Column("invoice_id", sa.String(64), nullable=False),
            sa.Column("dag_id", sa.String(250), nullable=False),
            sa.Column("run_id", sa.String(250), nullable=False),
            sa.Column("triggered_by", sa.String(250)),
            sa.Column("outcome", sa.String(32), nullable=False),
            sa.Column("header_total", Money),
            sa.Column("detail_total", Money),
            sa.Column("difference", Money),
            sa.Column("tolerance_applied", Money),
            sa.Column("override_tolerance", Money),
            sa.Column("override_reason", sa.Text),
            sa.Column("message", sa.Text),
            sa.Column("diagnostics", sa.Text),
            sa.Column("task_url", sa.Text),
            sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("finished_at", sa.DateTime(timezone=True)),
            sa.UniqueConstraint("dag_id", "run_id", "provider", "invoice_id", name="uq_invoice_sync_attempt"),
        ),
        "provider_invoice_note": (
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("provider", sa.String(32), nullable=False),
            sa.Column("invoice_id", sa.String(64), nullable=False),
            sa.Column("note", sa.Text, nullable=False),
            sa.Column("author", sa.String(250)),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        ),
        "invoice_notification": (
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("dag_id", sa.String(250), nullable=False),
            sa.Column("run_id", sa.String(250), nullable=False),
            sa.Column("window_start", sa.DateTime(timezone=True)),
            sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
            sa.Column("recipients", sa.Text, nullable=False),
            sa.Column("subject", sa.Text, nullable=False),
            sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        ),
    }


_INDEXES = {
    "invoice_sync_attempt": ("ix_attempt_invoice", ["provider", "invoice_id"]),
    "provider_invoice_note": ("ix_note_invoice", ["provider", "invoice_id"]),
}


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    for name, columns in _tables().items():
        if name in existing:
            continue
        op.create_table(name, *columns)
        if name in _INDEXES:
            index, indexed = _INDEXES[name]
            op.create_index(index, name, indexed)


def downgrade() -> None:
    for name in reversed(_tables()):
        op.drop_table(name)
