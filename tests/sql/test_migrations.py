"""Alembic migrations of the invoice database, on SQLite and PostgreSQL.

The upgrade test builds the first release's schema (commit 38017c2, kept verbatim in
``first_release_schema.py``) with rows in it, runs ``python -m include.sql.migrate``'s entry point,
then reads the rows back and syncs an invoice through Airflow on the migrated database.
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, insert, inspect

from include.providers.microsoft.demo import EXPECTED as MICROSOFT_DEMO
from include.sql import migrate
from include.sql.partitions import invoice_partition_name
from include.sql.schema import made_at_run_time, metadata
from include.sql.store import AttemptKey, InvoiceStateError
from tests.conftest import reset_database
from tests.dags.helpers import run_dag
from tests.sql import first_release_schema as first

NOW = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)
BALANCED = next(i for i, e in MICROSOFT_DEMO.items() if e.status == "active" and e.difference == 0)
LEGACY = "G000LEGACY1"
"""An active invoice of the first release, two of whose three lines are already invoiced to customers."""


def _url(store) -> str:
    return store.engine.url.render_as_string(hide_password=False)


def _schema_differences(url: str) -> list:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn,
                opts={
                    "include_name": lambda name, type_, _p: (
                        name != migrate.VERSION_TABLE and not (type_ == "table" and made_at_run_time(name))
                    ),
                    "compare_type": True,
                },
            )
            return compare_metadata(context, metadata)
    finally:
        engine.dispose()


def test_migrations_build_exactly_the_schema_of_the_code(invoice_db):
    """A schema change without its revision (or the reverse) fails here."""
    assert _schema_differences(_url(invoice_db)) == []
    assert migrate.current_revision(invoice_db.engine) == migrate.head_revision()


def test_migrate_twice_changes_nothing(invoice_db):
    migrate.upgrade(_url(invoice_db))
    assert migrate.current_revision(invoice_db.engine) == migrate.head_revision()
    assert _schema_differences(_url(invoice_db)) == []


@contextmanager
def _database_at(store, revision: str):
    """``(url, engine)`` of the test database, emptied and migrated to ``revision``; the engine goes after."""
    url = _url(store)
    reset_database(url)
    migrate.upgrade(url, revision)
    engine = create_engine(url)
    try:
        yield url, engine
    finally:
        engine.dispose()


def test_a_database_behind_the_code_is_refused_naming_the_command(invoice_db):
    with _database_at(invoice_db, "0001_baseline") as (url, engine):
        with pytest.raises(migrate.SchemaNotCurrent) as behind:
            migrate.require_current(engine)
        reset_database(url)
        with pytest.raises(migrate.SchemaNotCurrent) as empty:
            migrate.require_current(engine)
    assert str(behind.value).endswith(
        f"is at schema revision 0001_baseline but this code needs "
        f"{migrate.head_revision()}: run `python -m include.sql.migrate`."
    )
    assert "has no schema revision" in str(empty.value)
    assert "python -m include.sql.migrate" in str(empty.value)


def test_a_task_on_an_unmigrated_database_fails_with_one_sentence(tmp_path, monkeypatch):
    import json

    from plugins.hooks.invoice_db import InvoiceDbHook

    monkeypatch.setenv("AIRFLOW_CONN_INVOICE_DB", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "x.db")}))
    with pytest.raises(migrate.SchemaNotCurrent, match=r"run `python -m include\.sql\.migrate`\.$"):
        InvoiceDbHook().get_store()


def _first_release_database(url: str) -> None:
    """The first release's tables, as its ``create_all`` made them, with a year of rows in them."""
    engine = create_engine(url)
    try:
        first.metadata.create_all(engine)
        with engine.begin() as conn:
            for invoice_id, status in ((LEGACY, "active"), (BALANCED, "checksum_error")):
                conn.execute(
                    insert(first.provider_invoice).values(
                        provider="microsoft",
                        invoice_id=invoice_id,
                        status=status,
                        currency_code="EUR",
                        header_total=Decimal("300.300001"),
                        detail_total=Decimal("300.300001") if status == "active" else Decimal("1.00"),
                        difference=Decimal("0") if status == "active" else Decimal("299.300001"),
                        tolerance_applied=Decimal("1"),
                        line_count=3 if status == "active" else None,
                        invoice_date=date(2025, 12, 1),
                        created_at=NOW,
                        updated_at=NOW,
                    )
                )
                conn.execute(
                    insert(first.invoice_sync_attempt).values(
                        provider="microsoft",
                        invoice_id=invoice_id,
                        dag_id="provider_invoice_sync_microsoft",
                        run_id="scheduled__2025-12-02",
                        outcome="activated" if status == "active" else "checksum_error",
                        started_at=NOW,
                        finished_at=NOW,
                    )
                )
            for line_no, (amount, ref) in enumerate(
                [(Decimal("100.100001"), "CUST-2025-001"), (Decimal("200.2"), "CUST-2025-002"), (Decimal("0"), None)],
                start=1,
            ):
                conn.execute(
                    insert(first.provider_invoice_line).values(
                        provider="microsoft",
                        invoice_id=LEGACY,
                        line_no=line_no,
                        category="licence",
                        amount=amount,
                        currency_code="EUR",
                        customer_invoice_ref=ref,
                    )
                )
            conn.execute(  # a fetch that was in flight when the old version stopped
                insert(first.provider_invoice_line_staging).values(
                    stage_id="run-in-flight",
                    provider="microsoft",
                    invoice_id=BALANCED,
                    line_no=1,
                    category="licence",
                    amount=Decimal("1.00"),
                    currency_code="EUR",
                )
            )
            conn.execute(
                insert(first.provider_invoice_note).values(
                    provider="microsoft", invoice_id=LEGACY, note="Loaded by the first release", created_at=NOW
                )
            )
    finally:
        engine.dispose()


def test_a_first_release_database_is_upgraded_with_its_rows_then_syncs(
    airflow_db, invoice_db, provider_connections, capsys
):
    url = _url(invoice_db)
    reset_database(url)
    _first_release_database(url)

    assert migrate.main([]) == 0

    assert "is at schema revision " + migrate.head_revision() in capsys.readouterr().out
    assert _schema_differences(url) == []
    assert "provider_invoice_line_staging" not in inspect(invoice_db.engine).get_table_names()
    lines = invoice_db.lines("microsoft", LEGACY)
    assert [(line["line_no"], line["amount"], line["customer_invoice_ref"]) for line in lines] == [
        (1, Decimal("100.100001"), "CUST-2025-001"),
        (2, Decimal("200.2"), "CUST-2025-002"),
        (3, Decimal("0"), None),
    ]
    if invoice_db.engine.dialect.name == "postgresql":  # the lines moved into their invoice's partition
        with invoice_db.engine.connect() as conn:
            held = conn.exec_driver_sql(f"SELECT count(*) FROM {invoice_partition_name('microsoft', LEGACY)}").scalar()
        assert held == 3
    assert invoice_db.get_invoice("microsoft", LEGACY)["header_total"] == Decimal("300.300001")
    assert invoice_db.get_invoice("microsoft", LEGACY)["account"] == "partner_center_default"  # its one account
    assert invoice_db.notes("microsoft", LEGACY)[0]["note"] == "Loaded by the first release"
    with pytest.raises(InvoiceStateError, match="2 line\\(s\\) are already invoiced"):
        invoice_db.deactivate(AttemptKey("microsoft", LEGACY, "d", "r"), reason="after upgrade", author=None)

    dag_run = run_dag("provider_invoice_manual_sync", {"provider": "microsoft", "invoice_id": BALANCED})

    assert {ti.state for ti in dag_run.get_task_instances()} == {"success"}
    invoice = invoice_db.get_invoice("microsoft", BALANCED)
    assert (invoice["status"], invoice["line_count"]) == ("active", MICROSOFT_DEMO[BALANCED].line_count)
    assert len(invoice_db.lines("microsoft", BALANCED)) == MICROSOFT_DEMO[BALANCED].line_count
    assert [a["outcome"] for a in invoice_db.attempts("microsoft", BALANCED)] == ["checksum_error", "activated"]
    with invoice_db.engine.connect() as conn:  # lines are keyed by (provider, invoice_id, line_no) now
        line_table = inspect(conn)
        assert "id" not in {column["name"] for column in line_table.get_columns("provider_invoice_line")}
        key = line_table.get_pk_constraint("provider_invoice_line")["constrained_columns"]
    assert key == ["provider", "invoice_id", "line_no"]


def test_rows_before_accounts_come_from_each_provider_s_default_connection(invoice_db):
    """Revision 0005 on a database with invoices, attempts and listings of both providers."""
    from sqlalchemy import text

    with _database_at(invoice_db, "0004_daily_rated_usage") as (url, engine):
        with engine.begin() as conn:
            for provider, invoice_id in (("microsoft", "G1"), ("synnex", "4100001")):
                conn.execute(
                    text(
                        "INSERT INTO provider_invoice (provider, invoice_id, status, created_at, updated_at) "
                        "VALUES (:p, :i, 'active', :now, :now)"
                    ),
                    {"p": provider, "i": invoice_id, "now": NOW},
                )
                conn.execute(
                    text(
                        "INSERT INTO invoice_sync_attempt (provider, invoice_id, dag_id, run_id, outcome, started_at) "
                        "VALUES (:p, :i, 'd', 'r', 'activated', :now)"
                    ),
                    {"p": provider, "i": invoice_id, "now": NOW},
                )
                conn.execute(
                    text(
                        "INSERT INTO provider_invoice_listing (provider, invoice_id, listed_at) VALUES (:p, :i, :now)"
                    ),
                    {"p": provider, "i": invoice_id, "now": NOW},
                )
        migrate.upgrade(url)

        with engine.connect() as conn:
            accounts = {
                (table, *row)
                for table in ("provider_invoice", "invoice_sync_attempt", "provider_invoice_listing")
                for row in conn.execute(text(f"SELECT provider, account FROM {table}"))
            }
            listing_key = inspect(conn).get_pk_constraint("provider_invoice_listing")["constrained_columns"]
        assert accounts == {
            (table, provider, account)
            for table in ("provider_invoice", "invoice_sync_attempt", "provider_invoice_listing")
            for provider, account in (("microsoft", "partner_center_default"), ("synnex", "streamone_ion_default"))
        }
        assert listing_key == ["provider", "account", "invoice_id"]
        assert _schema_differences(url) == []  # account NOT NULL, as schema.py says


def test_daily_rated_usage_moves_into_its_invoices_partitions_and_back(invoice_db):
    """Revision 0008 on a database with usage of two invoices (PostgreSQL partitions it; SQLite is left as it is),
    and back to 0007."""
    from alembic import command
    from sqlalchemy import text

    from include.sql.schema import provider_invoice_usage_line

    rows = [("G1", 1, "0.0000000000000001"), ("G1", 2, "12345678901234567890.5"), ("G2", 1, "-3")]
    insert_usage = text(
        "INSERT INTO provider_invoice_usage_line (provider, invoice_id, line_no, billing_pre_tax_total, "
        "currency_code) VALUES ('microsoft', :invoice, :line, :amount, 'EUR')"
    )
    read_usage = text(
        "SELECT invoice_id, line_no, billing_pre_tax_total FROM provider_invoice_usage_line ORDER BY 1, 2"
    )

    def held(engine) -> tuple[list, dict]:
        with engine.connect() as conn:
            usage = [(invoice, line, Decimal(str(amount))) for invoice, line, amount in conn.execute(read_usage)]
            if engine.dialect.name != "postgresql":
                return usage, {}
            partitions = {
                invoice: conn.exec_driver_sql(
                    f"SELECT count(*) FROM {invoice_partition_name('microsoft', invoice, provider_invoice_usage_line)}"
                ).scalar()
                for invoice in ("G1", "G2")
            }
            return usage, partitions

    expected = [(invoice, line, Decimal(amount)) for invoice, line, amount in rows]
    with _database_at(invoice_db, "0007_partitioned_lines") as (url, engine):
        with engine.begin() as conn:
            for invoice, line, amount in rows:
                conn.execute(insert_usage, {"invoice": invoice, "line": line, "amount": amount})

        migrate.upgrade(url)

        pg = engine.dialect.name == "postgresql"
        assert held(engine) == (expected, {"G1": 2, "G2": 1} if pg else {})
        assert _schema_differences(url) == []
        with engine.begin() as conn:
            config = migrate.alembic_config()
            config.attributes["connection"] = conn
            command.downgrade(config, "0007_partitioned_lines")
        with engine.connect() as conn:
            kind = (
                pg
                and conn.exec_driver_sql(
                    "SELECT relkind FROM pg_class WHERE oid = 'provider_invoice_usage_line'::regclass"
                ).scalar()
            )
            usage = [(invoice, line, Decimal(str(amount))) for invoice, line, amount in conn.execute(read_usage)]
        assert usage == expected and kind in (False, "r")
