"""``provider_invoice_line`` partitioned by provider, then by invoice, on PostgreSQL (issue 17).

A load then attaches its checked stage as the invoice's partition instead of copying it
(:mod:`include.sql.partitions`). An existing table keeps its rows: it is renamed aside, the partitioned
table created ``LIKE`` it (the columns the database has), one partition made per invoice it holds, the
rows moved in one ``INSERT ... SELECT`` and the old table dropped, all in the migration's transaction.
SQLite has no partitions: nothing changes there.

Revision ID: 0007_partitioned_lines
Revises: 0006_export_operations
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from include.sql.partitions import create_invoice_partition

revision = "0007_partitioned_lines"
down_revision = "0006_export_operations"
branch_labels = None
depends_on = None

_LINES = "provider_invoice_line"
_ASIDE = "provider_invoice_line_unpartitioned"
_KEY = "pk_provider_invoice_line"


def _partitioned(bind) -> bool:
    return bind.execute(sa.text(f"SELECT relkind = 'p' FROM pg_class WHERE oid = '{_LINES}'::regclass")).scalar()


def _rebuild(partition_by: str, fill) -> None:
    """Move the line table aside, make it again (same columns, ``partition_by``), ``fill(bind)``, move the rows."""
    bind = op.get_bind()
    op.rename_table(_LINES, _ASIDE)
    op.execute(f"ALTER TABLE {_ASIDE} RENAME CONSTRAINT {_KEY} TO {_KEY}_unpartitioned")
    op.execute(f"CREATE TABLE {_LINES} (LIKE {_ASIDE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS) {partition_by}")
    op.execute(f"ALTER TABLE {_LINES} ADD CONSTRAINT {_KEY} PRIMARY KEY (provider, invoice_id, line_no)")
    fill(bind)
    op.execute(f"INSERT INTO {_LINES} SELECT * FROM {_ASIDE}")
    op.drop_table(_ASIDE)


def _invoice_partitions(bind) -> None:
    for provider, invoice_id in bind.execute(sa.text(f"SELECT DISTINCT provider, invoice_id FROM {_ASIDE}")):
        create_invoice_partition(bind, provider, invoice_id)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql" and not _partitioned(bind):
        _rebuild("PARTITION BY LIST (provider)", _invoice_partitions)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql" and _partitioned(bind):
        _rebuild("", lambda _bind: None)
