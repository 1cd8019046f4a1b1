"""The reference: what a data engineer might pick instead of the pipeline, to compare it against.

DuckDB reads the same gzip JSON-lines blobs with ``read_json`` (every field as text, the amount cast
to ``DECIMAL(24,6)``), writes the rows as CSV, and PostgreSQL takes them with one ``COPY`` into an
UNLOGGED table shaped like ``provider_invoice_line`` without its key; the exact ``SUM`` and the count
are PostgreSQL's. The blobs are read from the benchmark's cache, not downloaded (DuckDB has no HTTP
reader without an extension download). No normaliser rules, no staging, no GX, no audit rows.

Measured, not assumed: DuckDB's JSON reader turns every JSON number into a double before the cast,
even when the column is asked for as ``VARCHAR`` or ``DECIMAL`` (``-10.0000`` reads as ``'-10.0'``,
``12345678901234567.891234`` as ``12345678901234568``, and ``1.2345678`` is rounded to ``1.234568``
instead of refused). The benchmark's amounts have at most 13 significant digits, so the reference's
sum is right here; as an importer it is exact only that far (see ``benchmarks/README.md``).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from benchmarks.data import BenchInvoice

REFERENCE_TABLE = "bench_duckdb_line"
_COLUMNS = {
    # provider_invoice_line column: the DuckDB expression over the export's fields (all read as text)
    "provider": "'microsoft'",
    "invoice_id": "InvoiceNumber",
    "line_no": "row_number() OVER ()",
    "category": "'one_time'",
    "amount": "CAST(TotalForCustomer AS DECIMAL(24, 6))",
    "currency_code": "Currency",
    "customer_id": "CustomerId",
    "customer_name": "CustomerName",
    "subscription_id": "SubscriptionId",
    "product_id": "ProductId",
    "sku_id": "SkuId",
    "charge_type": "ChargeType",
    "charge_start_date": "CAST(ChargeStartDate AS DATE)",
    "charge_end_date": "CAST(ChargeEndDate AS DATE)",
    "description": "ProductName",
    "source": "'one_time/billing_line_items'",
}
_FIELDS = (
    *("InvoiceNumber", "TotalForCustomer", "Currency", "CustomerId", "CustomerName", "SubscriptionId"),
    *("ProductId", "SkuId", "ChargeType", "ChargeStartDate", "ChargeEndDate", "ProductName"),
)
_COPY_BLOCK = 1 << 20


def run_reference(bench: BenchInvoice, db_url: str) -> dict:
    """Import the invoice the DuckDB way into ``REFERENCE_TABLE``; line count, exact sum and the parse time."""
    import duckdb
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(db_url)
    files = [str(bench.blob_path(name)) for name in bench.blobs]
    columns = "{" + ", ".join(f"'{field}': 'VARCHAR'" for field in _FIELDS) + "}"
    select = ", ".join(f"{expression} AS {name}" for name, expression in _COLUMNS.items())
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-duckdb-") as tmp:
        csv = Path(tmp) / "lines.csv"
        with duckdb.connect() as duck:
            duck.execute(
                f"COPY (SELECT {select} FROM read_json(?, format = 'newline_delimited', compression = 'gzip', "
                f"columns = {columns})) TO '{csv}' (FORMAT csv, HEADER false)",
                [files],
            )
        parsed = time.perf_counter() - started
        with psycopg.connect(
            host=url.host, port=url.port, user=url.username, password=url.password, dbname=url.database
        ) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {REFERENCE_TABLE}")
            conn.execute(f"CREATE UNLOGGED TABLE {REFERENCE_TABLE} (LIKE provider_invoice_line)")
            names = ", ".join(_COLUMNS)
            with conn.cursor() as cur, cur.copy(f"COPY {REFERENCE_TABLE} ({names}) FROM STDIN (FORMAT csv)") as copy:
                with csv.open("rb") as rows:
                    while block := rows.read(_COPY_BLOCK):
                        copy.write(block)
            count, total = conn.execute(f"SELECT count(*), sum(amount) FROM {REFERENCE_TABLE}").fetchone()
    return {"line_count": count, "sum": str(total), "parse_seconds": parsed}
