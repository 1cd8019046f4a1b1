"""Daily-rated usage in the invoice database, on SQLite and PostgreSQL: exact at 16 decimals, summed exactly."""

from __future__ import annotations

import random
import re
from datetime import date
from decimal import Decimal

import pytest

from include.daily_usage import UsageLine
from include.model import InvalidProviderData, InvoiceHeader, InvoiceLine
from include.providers.microsoft.usage import AMOUNT_FIELDS, normalize_usage_lines
from include.sql.stage import open_stages
from include.sql.store import AttemptKey
from include.sql.usage import (
    append_usage_table,
    compare_staged_usage,
    create_usage_stage,
    has_usage_stage,
    mismatches,
    record_mismatches,
    stage_usage,
    usage_lines,
)

D = Decimal
HEADER = InvoiceHeader("microsoft", "G1", "EUR", D("0"))


def _usage(amounts: list[Decimal], subscription: str = "sub-1", day: date = date(2026, 1, 31)) -> list[UsageLine]:
    return [
        UsageLine(n, "cust-1", subscription, day, "DZH318Z0BPS6", "m", "D2 v3", "VM", None, D("1"), None, amount, "EUR")
        for n, amount in enumerate(amounts, start=1)
    ]


def _recon(pre_tax: list[Decimal], subscription: str = "sub-1") -> list[InvoiceLine]:
    return [
        InvoiceLine(
            line_no=n,
            category="usage",
            amount=amount,
            currency_code="EUR",
            customer_id="cust-1",
            subscription_id=subscription,
            source="one_time/billing_line_items",
            pre_tax_amount=amount,
        )
        for n, amount in enumerate(pre_tax, start=1)
    ]


def fifteen_digit_amounts(count: int, seed: int = 7) -> list[Decimal]:
    """Daily values of 15 significant digits, like Microsoft's 0.486031696515249."""
    rng = random.Random(seed)
    return [D(rng.randint(10**14, 10**15 - 1)).scaleb(-rng.randint(13, 15)) for _ in range(count)]


def test_sums_of_15_significant_digit_daily_values_are_exact(invoice_db):
    amounts = fifteen_digit_amounts(3000)
    exact = sum(amounts, D(0))
    assert D(repr(sum(float(a) for a in amounts))) != exact  # a float sum would not be
    invoice_db.stage("u1").fill(_recon([D("1.00")]))
    assert stage_usage(invoice_db.engine, "u1", _usage(amounts)) == len(amounts)

    [row] = compare_staged_usage(invoice_db.engine, "u1")
    assert row.daily_rated_pre_tax == exact and row.daily_rated_lines == len(amounts)
    assert row.difference == D("1.00") - exact and row.reconciliation_pre_tax == D("1.00")
    invoice_db.stage("u1").drop()
    assert open_stages(invoice_db.engine) == []  # both the lines' and the usage's stage


def test_amounts_beyond_a_64_bit_integer_at_16_decimals_stay_exact(invoice_db):
    big = [D("123456789012.1234567890123456"), D("0.0000000000000001"), D("-923.0000000000000001")]
    invoice_db.stage("u2").fill(_recon([D("123456788089.12")]))
    stage_usage(invoice_db.engine, "u2", _usage(big))
    [row] = compare_staged_usage(invoice_db.engine, "u2")
    assert row.daily_rated_pre_tax == sum(big, D(0)) == D("123456788089.1234567890123456")
    invoice_db.stage("u2").drop()


@pytest.mark.parametrize("invoice_db", ["postgres"], indirect=True)
def test_an_arrow_table_appended_to_the_usage_stage_holds_what_the_lines_hold(invoice_db):
    import pyarrow as pa
    from sqlalchemy import select

    from include.sql.schema import USAGE_COLUMNS, usage_stage_table

    lines = _usage([D("123456789012.1234567890123456"), D("-0.0000000000000001"), D("7")])
    lines[1] = lines[1]._replace(customer_id=None, resource_uri='/vm "a",\nb', quantity=None)
    stage_usage(invoice_db.engine, "copied-lines", lines)
    create_usage_stage(invoice_db.engine, "copied-table")
    types = {"line_no": pa.int64(), "usage_date": pa.date32()} | dict.fromkeys(AMOUNT_FIELDS, pa.decimal128(38, 16))
    schema = pa.schema((column, types.get(column, pa.string())) for column in USAGE_COLUMNS)
    table = pa.Table.from_pylist([line._asdict() for line in lines], schema=schema)
    assert append_usage_table(invoice_db.engine, "copied-table", table) == 3

    def staged(stage_id):
        stage = usage_stage_table(stage_id)
        with invoice_db.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(select(stage).order_by(stage.c.line_no))]

    assert staged("copied-table") == staged("copied-lines") and staged("copied-lines")[1][1] is None
    invoice_db.stage("copied-lines").drop()
    invoice_db.stage("copied-table").drop()


def test_usage_that_fails_to_stage_leaves_no_usage_stage(invoice_db):
    bad = _usage([D("1"), D("0.00000000000000001")])
    with pytest.raises(InvalidProviderData, match="billing_pre_tax_total of daily-rated usage line 2"):
        stage_usage(invoice_db.engine, "u-bad", bad)
    assert not has_usage_stage(invoice_db.engine, "u-bad")


def test_finer_than_16_decimals_is_refused_with_one_sentence():
    raw = {"subscriptionId": "s", "usageDate": "2026-01-02T00:00:00Z", "billingPreTaxTotal": D("0.00000000000000001")}
    with pytest.raises(
        InvalidProviderData,
        match="usage line 1 of invoice G1 1E-17 has more than 16 decimal places; amounts are kept to 16 places",
    ):
        list(normalize_usage_lines(HEADER, [raw]))
    with pytest.raises(
        InvalidProviderData, match="billingPreTaxTotal of daily-rated usage line 1 of invoice G1 is missing"
    ):
        list(normalize_usage_lines(HEADER, [{"subscriptionId": "s"}]))


def test_v1_and_export_spellings_read_alike():
    camel = {
        "customerId": "c",
        "subscriptionId": "s",
        "usageDate": "2026-01-02T00:00:00Z",
        "meterId": "m",
        "meterName": "n",
        "quantity": D("0.5"),
        "unitPrice": D("0.0209496384791679"),
        "billingPreTaxTotal": D("0.486031696515249"),
        "billingCurrency": "eur",
    }
    pascal = {key[:1].upper() + key[1:]: value for key, value in camel.items()}
    first, second = normalize_usage_lines(HEADER, [camel, pascal])
    assert first._replace(line_no=2) == second
    assert (first.usage_date, first.billing_pre_tax_total, first.currency_code) == (
        date(2026, 1, 2),
        D("0.486031696515249"),
        "EUR",
    )


def test_subscriptions_on_one_side_only_and_the_load(invoice_db):
    invoice_db.stage("u3").fill(
        [*_recon([D("10.00")], "only-recon"), _recon([D("5.00")], "both")[0]._replace(line_no=2)]
    )
    stage_usage(
        invoice_db.engine, "u3", [*_usage([D("5")], "both"), _usage([D("2.5")], "only-daily")[0]._replace(line_no=2)]
    )
    rows = {row.subscription_id: row for row in compare_staged_usage(invoice_db.engine, "u3")}
    assert rows["only-recon"].difference == D("10.00") and rows["only-recon"].last_usage_date is None
    assert rows["only-daily"].difference == D("-2.5") and rows["both"].difference == 0

    key = AttemptKey("microsoft", "G1", "provider_invoice_sync_microsoft", "r1")
    with invoice_db.engine.begin() as conn:
        assert record_mismatches(conn, "microsoft", "G1", "r1", rows.values()) == 2
    assert [r["subscription_id"] for r in mismatches(invoice_db.engine, "microsoft", "G1")] == [
        "only-recon",
        "only-daily",
    ]

    invoice_db.start_attempt(key)
    totals = {"header_total": D("15"), "detail_total": D("15"), "difference": D(0), "tolerance_applied": D(1)}
    invoice_db.load_from_stage(key, HEADER, "u3", totals=totals)
    loaded = usage_lines(invoice_db.engine, "microsoft", "G1")
    assert sorted((u["subscription_id"], u["billing_pre_tax_total"]) for u in loaded) == [
        ("both", D("5")),
        ("only-daily", D("2.5")),
    ]
    assert open_stages(invoice_db.engine) == []  # the load dropped both stages


def _usage_partitions(store) -> dict[str, int]:
    """PostgreSQL: each invoice partition of the usage table and its rows ({} on SQLite, which keeps one table)."""
    if store.engine.dialect.name != "postgresql":
        return {}
    with store.engine.connect() as conn:
        names = conn.exec_driver_sql(
            "SELECT c.relname FROM pg_partition_tree('provider_invoice_usage_line') t "
            "JOIN pg_class c ON c.oid = t.relid WHERE t.isleaf"
        ).scalars()
        return {name: conn.exec_driver_sql(f"SELECT count(*) FROM {name}").scalar() for name in names}


def test_a_reload_replaces_the_invoice_s_usage_and_one_without_usage_removes_it(invoice_db):
    """PostgreSQL: the usage stage becomes the invoice's usage partition (no copy), the previous one goes."""
    from include.sql.partitions import invoice_partition_name
    from include.sql.schema import provider_invoice_usage_line

    totals = {"header_total": D("5"), "detail_total": D("5"), "difference": D(0), "tolerance_applied": D(0)}

    def load(run_id: str, usage: list[UsageLine] | None) -> list[tuple]:
        key = AttemptKey("microsoft", "G1", "provider_invoice_sync_microsoft", run_id)
        invoice_db.start_attempt(key)
        invoice_db.stage(run_id).fill(_recon([D("5.00")]))
        if usage is not None:
            stage_usage(invoice_db.engine, run_id, usage)
        invoice_db.load_from_stage(key, HEADER, run_id, totals=totals)
        return [(u["line_no"], u["billing_pre_tax_total"]) for u in usage_lines(invoice_db.engine, "microsoft", "G1")]

    partition = invoice_partition_name("microsoft", "G1", provider_invoice_usage_line)
    pg = invoice_db.engine.dialect.name == "postgresql"
    other = AttemptKey("microsoft", "G2", "provider_invoice_sync_microsoft", "r0")  # another invoice's usage stays
    invoice_db.start_attempt(other)
    invoice_db.stage("r0").fill(_recon([D("1")]))
    stage_usage(invoice_db.engine, "r0", _usage([D("1")]))
    invoice_db.load_from_stage(other, InvoiceHeader("microsoft", "G2", "EUR", D("1")), "r0", totals=totals)

    assert load("r1", _usage([D("2"), D("3")])) == [(1, D("2")), (2, D("3"))]
    partitions_then = _usage_partitions(invoice_db)
    assert load("r2", _usage([D("0.0000000000000001")])) == [(1, D("0.0000000000000001"))]
    assert not pg or (partitions_then[partition], _usage_partitions(invoice_db)[partition]) == (2, 1)
    assert load("r3", None) == []
    assert partition not in _usage_partitions(invoice_db)
    assert len(usage_lines(invoice_db.engine, "microsoft", "G2")) == 1 and len(_usage_partitions(invoice_db)) == pg
    assert open_stages(invoice_db.engine) == []


def test_staged_usage_that_repeats_a_line_number_is_refused_in_one_sentence_and_dropped(invoice_db):
    """Only a fault of the staging can do it (the usage suite does not check line numbers): the load is refused
    with our sentence, not the key's driver error, the stage is dropped and nothing changes."""
    from include.sql.store import InvoiceStateError

    key = AttemptKey("microsoft", "G1", "provider_invoice_sync_microsoft", "r1")
    invoice_db.start_attempt(key)
    invoice_db.stage("r1").fill(_recon([D("5.00")]))
    stage_usage(invoice_db.engine, "r1", [*_usage([D("2")]), *_usage([D("3")])])  # both line 1
    totals = {"header_total": D("5"), "detail_total": D("5"), "difference": D(0), "tolerance_applied": D(0)}

    with pytest.raises(InvoiceStateError) as refused:
        invoice_db.load_from_stage(key, HEADER, "r1", totals=totals)

    assert str(refused.value) == (
        "The staged lines or daily-rated usage of invoice G1 of microsoft repeat a line number, so they cannot "
        "be loaded; sync the invoice again."
    )
    assert open_stages(invoice_db.engine) == [] and invoice_db.get_invoice("microsoft", "G1") is None
    assert usage_lines(invoice_db.engine, "microsoft", "G1") == []


def test_a_provider_without_usage_gets_no_usage_partition(invoice_db):
    key = AttemptKey("synnex", "4100001", "provider_invoice_sync_synnex", "r1")
    invoice_db.start_attempt(key)
    invoice_db.stage("r1").fill(_recon([D("5.00")]))
    totals = {"header_total": D("5"), "detail_total": D("5"), "difference": D(0), "tolerance_applied": D(0)}
    header = InvoiceHeader("synnex", "4100001", "EUR", D("5"))

    assert invoice_db.load_from_stage(key, header, "r1", totals=totals) == 1
    if invoice_db.engine.dialect.name == "postgresql":
        with invoice_db.engine.connect() as conn:
            tree = conn.exec_driver_sql("SELECT count(*) FROM pg_partition_tree('provider_invoice_usage_line')")
            assert tree.scalar() == 1  # the table alone


def test_metered_marketplace_lines_are_compared_saas_lines_are_not(invoice_db):
    """Daily-rated usage carries Azure Marketplace meters but no marketplace SaaS: a third-party line is compared
    when its product is in the daily-rated usage."""
    azure, metered, saas = "DZH318Z0BPS6", "DZH318Z0MTRD", "DZH318Z0BXWC"
    (usage_line,) = _recon([D("10.00")])
    recon = [
        usage_line._replace(product_id=azure),
        usage_line._replace(line_no=2, category="marketplace", product_id=metered, pre_tax_amount=D("3.41")),
        usage_line._replace(line_no=3, category="marketplace", product_id=saas, pre_tax_amount=D("820.00")),
        usage_line._replace(line_no=4, category="marketplace", product_id=metered, subscription_id="other-sub"),
    ]
    invoice_db.stage("u4").fill(recon)
    daily = [
        *_usage([D("6.5"), D("3.5")]),
        *(line._replace(line_no=n, product_id=metered) for n, line in enumerate(_usage([D("3.405"), D("0.005")]), 3)),
    ]
    stage_usage(invoice_db.engine, "u4", daily)

    rows = {row.subscription_id: row for row in compare_staged_usage(invoice_db.engine, "u4")}
    assert (rows["sub-1"].reconciliation_pre_tax, rows["sub-1"].reconciliation_lines) == (D("13.41"), 2)
    assert rows["sub-1"].daily_rated_pre_tax == D("13.41") and rows["sub-1"].difference == 0
    # the product is metered (its meter is in the daily-rated set): a subscription without its daily rows differs
    assert (rows["other-sub"].difference, rows["other-sub"].last_usage_date) == (D("10.00"), None)
    invoice_db.stage("u4").drop()


@pytest.mark.parametrize("invoice_db", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_the_metered_marketplace_comparison_never_rescans_the_daily_rated_usage(invoice_db):
    """With more daily-rated rows than PostgreSQL expects to fit in ``work_mem`` (10M lines' 2M rows at the
    default 4MB), the products must still be hashed once, never rescanned for every marketplace line."""
    from sqlalchemy import event

    metered = "DZH318Z0MTRD"
    (usage_line,) = _recon([D("10.00")])
    invoice_db.stage("u5").fill(
        [usage_line, usage_line._replace(line_no=2, category="marketplace", product_id=metered)]
    )
    stage_usage(invoice_db.engine, "u5", [line._replace(product_id=metered) for line in _usage([D("0.01")] * 20000)])
    queries = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if "GROUP BY" in statement and "invoice_line_stage_" in statement:
            queries.append((statement, parameters))

    event.listen(invoice_db.engine, "before_cursor_execute", capture)
    try:
        [row] = compare_staged_usage(invoice_db.engine, "u5")
    finally:
        event.remove(invoice_db.engine, "before_cursor_execute", capture)
    assert (row.reconciliation_lines, row.daily_rated_lines, row.difference) == (2, 20000, D("-180"))

    [(statement, parameters)] = queries
    with invoice_db.engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL work_mem = '64kB'")  # the smallest: 20,000 rows are far beyond it
        conn.exec_driver_sql("SET LOCAL hash_mem_multiplier = 1")
        plan = "\n".join(line for (line,) in conn.exec_driver_sql(f"EXPLAIN {statement}", parameters))
    assert not re.search(r"\(SubPlan \d+\)", plan), plan  # a subplan run per line ("hashed SubPlan" is once)
    invoice_db.stage("u5").drop()
