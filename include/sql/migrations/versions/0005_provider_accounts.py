"""Several accounts per provider (issue 16): the account (its connection id) of every invoice, attempt and listing.

Rows written before this revision come from the provider's one account, its ``_default`` connection. The
provider listing is keyed by account too: each account's listing replaces only its own rows. Frozen copies
of the definitions.

Revision ID: 0005_provider_accounts
Revises: 0004_daily_rated_usage
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_provider_accounts"
down_revision = "0004_daily_rated_usage"
branch_labels = None
depends_on = None

DEFAULT_ACCOUNT = sa.text(
    "CASE provider WHEN 'microsoft' THEN 'partner_center_default' "
    "WHEN 'synnex' THEN 'streamone_ion_default' ELSE provider || '_default' END"
)
"""The provider's ``_default`` connection, the one account every existing row was synced from."""
TABLES = ("provider_invoice", "invoice_sync_attempt", "provider_invoice_listing")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("account", sa.String(64)))
        op.execute(sa.table(table, sa.column("account")).update().values(account=DEFAULT_ACCOUNT))
        with op.batch_alter_table(table) as batch:
            batch.alter_column("account", existing_type=sa.String(64), nullable=False)
    with op.batch_alter_table("provider_invoice_listing") as batch:
        batch.drop_constraint("pk_provider_invoice_listing", type_="primary")
        batch.create_primary_key("pk_provider_invoice_listing", ["provider", "account", "invoice_id"])


def downgrade() -> None:
    with op.batch_alter_table("provider_invoice_listing") as batch:
        batch.drop_constraint("pk_provider_invoice_listing", type_="primary")
        batch.create_primary_key("pk_provider_invoice_listing", ["provider", "invoice_id"])
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("account")
