"""Bulk-load an Arrow table into a PostgreSQL table with ``COPY ... (FORMAT csv)``: the stages' fast path."""

from __future__ import annotations

import io

from sqlalchemy.engine import Engine


def copy_table(engine: Engine, table_name: str, table) -> int:
    """Append the Arrow ``table`` (its columns, by name) to ``table_name`` in one transaction; returns its rows.

    Arrow writes it as CSV in C: every text quoted (``""`` is an empty text), a null as nothing, which is
    what ``COPY ... (FORMAT csv)`` reads as NULL; decimals as their exact text, dates as ISO dates.
    """
    import pyarrow.csv

    if engine.dialect.name != "postgresql":
        raise ValueError("Arrow tables are staged on PostgreSQL only; SQLite takes lines.")
    buffer = io.BytesIO()
    pyarrow.csv.write_csv(table, buffer, pyarrow.csv.WriteOptions(include_header=False))
    columns = ", ".join(table.column_names)
    with engine.begin() as conn, conn.connection.dbapi_connection.cursor() as cursor:
        with cursor.copy(f"COPY {table_name} ({columns}) FROM STDIN (FORMAT csv)") as copy:
            copy.write(buffer.getbuffer())
    return table.num_rows
