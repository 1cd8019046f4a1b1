"""The stage: every write refuses a text longer than its column, alike on both databases and both paths."""

from __future__ import annotations

from decimal import Decimal

import pytest

from include.model import InvalidProviderData, InvoiceLine
from include.sql.stage import open_stages

SENTENCE = "Line {} has a customer_name of 300 characters; the database holds at most 255."


def test_a_too_long_text_is_refused_line_by_line_and_nothing_is_staged(invoice_db):
    lines = [InvoiceLine(n, "licence", Decimal("1.5"), "EUR", customer_name="Contoso") for n in range(1, 4)]
    lines[1] = lines[1]._replace(customer_name="é" * 300)  # characters, not bytes, are what a column holds

    with pytest.raises(InvalidProviderData) as refused:
        invoice_db.stage("long").fill(lines)
    assert str(refused.value) == SENTENCE.format(2)
    assert open_stages(invoice_db.engine) == []


@pytest.mark.parametrize("invoice_db", ["postgres"], indirect=True)
def test_a_too_long_text_in_an_arrow_batch_is_refused_before_the_copy(invoice_db):
    import pyarrow as pa

    from include.sql.schema import LINE_COLUMNS, LINE_TEXT_LIMITS

    stage = invoice_db.stage("arrow")
    stage.create()
    rows = 3
    columns = {name: pa.nulls(rows, pa.string()) for name in LINE_COLUMNS}
    columns.update(
        line_no=pa.array([10, 11, 12], pa.int64()),
        category=pa.array(["licence"] * rows),
        amount=pa.array([Decimal("1.5")] * rows, pa.decimal128(24, 6)),
        pre_tax_amount=pa.nulls(rows, pa.decimal128(24, 6)),
        currency_code=pa.array(["EUR"] * rows),
        charge_start_date=pa.nulls(rows, pa.date32()),
        charge_end_date=pa.nulls(rows, pa.date32()),
        customer_name=pa.array(["Contoso", "é" * 300, "é" * 300]),
    )
    table = pa.table([columns[name] for name in LINE_COLUMNS], names=list(LINE_COLUMNS))
    assert LINE_TEXT_LIMITS["customer_name"] == 255

    with pytest.raises(InvalidProviderData) as refused:
        stage.append_table(table)
    assert str(refused.value) == SENTENCE.format(11)
    assert stage.summary().line_count == 0
    stage.drop()
