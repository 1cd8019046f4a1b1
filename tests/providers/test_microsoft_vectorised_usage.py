"""The Arrow path maps a daily-rated usage batch exactly as the line-by-line normaliser does, or declines it.

For every batch here, :func:`usage_table` either returns ``None`` (the batch then goes line by line, which
refuses bad data with its sentence) or the very rows :func:`normalize_usage_lines` stages.
"""

from __future__ import annotations

import random
from datetime import date
from decimal import Decimal

import pytest

from include.exact_json import LineBatch
from include.model import InvalidProviderData, InvoiceHeader
from include.providers.microsoft.demo import daily_rated_for, one_time_line
from include.providers.microsoft.usage import normalize_usage_lines
from include.providers.microsoft.vectorised_usage import usage_table
from include.sandbox.server import dumps
from include.sql.schema import USAGE_COLUMNS

INVOICE = "G000000321"
HEADER = InvoiceHeader(provider="microsoft", invoice_id=INVOICE, currency_code="EUR", header_total=Decimal(0))


def usage_lines(count_recon: int = 10, *, pascal: bool = True, seed: int = 3) -> list[dict]:
    """Billed daily-rated usage lines as the Graph export (PascalCase) or the v1 pages (camelCase) spell them."""
    rng = random.Random(seed)
    recon = [one_time_line(rng, INVOICE, date(2026, 3, 1), "usage") for _ in range(count_recon)]
    lines = daily_rated_for(rng, recon, date(2026, 3, 1), days=3)
    return [{key[:1].upper() + key[1:]: value for key, value in line.items()} for line in lines] if pascal else lines


def usage_batch(lines: list[dict], lines_before: int = 0) -> LineBatch:
    content = "".join(f"{dumps(line)}\n" for line in lines).encode()
    return LineBatch.of("one_time/usage_line_items", "Blob 1", lines_before, content)


def _line_by_line(batch: LineBatch, first_line_no: int) -> list[tuple] | str:
    """The normaliser's rows, or the sentence it refuses the batch with."""
    try:
        return [tuple(line) for line in normalize_usage_lines(HEADER, (raw for _, raw in batch.items()), first_line_no)]
    except InvalidProviderData as err:
        return str(err)


def _same_values(rows: list[tuple]) -> list[tuple]:
    """Amounts as NUMERIC(38, 16) holds them (1.5 and 1.5000000000000000 are one value)."""
    return [tuple(v.normalize() if isinstance(v, Decimal) else v for v in row) for row in rows]


def _check(batch: LineBatch, first_line_no: int = 7):
    """The Arrow rows equal the normaliser's rows, or Arrow declined; returns the table (or None)."""
    table = usage_table(HEADER, batch, first_line_no)
    if table is not None:
        expected = _line_by_line(batch, first_line_no)
        assert not isinstance(expected, str), f"Arrow mapped a batch the normaliser refuses: {expected}"
        assert table.column_names == list(USAGE_COLUMNS)
        assert _same_values([tuple(row.values()) for row in table.to_pylist()]) == _same_values(expected)
    return table


@pytest.mark.parametrize("pascal", [True, False], ids=["graph-export", "v1-pages"])
def test_demo_usage_takes_the_arrow_path_with_the_normalisers_rows(pascal):
    table = _check(usage_batch(usage_lines(pascal=pascal)))

    assert table is not None and table.num_rows == 30
    assert table["line_no"].to_pylist() == list(range(7, 37))


def test_blank_and_fallback_keys_currencies_and_exponents_map_alike():
    lines = usage_lines(2)
    for line in lines:  # every line has the keys the first one has
        line |= {"InstanceName": "vm-fallback", "BillingCurrency": "eur"}
    lines[0] |= {"ResourceUri": "", "BillingCurrency": ""}  # the header's currency
    lines[1] |= {"ResourceUri": None, "Quantity": Decimal("1E+2"), "UnitPrice": 3}
    lines[2] |= {"MeterName": 'Käse "Zürich"\n, Ost', "BillingCurrency": "chf", "Quantity": None}
    lines[3] |= {"UsageDate": "2026-03-02", "BillingPreTaxTotal": Decimal("-0.4860316965152490")}
    lines[4] |= {"BillingCurrency": "ß"}  # upper-cased as Python does it (to two letters; Arrow keeps one)
    table = _check(usage_batch(lines))

    assert table is not None
    assert table["currency_code"].to_pylist()[:6] == ["EUR", "EUR", "CHF", "EUR", "SS", "EUR"]
    assert table["resource_uri"].to_pylist()[:2] == ["vm-fallback", "vm-fallback"]


def _declined(lines: list[dict]) -> str:
    """Arrow declines the batch; the sentence the line-by-line path then refuses it with ("" if it stages it)."""
    batch = usage_batch(lines)
    assert usage_table(HEADER, batch, 1) is None
    refused = _line_by_line(batch, 1)
    return refused if isinstance(refused, str) else ""


def test_an_amount_finer_than_sixteen_places_is_declined_and_refused_line_by_line():
    lines = usage_lines(2)
    lines[4]["BillingPreTaxTotal"] = Decimal("0.48603169651524917")

    assert _declined(lines) == (
        f"billingPreTaxTotal of daily-rated usage line 5 of invoice {INVOICE} 0.48603169651524917 has more "
        "than 16 decimal places; amounts are kept to 16 places and are never rounded."
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("Quantity", Decimal("12345678901234567890123")),  # 23 digits: Arrow's decimal128(38, 16) reads it
        ("UnitPrice", Decimal("123456789012345678901234")),
        ("BillingPreTaxTotal", None),
        ("BillingPreTaxTotal", ""),
    ],
)
def test_a_too_wide_or_missing_amount_is_declined_and_refused_line_by_line(field, value):
    lines = usage_lines(2)
    lines[3][field] = value

    assert "daily-rated usage line 4" in _declined(lines)


def test_a_key_spelled_differently_on_a_later_line_is_declined_and_staged_line_by_line():
    lines = usage_lines(2)
    lines[5]["billingPreTaxTotal"] = lines[5].pop("BillingPreTaxTotal")

    assert _declined(lines) == ""


@pytest.mark.parametrize(
    "change",
    [
        {"SubscriptionId": 12345},  # a number where text belongs: the normaliser takes its text
        {"UsageDate": "yesterday"},  # the normaliser's sentence
        {"MeterName": "nul\u0000"},  # PostgreSQL text holds no NUL
        {"CustomerId": "x" * 65},  # longer than the column: the normaliser's check refuses it
        {"BillingCurrency": "euro"},
    ],
)
def test_whatever_arrow_and_the_normaliser_could_disagree_on_is_declined(change):
    lines = usage_lines(2)
    lines[2] |= change

    _declined(lines)
