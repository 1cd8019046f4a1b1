"""The floor: the least any importer of the same invoice must do, to compare the pipeline against.

Download (the same export flow through :class:`PartnerCenterHook` for the small manifest, then each
blob streamed with plain ``requests``), gunzip, parse every line exactly (``Decimal``), sum the
amounts exactly, and bulk-insert the lines with the database's fastest path: ``COPY`` on PostgreSQL,
one ``executemany`` transaction on SQLite. No normaliser rules, no staging, no GX, no audit rows.
The target table has the columns and key of ``provider_invoice_line``.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator
from decimal import Decimal

import requests

FLOOR_TABLE = "bench_floor_line"
COLUMNS = (
    "provider",
    "invoice_id",
    "line_no",
    "category",
    "amount",
    "currency_code",
    "customer_id",
    "customer_name",
    "subscription_id",
    "product_id",
    "sku_id",
    "charge_type",
    "charge_start_date",
    "charge_end_date",
    "description",
    "source",
)
_SQLITE_DDL = f"""CREATE TABLE {FLOOR_TABLE} (
    provider VARCHAR(32) NOT NULL, invoice_id VARCHAR(64) NOT NULL,
    line_no INTEGER NOT NULL, category VARCHAR(32) NOT NULL, amount BIGINT NOT NULL,
    currency_code VARCHAR(3) NOT NULL, customer_id VARCHAR(64), customer_name VARCHAR(255),
    subscription_id VARCHAR(64), product_id VARCHAR(64), sku_id VARCHAR(64), charge_type VARCHAR(64),
    charge_start_date DATE, charge_end_date DATE, description TEXT, source VARCHAR(64),
    PRIMARY KEY (provider, invoice_id, line_no))"""


def _rows(invoice_id: str, lines: Iterator[dict], totals: list) -> Iterator[tuple]:
    """Canonical-shaped tuples; ``totals[0]`` accumulates the exact Decimal sum as they stream by."""
    total = Decimal(0)
    line_no = 0
    for line_no, raw in enumerate(lines, start=1):
        amount = raw["TotalForCustomer"]
        total += amount
        yield (
            "microsoft",
            invoice_id,
            line_no,
            "one_time",
            amount,
            raw["Currency"],
            raw["CustomerId"],
            raw["CustomerName"],
            raw["SubscriptionId"],
            raw["ProductId"],
            raw["SkuId"],
            raw["ChargeType"],
            raw["ChargeStartDate"][:10],
            raw["ChargeEndDate"][:10],
            raw["ProductName"],
            "one_time/billing_line_items",
        )
    totals[:] = [total, line_no]


_DECODER = json.JSONDecoder(parse_float=Decimal)


def download(invoice_id: str) -> Iterator[dict]:
    """Every exported line of the invoice, blob by blob, streamed and parsed exactly."""
    from plugins.hooks.partner_center import PartnerCenterHook

    hook = PartnerCenterHook()
    manifest = hook._export_manifest(invoice_id)
    root, sas = manifest["rootDirectory"].rstrip("/"), manifest["sasToken"]
    with requests.Session() as session:
        for blob in manifest["blobs"]:
            with session.get(f"{root}/{blob['name']}?{sas}", stream=True, timeout=(10, 120)) as response:
                response.raise_for_status()
                with gzip.GzipFile(fileobj=response.raw) as unzipped:
                    for text in io.TextIOWrapper(unzipped, encoding="utf-8"):
                        yield _DECODER.decode(text)


def run_floor(invoice_id: str, db_url: str) -> dict:
    """Import the invoice the minimal way into ``FLOOR_TABLE``; returns line count and exact sum."""
    from sqlalchemy.engine import make_url

    from include.sql.migrate import upgrade

    url = make_url(db_url)
    upgrade(db_url)  # the floor's table is shaped like provider_invoice_line
    totals: list = []
    rows = _rows(invoice_id, download(invoice_id), totals)
    if url.get_backend_name() == "sqlite":
        import sqlite3

        from include.model import to_micros

        conn = sqlite3.connect(url.database)
        try:
            conn.execute(f"DROP TABLE IF EXISTS {FLOOR_TABLE}")
            conn.execute(_SQLITE_DDL)
            marks = ",".join("?" * len(COLUMNS))
            with conn:
                conn.executemany(
                    f"INSERT INTO {FLOOR_TABLE} ({','.join(COLUMNS)}) VALUES ({marks})",
                    (r[:4] + (to_micros(r[4]),) + r[5:] for r in rows),
                )
        finally:
            conn.close()
    else:
        import psycopg

        with psycopg.connect(
            host=url.host, port=url.port, user=url.username, password=url.password, dbname=url.database
        ) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {FLOOR_TABLE}")
            conn.execute(f"CREATE TABLE {FLOOR_TABLE} (LIKE provider_invoice_line INCLUDING ALL)")
            with conn.cursor() as cur, cur.copy(f"COPY {FLOOR_TABLE} ({','.join(COLUMNS)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
    total, count = totals
    return {"line_count": count, "sum": str(total)}
