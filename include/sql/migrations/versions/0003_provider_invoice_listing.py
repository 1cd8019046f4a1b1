"""The provider's listing: what each provider's API listed at the last scheduled sync.

The invoices workspace offers these invoices for a manual sync without calling the provider on page
load; each scheduled listing replaces its provider's rows. A database created by the workspace's
first release (before this revision existed) already has the table and keeps it.

Revision ID: 0003_provider_invoice_listing
Revises: 0002_first_release_line_key
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from include.sql.schema import Money

revision = "0003_provider_invoice_listing"
down_revision = "0002_first_release_line_key"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("provider_invoice_listing"):
        return
    op.create_table(
        "provider_invoice_listing",
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("invoice_id", sa.String(64), nullable=False),
        sa.Column("currency_code", sa.String(3)),
        sa.Column("header_total", Money),
        sa.Column("invoice_date", sa.Date),
        sa.Column("billing_period_start", sa.Date),
        sa.Column("billing_period_end", sa.Date),
        sa.Column("document_type", sa.String(32)),
        sa.Column("listed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("provider", "invoice_id", name="pk_provider_invoice_listing"),
    )


def downgrade() -> None:
    op.drop_table("provider_invoice_listing")
