"""Alembic environment: run by :func:`include.sql.migrate.upgrade` on the connection it opened.

Batch mode (``render_as_batch``) so a revision's ``op.batch_alter_table`` rebuilds the table on
SQLite, which cannot drop a column or change a primary key in place, and alters it in place on
PostgreSQL. The per-fetch stage tables (``invoice_line_stage_*``, ``invoice_usage_stage_*``) and the
partitions of the line and usage tables (``provider_invoice_line__*``, ``provider_invoice_usage_line__*``)
come and go at run time and are not part of the schema.
"""

from __future__ import annotations

from alembic import context

from include.sql.schema import made_at_run_time, metadata


def _in_schema(name, type_, _parent_names) -> bool:
    return not (type_ == "table" and made_at_run_time(name))


def run_migrations_online() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("Run the invoice database migrations with `python -m include.sql.migrate`.")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=config.get_main_option("version_table"),
        render_as_batch=True,
        include_name=_in_schema,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
