"""Reshape what the first release (commit 38017c2) left: the line table's surrogate id, the shared staging table.

The first release keyed ``provider_invoice_line`` by a surrogate ``id`` (plus a unique constraint on
provider, invoice and line number) and staged every fetch in one ``provider_invoice_line_staging``
table. Today lines are keyed by (provider, invoice_id, line_no) and each fetch stages into its own
table. Every loaded line is kept, ``customer_invoice_ref`` included; the shared staging table is
dropped, because staged rows only live between a fetch and its load: a run interrupted by the upgrade
fetches again. Databases created at the baseline have neither, and this revision does nothing there.

Revision ID: 0002_first_release_line_key
Revises: 0001_baseline
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_first_release_line_key"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None

_LINES = "provider_invoice_line"
_SHARED_STAGING = "provider_invoice_line_staging"


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if inspector.has_table(_SHARED_STAGING):
        op.drop_table(_SHARED_STAGING)
    if "id" not in {column["name"] for column in inspector.get_columns(_LINES)}:
        return
    unique_names = {constraint["name"] for constraint in inspector.get_unique_constraints(_LINES)}
    with op.batch_alter_table(_LINES, recreate="auto") as batch:
        if "uq_provider_invoice_line" in unique_names:
            batch.drop_constraint("uq_provider_invoice_line", type_="unique")
        batch.drop_column("id")  # its primary key and (on PostgreSQL) its sequence go with it
        batch.create_primary_key("pk_provider_invoice_line", ["provider", "invoice_id", "line_no"])


def downgrade() -> None:
    """Nothing to undo: the first release's shape is not restored (its surrogate ids were never used)."""
