"""``provider_invoice_line`` and ``provider_invoice_usage_line`` on PostgreSQL: one partition per provider, and
in it one per invoice.

The load turns a checked stage (lines, and daily-rated usage) into the invoice's partition instead of copying
its rows: the stage is made logged and with the table's column types (:func:`include.sql.schema.line_stage_table`),
so it only gets the provider and invoice columns (constant defaults: no rewrite), the key (its index built by
sorting) and a CHECK naming the invoice, which lets ``ATTACH PARTITION`` skip its scan (:func:`shape_stage`;
the checksum does it ahead of the load). Then, holding the provider partition's exclusive lock for a few
catalogue changes only, the previous partition is dropped and the stage attached in its place. The load locks
the lines' provider partition before the usage's, always. SQLite has no partitions: it keeps the transactional
copy (:meth:`include.sql.store.InvoiceStore.load_from_stage`).
"""

from __future__ import annotations

import hashlib

from sqlalchemy import String, Table, func, inspect, literal, select, text
from sqlalchemy.engine import Connection

from include.sql.schema import (
    LINE_PARTITION_PREFIX,
    USAGE_PARTITION_PREFIX,
    provider_invoice_line,
    provider_invoice_usage_line,
)

STAGED_INVOICE_CHECK = "staged_invoice"
"""The stage's CHECK (provider and invoice id): it implies the partition bound, so attaching scans nothing."""
_NAMES = {
    # partitioned table: the prefix of its partitions, and the hex digits of their hash (a name and its
    # "_pkey" must fit PostgreSQL's 63 characters; the lines' names are those of their first release)
    provider_invoice_line.name: (LINE_PARTITION_PREFIX, 32),
    provider_invoice_usage_line.name: (USAGE_PARTITION_PREFIX, 26),
}


def _hashed(of: Table, *parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[: _NAMES[of.name][1]]


def provider_partition_name(provider: str, of: Table = provider_invoice_line) -> str:
    """The partition of ``of`` holding one provider's invoices (partitioned by invoice)."""
    return f"{_NAMES[of.name][0]}p_{_hashed(of, provider)}"


def invoice_partition_name(provider: str, invoice_id: str, of: Table = provider_invoice_line) -> str:
    """The partition of ``of`` holding one invoice's rows."""
    return f"{_NAMES[of.name][0]}i_{_hashed(of, provider, invoice_id)}"


def _quoted(conn: Connection, value: str) -> str:
    """``value`` as an SQL string literal (partition bounds and defaults take no parameters)."""
    return str(literal(value, String).compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))


def _exists(conn: Connection, name: str) -> bool:
    return conn.execute(select(func.to_regclass(name))).scalar() is not None


def has_provider_partition(conn: Connection, provider: str, of: Table = provider_invoice_line) -> bool:
    """Whether one of the provider's invoices was loaded into ``of`` (or migrated) before."""
    return _exists(conn, provider_partition_name(provider, of))


def provider_partition(conn: Connection, provider: str, of: Table = provider_invoice_line) -> str:
    """The provider's partition of ``of``, created the first time one of its invoices is loaded (or migrated)."""
    name = provider_partition_name(provider, of)
    if not _exists(conn, name):
        conn.exec_driver_sql(f"LOCK TABLE ONLY {of.name} IN ACCESS EXCLUSIVE MODE")
        if not _exists(conn, name):  # another load of this provider's first invoices may have made it meanwhile
            conn.exec_driver_sql(
                f"CREATE TABLE {name} PARTITION OF {of.name} "
                f"FOR VALUES IN ({_quoted(conn, provider)}) PARTITION BY LIST (invoice_id)"
            )
    return name


def create_invoice_partition(
    conn: Connection, provider: str, invoice_id: str, of: Table = provider_invoice_line
) -> None:
    """An empty partition of ``of`` for one invoice (the migrations fill them; loads attach stages instead)."""
    parent = provider_partition(conn, provider, of)
    conn.exec_driver_sql(
        f"CREATE TABLE {invoice_partition_name(provider, invoice_id, of)} PARTITION OF {parent} "
        f"FOR VALUES IN ({_quoted(conn, invoice_id)})"
    )


def shape_stage(
    conn: Connection, stage: Table, provider: str, invoice_id: str, of: Table = provider_invoice_line
) -> None:
    """Give the stage the columns and key of ``of``, once (a stage with its key is left as it is).

    One ``ALTER TABLE``: the provider and invoice columns with the invoice as their value (a constant
    default, which PostgreSQL keeps in the catalogue instead of rewriting the rows), the CHECK (one
    scan) and the key's index (one sort). A stage staged by an earlier release (unbounded texts,
    ``UNLOGGED``) gets the types and ``SET LOGGED`` too, in one rewrite. Touches the stage only: no
    lock on ``of``. The checksum shapes its stages while GX is imported
    (:meth:`include.sql.store.InvoiceStore.shape_stage`); the load shapes one that is not yet.
    """
    if _exists(conn, f"{stage.name}_pkey"):
        return
    # as the stage is in the database (a release before this one staged unbounded texts), not as declared now
    staged = {
        column["name"]: column["type"].compile(dialect=conn.dialect) for column in inspect(conn).get_columns(stage.name)
    }
    values = {"provider": provider, "invoice_id": invoice_id}
    changes = []
    for column in of.columns:
        type_sql = column.type.compile(dialect=conn.dialect)
        if column.name not in staged:
            default = f" NOT NULL DEFAULT {_quoted(conn, values[column.name])}" if column.name in values else ""
            changes.append(f"ADD COLUMN {column.name} {type_sql}{default}")
        elif staged[column.name] != type_sql:
            changes.append(f"ALTER COLUMN {column.name} TYPE {type_sql}")
    check = " AND ".join(f"{name} = {_quoted(conn, value)}" for name, value in values.items())
    key = ", ".join(column.name for column in of.primary_key.columns)
    changes += [
        f"ADD CONSTRAINT {STAGED_INVOICE_CHECK} CHECK ({check})",
        f"ADD CONSTRAINT {stage.name}_pkey PRIMARY KEY ({key})",
    ]
    unlogged = text("SELECT relpersistence = 'u' FROM pg_class WHERE oid = to_regclass(:name)")
    if conn.execute(unlogged, {"name": stage.name}).scalar():
        changes.append("SET LOGGED")
    conn.exec_driver_sql(f"ALTER TABLE {stage.name} {', '.join(changes)}")
    conn.exec_driver_sql(f"ALTER TABLE {stage.name} {', '.join(f'ALTER COLUMN {n} DROP DEFAULT' for n in values)}")


def lock_invoice_partition(
    conn: Connection, provider: str, invoice_id: str, of: Table = provider_invoice_line
) -> str | None:
    """Take the exclusive lock of the provider's partition of ``of``; the invoice's current partition, or None.

    Taken before the invoice's lines are read, so that two loads of one provider queue here instead of
    each holding a share lock the other's ``DROP`` waits for (a deadlock), and so that no line is linked
    to a customer invoice between the check and the swap.
    """
    conn.exec_driver_sql(f"LOCK TABLE ONLY {provider_partition(conn, provider, of)} IN ACCESS EXCLUSIVE MODE")
    name = invoice_partition_name(provider, invoice_id, of)
    return name if _exists(conn, name) else None


def attach_stage(
    conn: Connection, stage: Table, provider: str, invoice_id: str, of: Table = provider_invoice_line
) -> None:
    """Under :func:`lock_invoice_partition`: the shaped stage replaces the invoice's partition of ``of``."""
    name = invoice_partition_name(provider, invoice_id, of)
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
    conn.exec_driver_sql(f"ALTER TABLE {stage.name} RENAME TO {name}")
    conn.exec_driver_sql(f"ALTER INDEX {stage.name}_pkey RENAME TO {name}_pkey")
    conn.exec_driver_sql(
        f"ALTER TABLE {provider_partition_name(provider, of)} ATTACH PARTITION {name} "
        f"FOR VALUES IN ({_quoted(conn, invoice_id)})"
    )
    conn.exec_driver_sql(f"ALTER TABLE {name} DROP CONSTRAINT {STAGED_INVOICE_CHECK}")


def drop_invoice_partition(conn: Connection, provider: str, invoice_id: str, of: Table = provider_invoice_line) -> None:
    """Under :func:`lock_invoice_partition`: the invoice has no rows of ``of`` any more (a reload without any)."""
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {invoice_partition_name(provider, invoice_id, of)}")
