"""The Arrow path maps a batch exactly as the line-by-line normaliser does, or declines it.

For every batch here, :func:`batch_table` either returns ``None`` (the batch then goes line by line)
or the very rows :func:`normalize_lines` stages; the ordinary export shapes must take the Arrow path,
and every shape where Arrow and the normaliser could disagree must be declined.
"""

from __future__ import annotations

import json
import random
from datetime import date
from decimal import Decimal

import pytest

from include.exact_json import LineBatch
from include.model import InvalidProviderData, InvoiceHeader, to_micros
from include.providers.microsoft.demo import one_time_line
from include.providers.microsoft.normaliser import normalize_lines
from include.providers.microsoft.vectorised import batch_table
from include.sandbox.server import dumps
from include.sql.schema import LINE_COLUMNS

INVOICE = "G000000123"
HEADER = InvoiceHeader(provider="microsoft", invoice_id=INVOICE, currency_code="EUR", header_total=Decimal(0))
KINDS = ("licence", "usage", "reserved_instance", "credit", "marketplace", "remove")
SOURCE = "one_time/billing_line_items"


def _export_lines(count: int = 60) -> list[dict]:
    """Partner Center v2 export lines (PascalCase keys) of every one-time kind."""
    rng = random.Random(5)
    lines = [one_time_line(rng, INVOICE, date(2026, 3, 1), KINDS[i % len(KINDS)]) for i in range(count)]
    return [{key[:1].upper() + key[1:]: value for key, value in line.items()} for line in lines]


def _batch(texts: list[str], source: str = SOURCE) -> LineBatch:
    return LineBatch.of(source, "Blob 1", 0, "".join(f"{text}\n" for text in texts).encode())


def _line_by_line(batch: LineBatch, first_line_no: int) -> list[tuple] | str:
    """The staged rows of the normaliser, or the sentence it refuses the batch with."""
    try:
        return [tuple(line[: len(LINE_COLUMNS)]) for line in normalize_lines(HEADER, batch.items(), first_line_no)]
    except InvalidProviderData as err:
        return str(err)


def _same_values(rows: list[tuple]) -> list[tuple]:
    """Amounts as the NUMERIC column holds them (12.3400 and 12.340000 are one value)."""
    return [tuple(v.normalize() if isinstance(v, Decimal) else v for v in row) for row in rows]


def _check(batch: LineBatch, first_line_no: int = 7):
    """The Arrow rows equal the normaliser's rows, or Arrow declined; returns the table (or None)."""
    table = batch_table(HEADER, batch, first_line_no)
    if table is not None:
        expected = _line_by_line(batch, first_line_no)
        assert not isinstance(expected, str), f"Arrow mapped a batch the normaliser refuses: {expected}"
        assert table.column_names == list(LINE_COLUMNS)
        assert _same_values([tuple(row.values()) for row in table.to_pylist()]) == _same_values(expected)
    return table


def test_an_export_batch_of_every_kind_takes_the_arrow_path_with_the_same_rows():
    batch = _batch([dumps(line) for line in _export_lines()])

    assert _check(batch) is not None


def test_blank_texts_fallback_keys_unicode_exponents_and_date_times_map_alike():
    lines = _export_lines(12)
    for line in lines:  # a key the first line lacks sends the batch line by line: every line has these
        line |= {"CustomerCompanyName": "", "OfferName": "Offer"}
    lines[0] |= {"CustomerName": "", "CustomerCompanyName": 'Müller & Söhne "KG"\n, Zürich'}
    lines[1] |= {"ProductName": "", "OfferName": "", "SubscriptionDescription": "Azure plan"}
    lines[2] |= {"ChargeStartDate": "2026-03-01T00:00:00Z", "Currency": ""}
    lines[3] |= {"TotalForCustomer": Decimal("1E+2"), "CustomerId": " "}
    lines[4] |= {"ReservationOrderId": "", "CreditReasonCode": "", "MeterDescription": ""}
    for line in lines[5:]:
        line.pop("CustomerName", None)  # absent on some lines: blank there, as in the normaliser
    batch = _batch([dumps(line) for line in lines])

    assert _check(batch) is not None


def _with(lines: list[dict], index: int, **changes) -> list[str]:
    changed = [dict(line) for line in lines]
    changed[index].update(changes)
    return [dumps(line) for line in changed]


@pytest.mark.parametrize(
    "texts",
    [
        pytest.param(lambda ls: _with(ls, 3, Currency=None) + ['{"currency": "USD"}'], id="key-in-another-case"),
        pytest.param(lambda ls: _with(ls, 2, CustomerId=12345), id="number-in-a-text-field"),
        pytest.param(lambda ls: _with(ls, 2, ChargeType=True), id="boolean-in-a-text-field"),
        pytest.param(lambda ls: _with(ls, 2, SkuId=["0001"]), id="list-in-a-text-field"),
        pytest.param(lambda ls: _with(ls, 4, TotalForCustomer=None), id="amount-null"),
        pytest.param(lambda ls: _with(ls, 4, TotalForCustomer=Decimal("1.2345678")), id="amount-too-fine"),
        pytest.param(lambda ls: _with(ls, 4, TotalForCustomer=Decimal("1E+30")), id="amount-too-wide"),
        pytest.param(lambda ls: _with(ls, 4, TotalForCustomer="12.50"), id="amount-as-text"),
        pytest.param(lambda ls: _with(ls, 4, TotalForCustomer=" 12.50 "), id="amount-as-padded-text"),
        pytest.param(lambda ls: _with(ls, 4, ChargeEndDate="31.03.2026"), id="unparsable-date"),
        pytest.param(lambda ls: _with(ls, 5, BillingCurrency="USD"), id="fallback-key-only-on-a-later-line"),
        pytest.param(lambda ls: _with(ls, 5, ProductName="nul\x00inside"), id="nul-character"),
        pytest.param(lambda ls: _with(ls, 5, PartnerId="nul\x00inside"), id="nul-in-a-key-nobody-reads"),
        pytest.param(lambda ls: [*_with(ls, 0), "", *_with(ls, 1)], id="blank-line"),
        pytest.param(lambda ls: [*_with(ls, 0), "[1, 2]"], id="not-an-object"),
        pytest.param(lambda ls: [*_with(ls, 0), '{"Curr\\u0065ncy": "USD", "TotalForCustomer": 1}'], id="escaped-key"),
        pytest.param(lambda ls: [d[:-1] + ', "currency": "USD"}' for d in _with(ls, 0)], id="duplicate-spellings"),
        pytest.param(
            lambda ls: [d.replace('"Currency": "EUR"', '"Currency": "EUR", "Currency": "USD"') for d in _with(ls, 0)],
            id="duplicate-key",
        ),
        pytest.param(lambda ls: _with(ls, 1, ProductName="currency"), id="value-equal-to-a-key"),
    ],
)
def test_shapes_where_arrow_could_disagree_are_declined_or_map_alike(texts):
    _check(_batch(texts(_export_lines(8))))


@pytest.mark.parametrize(
    "change",
    [{"TotalForCustomer": None}, {"TotalForCustomer": "twelve"}, {"ChargeEndDate": "31.03.2026"}],
    ids=["amount-missing", "amount-not-a-number", "bad-date"],
)
def test_a_batch_the_normaliser_refuses_is_declined_so_it_refuses_with_its_own_sentence(change):
    batch = _batch(_with(_export_lines(6), 2, **change))

    assert isinstance(_line_by_line(batch, 1), str)
    assert batch_table(HEADER, batch, 1) is None


def test_an_amount_finer_than_the_column_is_declined_and_the_store_refuses_it_line_by_line():
    batch = _batch(_with(_export_lines(6), 2, TotalForCustomer=Decimal("1.2345678")))

    assert batch_table(HEADER, batch, 1) is None
    with pytest.raises(InvalidProviderData, match="more than 6 decimal places"):
        to_micros(_line_by_line(batch, 1)[2][LINE_COLUMNS.index("amount")])


def test_a_number_where_text_belongs_is_declined_and_the_normaliser_keeps_its_text():
    batch = _batch(_with(_export_lines(6), 2, CustomerId=12345))

    assert batch_table(HEADER, batch, 1) is None
    assert _line_by_line(batch, 1)[2][LINE_COLUMNS.index("customer_id")] == "12345"


def test_an_unknown_source_is_declined():
    assert batch_table(HEADER, _batch([json.dumps({"TotalForCustomer": 1})], source="nope/billing"), 1) is None


@pytest.mark.parametrize("key", ["TotalForCustomer", "Subtotal"])
def test_an_amount_wider_than_the_column_is_declined(key):
    """Arrow's reader takes more integer digits than its decimal's precision; the normaliser refuses them."""
    batch = _batch(_with(_export_lines(6), 2, **{key: Decimal("12345678901234567890")}))

    assert batch_table(HEADER, batch, 1) is None
