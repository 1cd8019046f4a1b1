"""The Graph export operations a fetch started (issue 16): ``invoice_sync_attempt.export_operations``.

A fetch starts Microsoft's exports, records their operation locations here and defers while Microsoft
prepares them; a retry of the same run finds them and waits for the same operations instead of
starting second exports. JSON text: ``{"reconciliation": "<operation URL>", "usage": "<operation URL>"}``.

Revision ID: 0006_export_operations
Revises: 0005_provider_accounts
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_export_operations"
down_revision = "0005_provider_accounts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("invoice_sync_attempt") as batch:
        batch.add_column(sa.Column("export_operations", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("invoice_sync_attempt") as batch:
        batch.drop_column("export_operations")
