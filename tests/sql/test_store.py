"""The invoice database on SQLite and PostgreSQL: exact money, idempotent and atomic loads."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import Integer, func, select

from include.model import InvoiceHeader, InvoiceLine
from include.sql.stage import open_stages
from include.sql.store import AttemptKey, InvoiceStateError

PROVIDER, INVOICE = "microsoft", "G000000042"
# 0.1 and 0.2 have no exact binary float: summed as floats these drift, summed exactly they do not.
AMOUNTS = [
    Decimal("0.10"),
    Decimal("0.20"),
    Decimal("-0.30"),
    Decimal("1329.7525"),
    Decimal("0.000001"),
] * 200


def _lines(amounts=AMOUNTS, currency="EUR"):
    categories = ["licence", "usage", "credit", "one_time", "usage"]
    return [
        InvoiceLine(line_no=i, category=categories[(i - 1) % 5], amount=a, currency_code=currency)
        for i, a in enumerate(amounts, start=1)
    ]


TOTAL = sum(AMOUNTS)


def _header(total=TOTAL):
    return InvoiceHeader(provider=PROVIDER, invoice_id=INVOICE, currency_code="EUR", header_total=total)


def _totals(total=TOTAL):
    return {
        "header_total": total,
        "detail_total": total,
        "difference": Decimal(0),
        "tolerance_applied": Decimal(0),
    }


def _load(store, run_id="run-1", amounts=AMOUNTS):
    key = AttemptKey(PROVIDER, INVOICE, "provider_invoice_sync_microsoft", run_id)
    store.start_attempt(key, triggered_by="test")
    store.stage(run_id).fill(_lines(amounts))
    store.load_from_stage(key, _header(sum(amounts)), run_id, totals=_totals(sum(amounts)))
    return key


def test_money_round_trips_and_sums_exactly(invoice_db):
    invoice_db.stage("s1").fill(_lines())
    summary = invoice_db.stage("s1").summary()

    assert sum(summary.breakdown.values()) == sum(AMOUNTS)
    assert summary.breakdown["one_time"] == Decimal("1329.7525") * 200
    assert summary.currency_totals == {"EUR": sum(AMOUNTS)}
    with invoice_db.stage("s1").amounts_view(header_tax_micros=19_000_000, currency_code="EUR") as view:
        with invoice_db.engine.connect() as conn:
            rows = conn.exec_driver_sql(f"SELECT * FROM {view}").all()
    assert len(rows) == len(AMOUNTS) + 1
    assert sum(micros for *_, micros in rows) == int(sum(AMOUNTS) * 10**6) + 19_000_000
    assert (0, "tax", "EUR", 19_000_000) in rows
    invoice_db.stage("s1").drop()


def test_load_is_idempotent(invoice_db):
    _load(invoice_db, "run-1")
    first = invoice_db.lines(PROVIDER, INVOICE)
    _load(invoice_db, "run-2")
    second = invoice_db.lines(PROVIDER, INVOICE)

    assert len(first) == len(second) == len(AMOUNTS)
    assert [(r["line_no"], r["amount"]) for r in first] == [(r["line_no"], r["amount"]) for r in second]
    assert [r["amount"] for r in second] == AMOUNTS
    invoice = invoice_db.get_invoice(PROVIDER, INVOICE)
    assert (invoice["status"], invoice["line_count"], invoice["detail_total"]) == (
        "inactive",
        len(AMOUNTS),
        sum(AMOUNTS),
    )


def test_failure_mid_load_leaves_database_unchanged(invoice_db, monkeypatch):
    _load(invoice_db, "run-1")
    before_lines = invoice_db.lines(PROVIDER, INVOICE)
    before_invoice = invoice_db.get_invoice(PROVIDER, INVOICE)

    key = AttemptKey(PROVIDER, INVOICE, "provider_invoice_sync_microsoft", "run-2")
    invoice_db.start_attempt(key, triggered_by="test")
    new_amounts = [Decimal("9.99")] * 3
    invoice_db.stage("run-2").fill(_lines(new_amounts))

    def crash(*args, **kwargs):  # runs after the old lines were deleted and the new ones inserted
        raise RuntimeError("worker died mid-load")

    monkeypatch.setattr(invoice_db, "_write_invoice", crash)
    with pytest.raises(RuntimeError, match="mid-load"):
        invoice_db.load_from_stage(key, _header(sum(new_amounts)), "run-2", totals=_totals(sum(new_amounts)))

    assert invoice_db.lines(PROVIDER, INVOICE) == before_lines
    assert invoice_db.get_invoice(PROVIDER, INVOICE) == before_invoice
    assert invoice_db.stage("run-2").summary().line_count == 3  # staging kept for a retry
    invoice_db.stage("run-2").drop()


def test_active_invoice_is_never_overwritten(invoice_db):
    key = _load(invoice_db)
    invoice_db.activate(key)
    again = AttemptKey(PROVIDER, INVOICE, "provider_invoice_sync_microsoft", "run-2")
    invoice_db.stage("run-2").fill(_lines())
    with pytest.raises(InvoiceStateError, match="is active; deactivate it"):
        invoice_db.load_from_stage(again, _header(), "run-2", totals=_totals())
    assert invoice_db.get_invoice(PROVIDER, INVOICE)["status"] == "active"


def test_amounts_finer_than_six_places_are_refused_not_rounded(invoice_db):
    from include.model import InvalidProviderData

    with pytest.raises(InvalidProviderData, match="more than 6 decimal places"):
        invoice_db.stage("s1").fill(_lines([Decimal("0.1234567")]))
    assert open_stages(invoice_db.engine) == []  # the refused stage is dropped, not left empty


def test_a_header_without_period_takes_the_one_its_staged_lines_cover(invoice_db):
    from datetime import date

    from plugins.operators.fetch import _with_period_from_lines

    lines = [
        line._replace(charge_start_date=date(2026, 1, day), charge_end_date=date(2026, 1, day + 20))
        for line, day in zip(_lines(AMOUNTS[:3]), (3, 1, 11), strict=True)
    ]
    invoice_db.stage("p1").fill(lines)
    header = _with_period_from_lines(invoice_db, "p1", _header())
    assert (header.billing_period_start, header.billing_period_end) == (date(2026, 1, 1), date(2026, 1, 31))
    import dataclasses

    stated = dataclasses.replace(
        _header(), billing_period_start=date(2025, 12, 1), billing_period_end=date(2025, 12, 31)
    )
    assert _with_period_from_lines(invoice_db, "p1", stated) is stated
    invoice_db.stage("p1").drop()


def test_an_invoice_of_one_account_is_refused_to_another_and_left_as_it_was(invoice_db):
    key = _load(invoice_db)  # from the provider's default account
    before = (invoice_db.get_invoice(PROVIDER, INVOICE), invoice_db.lines(PROVIDER, INVOICE))
    other = AttemptKey(PROVIDER, INVOICE, "provider_invoice_manual_sync", "run-2")

    with pytest.raises(InvoiceStateError) as refused:
        invoice_db.start_attempt(other, account="partner_center_apac")

    assert str(refused.value) == (
        f"Invoice {INVOICE} of {PROVIDER} belongs to account partner_center_default, and account partner_center_apac "
        "lists it too; it is left with partner_center_default: check that the connections partner_center_default "
        "and partner_center_apac are not the same provider account."
    )
    assert [a["run_id"] for a in invoice_db.attempts(PROVIDER, INVOICE)] == [key.run_id]
    assert (invoice_db.get_invoice(PROVIDER, INVOICE), invoice_db.lines(PROVIDER, INVOICE)) == before
    assert before[0]["account"] == "partner_center_default"


def test_a_failure_of_another_account_s_attempt_leaves_the_invoice_alone(invoice_db):
    """Two runs start the same new invoice id from two accounts; the first to write it keeps it."""
    first = AttemptKey(PROVIDER, INVOICE, "provider_invoice_sync_microsoft", "run-emea")
    second = AttemptKey(PROVIDER, INVOICE, "provider_invoice_manual_sync", "run-apac")
    invoice_db.start_attempt(first, account="partner_center_emea")
    invoice_db.start_attempt(second, account="partner_center_apac")
    invoice_db.record_failure(first, _header(), "The fetch of microsoft invoice G000000042 failed: gone.")

    invoice_db.record_failure(second, _header(), "The fetch failed too.")
    invoice_db.stage("run-apac").fill(_lines())
    with pytest.raises(
        InvoiceStateError, match="belongs to account partner_center_emea, and account partner_center_apac"
    ):
        invoice_db.load_from_stage(second, _header(), "run-apac", totals=_totals())

    invoice = invoice_db.get_invoice(PROVIDER, INVOICE)
    assert (invoice["account"], invoice["status"], invoice["status_message"]) == (
        "partner_center_emea",
        "failed",
        "The fetch of microsoft invoice G000000042 failed: gone.",
    )
    assert invoice_db.lines(PROVIDER, INVOICE) == []
    assert {a["run_id"]: a["account"] for a in invoice_db.attempts(PROVIDER, INVOICE)} == {
        "run-emea": "partner_center_emea",
        "run-apac": "partner_center_apac",
    }


def test_sibling_invoices_are_those_of_the_same_account(invoice_db):
    from dataclasses import replace
    from datetime import date

    header = replace(_header(), billing_period_start=date(2026, 5, 1))
    for invoice_id, account in (("G2", "partner_center_emea"), ("G3", "partner_center_apac")):
        key = AttemptKey(PROVIDER, invoice_id, "provider_invoice_sync_microsoft", "run-1")
        invoice_db.start_attempt(key, account=account)
        invoice_db.record_failure(key, replace(header, invoice_id=invoice_id), "The fetch failed.")

    assert [row["invoice_id"] for row in invoice_db.sibling_invoices(header, "partner_center_emea")] == ["G2"]
    assert sorted(row["invoice_id"] for row in invoice_db.sibling_invoices(header)) == ["G2", "G3"]


def _line_tables(store) -> dict[str, dict]:
    """PostgreSQL: every table of the line table's tree, ``name -> {parent, bound, logged, columns, key}``."""
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT c.relname, p.relname, pg_get_expr(c.relpartbound, c.oid), c.relpersistence = 'p', "
            "(SELECT array_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || ' ' || a.attnotnull "
            "  ORDER BY a.attname) FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 "
            "  AND NOT a.attisdropped), "
            "(SELECT pg_get_indexdef(i.indexrelid) ~ '\\(provider, invoice_id, line_no\\)' "
            "  FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) "
            "FROM pg_partition_tree('provider_invoice_line') t JOIN pg_class c ON c.oid = t.relid "
            "LEFT JOIN pg_class p ON p.oid = t.parentrelid"
        ).all()
    return {
        name: {"parent": parent, "bound": bound, "logged": logged, "columns": columns, "key": key}
        for name, parent, bound, logged, columns, key in rows
    }


def _invoice_partitions(store) -> dict[str, dict]:
    """The partitions holding lines (PostgreSQL), or {} on SQLite, which keeps one table."""
    if store.engine.dialect.name != "postgresql":
        return {}
    tables = _line_tables(store)
    return {name: t for name, t in tables.items() if t["parent"] and t["parent"] != "provider_invoice_line"}


def test_a_reload_replaces_the_invoice_partition_with_its_stage(invoice_db):
    """PostgreSQL: the checked stage becomes the invoice's partition, shaped exactly like the line table."""
    from include.sql.partitions import invoice_partition_name

    _load(invoice_db, "run-1")
    new_amounts = [Decimal("9.99"), Decimal("-0.000001")]
    _load(invoice_db, "run-2", amounts=new_amounts)

    assert [line["amount"] for line in invoice_db.lines(PROVIDER, INVOICE)] == new_amounts
    assert invoice_db.get_invoice(PROVIDER, INVOICE)["line_count"] == 2
    assert open_stages(invoice_db.engine) == []
    if invoice_db.engine.dialect.name == "postgresql":
        tables = _line_tables(invoice_db)
        partition = invoice_partition_name(PROVIDER, INVOICE)
        assert list(_invoice_partitions(invoice_db)) == [partition]  # the previous one is gone
        assert tables[partition]["bound"] == f"FOR VALUES IN ('{INVOICE}')"
        assert tables[partition]["logged"] and tables[partition]["key"]
        assert tables[partition]["columns"] == tables["provider_invoice_line"]["columns"]
        with invoice_db.engine.connect() as conn:
            checks = conn.exec_driver_sql(
                f"SELECT count(*) FROM pg_constraint WHERE conrelid = '{partition}'::regclass AND contype = 'c'"
            ).scalar()
        assert checks == 0  # the stage's CHECK served the attach and went


def test_a_stage_shaped_by_its_checksum_is_attached_as_it_is(invoice_db):
    """The checksum shapes the stage while GX is imported (PostgreSQL); a retried checksum and the load leave
    its key as it is, and the attached partition is the same as one shaped by the load."""
    from include.sql.partitions import invoice_partition_name

    key = AttemptKey(PROVIDER, INVOICE, "provider_invoice_sync_microsoft", "run-1")
    invoice_db.start_attempt(key, triggered_by="test")
    invoice_db.stage("run-1").fill(_lines(AMOUNTS))
    stage_key = f"{invoice_db.stage('run-1').table.name}_pkey"

    def key_oid():
        with invoice_db.engine.connect() as conn:
            return conn.execute(select(func.to_regclass(stage_key).cast(Integer))).scalar()

    invoice_db.shape_stage("run-1", PROVIDER, INVOICE)
    shaped = key_oid() if invoice_db.engine.dialect.name == "postgresql" else None
    invoice_db.shape_stage("run-1", PROVIDER, INVOICE)  # a retried checksum

    assert invoice_db.engine.dialect.name != "postgresql" or key_oid() == shaped is not None
    if invoice_db.engine.dialect.name == "postgresql":  # analysed: the checksum's queries are planned for its rows
        with invoice_db.engine.connect() as conn:
            analysed = conn.exec_driver_sql(
                f"SELECT count(*) FROM pg_stats WHERE tablename = '{invoice_db.stage('run-1').table.name}'"
            ).scalar()
        assert analysed > 0
    assert sum(invoice_db.stage("run-1").summary().breakdown.values()) == sum(AMOUNTS)  # still the stage it was
    assert invoice_db.load_from_stage(key, _header(sum(AMOUNTS)), "run-1", totals=_totals(sum(AMOUNTS))) == len(AMOUNTS)
    assert [line["amount"] for line in invoice_db.lines(PROVIDER, INVOICE)] == AMOUNTS
    if invoice_db.engine.dialect.name == "postgresql":
        tables = _line_tables(invoice_db)
        partition = tables[invoice_partition_name(PROVIDER, INVOICE)]
        assert partition["key"] and partition["columns"] == tables["provider_invoice_line"]["columns"]


@pytest.mark.parametrize("invoice_db", ["postgres"], indirect=True)
def test_a_stage_whose_line_numbers_repeat_is_left_for_the_checksum_to_refuse(invoice_db):
    """The key cannot be built; the stage stays as it was (no raw driver error) and GX's uniqueness expectation
    refuses it."""
    lines = _lines(AMOUNTS[:3])
    invoice_db.stage("run-1").fill([*lines, lines[1]])

    assert invoice_db.shape_stage("run-1", PROVIDER, INVOICE) is False

    stage = invoice_db.stage("run-1").table.name
    with invoice_db.engine.connect() as conn:
        columns = {
            row[0]
            for row in conn.exec_driver_sql(
                f"SELECT column_name FROM information_schema.columns WHERE table_name = '{stage}'"
            )
        }
    assert "provider" not in columns and invoice_db.stage("run-1").summary().line_count == 4
    invoice_db.stage("run-1").drop()


def test_a_failed_checksum_leaves_the_loaded_lines_and_their_partition(invoice_db):
    _load(invoice_db, "run-1")
    before, partitions_before = invoice_db.lines(PROVIDER, INVOICE), _invoice_partitions(invoice_db)
    key = AttemptKey(PROVIDER, INVOICE, "provider_invoice_sync_microsoft", "run-2")
    invoice_db.start_attempt(key, triggered_by="test")
    invoice_db.stage("run-2").fill(_lines([Decimal("5")]))

    invoice_db.record_checksum_error(
        key, _header(), "run-2", totals=_totals(), line_count=1, message="Checksum failed.", diagnostics={}
    )

    assert invoice_db.lines(PROVIDER, INVOICE) == before
    assert _invoice_partitions(invoice_db) == partitions_before
    assert open_stages(invoice_db.engine) == []


def test_lines_invoiced_to_customers_are_never_replaced(invoice_db):
    from sqlalchemy import update

    from include.sql.schema import provider_invoice_line as line

    _load(invoice_db, "run-1")
    with invoice_db.engine.begin() as conn:
        conn.execute(
            update(line).where(line.c.invoice_id == INVOICE, line.c.line_no == 2).values(customer_invoice_ref="C-1")
        )
    before = invoice_db.lines(PROVIDER, INVOICE)

    with pytest.raises(InvoiceStateError, match=r"has 1 line\(s\) already invoiced to customers"):
        _load(invoice_db, "run-2", amounts=[Decimal("1")])

    assert invoice_db.lines(PROVIDER, INVOICE) == before
    assert before[1]["customer_invoice_ref"] == "C-1"
    assert open_stages(invoice_db.engine) == []  # the refused load dropped its stage


def test_concurrent_loads_of_one_provider_both_land(invoice_db, monkeypatch):
    """Two invoices of one provider loaded at once: both shape their stage, then queue for the provider's
    partition (on PostgreSQL held at that point by a barrier, where reading first would deadlock)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from include.sql import partitions

    both_shaped = threading.Barrier(2, timeout=60)
    shape = partitions.shape_stage

    def shape_then_wait(*args):
        count = shape(*args)
        both_shaped.wait()
        return count

    monkeypatch.setattr(partitions, "shape_stage", shape_then_wait)
    invoices = {"G000000042": [Decimal("1.5")] * 3, "G000000043": [Decimal("-2")] * 4}
    for invoice_id in invoices:  # a previous load of each, so both also drop a partition
        key = AttemptKey(PROVIDER, invoice_id, "provider_invoice_sync_microsoft", "run-0")
        invoice_db.stage(f"{invoice_id}-0").fill(_lines([Decimal(1)]))
        header = InvoiceHeader(provider=PROVIDER, invoice_id=invoice_id, currency_code="EUR", header_total=Decimal(1))
        with monkeypatch.context() as unbarred:
            unbarred.setattr(partitions, "shape_stage", shape)
            invoice_db.load_from_stage(key, header, f"{invoice_id}-0", totals=_totals(Decimal(1)))

    for invoice_id, amounts in invoices.items():
        invoice_db.stage(invoice_id).fill(_lines(amounts))

    def load(invoice_id: str) -> int:
        amounts = invoices[invoice_id]
        key = AttemptKey(PROVIDER, invoice_id, "provider_invoice_sync_microsoft", "run-1")
        header = InvoiceHeader(provider=PROVIDER, invoice_id=invoice_id, currency_code="EUR", header_total=sum(amounts))
        return invoice_db.load_from_stage(key, header, invoice_id, totals=_totals(sum(amounts)))

    if invoice_db.engine.dialect.name != "postgresql":  # SQLite's single writer takes them in turn
        both_shaped = threading.Barrier(1)
    with ThreadPoolExecutor(2) as pool:
        loaded = list(pool.map(load, invoices))

    assert loaded == [3, 4]
    for invoice_id, amounts in invoices.items():
        assert [line["amount"] for line in invoice_db.lines(PROVIDER, invoice_id)] == amounts
    assert len(_invoice_partitions(invoice_db)) == (2 if invoice_db.engine.dialect.name == "postgresql" else 0)
    assert open_stages(invoice_db.engine) == []


@pytest.mark.parametrize("invoice_db", ["postgres"], indirect=True)
def test_a_stage_an_earlier_release_left_unlogged_and_unbounded_still_loads(invoice_db):
    """A fetch staged before an upgrade (UNLOGGED, text columns unbounded) is shaped, made logged and attached."""
    from include.sql.partitions import invoice_partition_name
    from include.sql.schema import LINE_TEXT_LIMITS, line_stage_table

    key = AttemptKey(PROVIDER, INVOICE, "provider_invoice_sync_microsoft", "before-upgrade")
    invoice_db.start_attempt(key, triggered_by="test")
    stage = invoice_db.stage("before-upgrade")
    stage.fill(_lines())
    name = line_stage_table("before-upgrade").name
    with invoice_db.engine.begin() as conn:
        conn.exec_driver_sql(f"ALTER TABLE {name} SET UNLOGGED")
        for column in LINE_TEXT_LIMITS:
            conn.exec_driver_sql(f"ALTER TABLE {name} ALTER COLUMN {column} TYPE TEXT")

    invoice_db.load_from_stage(key, _header(), "before-upgrade", totals=_totals())

    assert [line["amount"] for line in invoice_db.lines(PROVIDER, INVOICE)] == AMOUNTS
    tables = _line_tables(invoice_db)
    partition = tables[invoice_partition_name(PROVIDER, INVOICE)]
    assert partition["logged"] and partition["key"]
    assert partition["columns"] == tables["provider_invoice_line"]["columns"]
