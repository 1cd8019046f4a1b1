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

KEY = "provider, invoice_id, line_no"
"""The key of both partitioned tables, as the revisions made them."""


def _partitioned(bind, name: str) -> bool:
    return bind.execute(sa.text(f"SELECT relkind = 'p' FROM pg_class WHERE oid = '{name}'::regclass")).scalar()


def _rebuild(name: str, key: str, partition_by: str) -> None:
    bind = op.get_bind()
    aside = f"{name}_unpartitioned"
    op.rename_table(name, aside)
    op.execute(f"ALTER TABLE {aside} RENAME CONSTRAINT {key} TO {key}_unpartitioned")
    op.execute(f"CREATE TABLE {name} (LIKE {aside} INCLUDING DEFAULTS INCLUDING CONSTRAINTS) {partition_by}")
    op.execute(f"ALTER TABLE {name} ADD CONSTRAINT {key} PRIMARY KEY ({KEY})")
    if partition_by:
        for provider, invoice_id in bind.execute(sa.text(f"SELECT DISTINCT provider, invoice_id FROM {aside}")):
            create_invoice_partition(bind, provider, invoice_id, sa.table(name))
    op.execute(f"INSERT INTO {name} SELECT * FROM {aside}")
    op.drop_table(aside)


def partition_by_invoice(name: str, key: str) -> None:
    """The table ``name`` (primary key ``key`` on provider, invoice id, line number) partitioned by provider, then
    by invoice. Names given by each revision, not read from today's schema: a revision does what it did."""
    bind = op.get_bind()
    if bind.dialect.name == "postgresql" and not _partitioned(bind, name):
        _rebuild(name, key, "PARTITION BY LIST (provider)")


def unpartition(name: str, key: str) -> None:
    """The table ``name`` as one plain table again, with every row of its partitions."""
    bind = op.get_bind()
    if bind.dialect.name == "postgresql" and _partitioned(bind, name):
        _rebuild(name, key, "")
