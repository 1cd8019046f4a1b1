"""Daily-rated usage (issue 15): pre-tax line amounts, billed daily-rated usage lines, usage mismatches.

``provider_invoice_line.pre_tax_amount`` is what the usage checksum compares daily-rated usage with;
``provider_invoice_usage_line`` holds an invoice's billed daily-rated usage (exact at 16 decimals) and
``invoice_usage_mismatch`` the subscriptions of a failed usage checksum. Frozen copies of the definitions.

Revision ID: 0004_daily_rated_usage
Revises: 0003_provider_invoice_listing
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from include.sql.schema import Money, UsageAmount

revision = "0004_daily_rated_usage"
down_revision = "0003_provider_invoice_listing"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("provider_invoice_line") as batch:
        batch.add_column(sa.Column("pre_tax_amount", Money))
    op.create_table(
        "provider_invoice_usage_line",
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("invoice_id", sa.String(64), nullable=False),
        sa.Column("line_no", sa.Integer, nullable=False),
        sa.Column("customer_id", sa.String(64)),
        sa.Column("subscription_id", sa.String(64)),
        sa.Column("usage_date", sa.Date),
        sa.Column("product_id", sa.String(64)),
        sa.Column("meter_id", sa.String(64)),
        sa.Column("meter_name", sa.String(255)),
        sa.Column("meter_category", sa.String(255)),
        sa.Column("resource_uri", sa.Text),
        sa.Column("quantity", UsageAmount),
        sa.Column("unit_price", UsageAmount),
        sa.Column("billing_pre_tax_total", UsageAmount, nullable=False),
        sa.Column("currency_code", sa.String(3), nullable=False),
        sa.PrimaryKeyConstraint("provider", "invoice_id", "line_no", name="pk_provider_invoice_usage_line"),
    )
    op.create_table(
        "invoice_usage_mismatch",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("invoice_id", sa.String(64), nullable=False),
        sa.Column("run_id", sa.String(250), nullable=False),
        sa.Column("customer_id", sa.String(64)),
        sa.Column("subscription_id", sa.String(64)),
        sa.Column("reconciliation_pre_tax", UsageAmount, nullable=False),
        sa.Column("daily_rated_pre_tax", UsageAmount, nullable=False),
        sa.Column("difference", UsageAmount, nullable=False),
        sa.Column("last_usage_date", sa.Date),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_usage_mismatch_invoice", "invoice_usage_mismatch", ["provider", "invoice_id"])


def downgrade() -> None:
    op.drop_index("ix_usage_mismatch_invoice", table_name="invoice_usage_mismatch")
    op.drop_table("invoice_usage_mismatch")
    op.drop_table("provider_invoice_usage_line")
    with op.batch_alter_table("provider_invoice_line") as batch:
        batch.drop_column("pre_tax_amount")
