"""What the revisions that partition a table by provider and invoice on PostgreSQL share (0007 the lines,
0008 the daily-rated usage; :mod:`include.sql.partitions`).

An existing table keeps its rows: it is renamed aside, the table made again ``LIKE`` it (the columns the
database has) with or without partitioning, one partition made per invoice it holds, the rows moved in one
``INSERT ... SELECT`` and the old table dropped (with its partitions, going back), all in the migration's
transaction. SQLite has no partitions: nothing changes there.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from include.sql.partitions import create_invoice_partition


def _partitioned(bind, table: sa.Table) -> bool:
    return bind.execute(sa.text(f"SELECT relkind = 'p' FROM pg_class WHERE oid = '{table.name}'::regclass")).scalar()


def _rebuild(table: sa.Table, partition_by: str) -> None:
    bind = op.get_bind()
    name, aside, key = table.name, f"{table.name}_unpartitioned", table.primary_key.name
    op.rename_table(name, aside)
    op.execute(f"ALTER TABLE {aside} RENAME CONSTRAINT {key} TO {key}_unpartitioned")
    op.execute(f"CREATE TABLE {name} (LIKE {aside} INCLUDING DEFAULTS INCLUDING CONSTRAINTS) {partition_by}")
    columns = ", ".join(column.name for column in table.primary_key.columns)
    op.execute(f"ALTER TABLE {name} ADD CONSTRAINT {key} PRIMARY KEY ({columns})")
    if partition_by:
        for provider, invoice_id in bind.execute(sa.text(f"SELECT DISTINCT provider, invoice_id FROM {aside}")):
            create_invoice_partition(bind, provider, invoice_id, table)
    op.execute(f"INSERT INTO {name} SELECT * FROM {aside}")
    op.drop_table(aside)


def partition_by_invoice(table: sa.Table) -> None:
    """``table`` (its name and key; keyed by provider, invoice id, ...) partitioned by provider, then invoice."""
    bind = op.get_bind()
    if bind.dialect.name == "postgresql" and not _partitioned(bind, table):
        _rebuild(table, "PARTITION BY LIST (provider)")


def unpartition(table: sa.Table) -> None:
    """``table`` as one plain table again, with every row of its partitions."""
    bind = op.get_bind()
    if bind.dialect.name == "postgresql" and _partitioned(bind, table):
        _rebuild(table, "")
