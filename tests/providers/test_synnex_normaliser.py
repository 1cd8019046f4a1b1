"""The TD SYNNEX normaliser: categories, exact amounts, headers, and the demo invoices' exact checksums."""

from __future__ import annotations

import random
from datetime import date
from decimal import Decimal

import pytest

from include.model import InvalidProviderData, detail_total
from include.providers.synnex.demo import (
    EXPECTED as SYNNEX_DEMO,
)
from include.providers.synnex.demo import (
    SYNNEX_DEMO_HEADER_TAX,
    synnex_demo_invoices,
    synnex_invoice,
    synnex_line,
)
from include.providers.synnex.normaliser import normalize_header, normalize_lines

START = date(2026, 1, 1)
RAW_HEADER = synnex_invoice("4200001", START, Decimal("1000.10"), Decimal("190.02"))
HEADER = normalize_header(RAW_HEADER)


def one(raw: dict):
    (line,) = normalize_lines(HEADER, [("ion/invoice_lines", raw)])
    return line


def test_the_header_maps_total_tax_currency_period_and_id():
    assert HEADER.provider == "synnex" and HEADER.invoice_id == "4200001"
    assert (HEADER.header_total, HEADER.header_tax) == (Decimal("1190.12"), Decimal("190.02"))
    assert HEADER.currency_code == "EUR"
    assert (HEADER.billing_period_start, HEADER.billing_period_end) == (START, date(2026, 1, 31))
    assert HEADER.invoice_date == date(2026, 2, 8)


def test_a_header_without_tax_has_no_header_tax():
    raw = {key: value for key, value in RAW_HEADER.items() if key != "taxTotal"}
    assert normalize_header(raw).header_tax is None


def test_the_fingerprint_follows_the_money_not_its_spelling():
    assert normalize_header(RAW_HEADER | {"total": "1190.120"}).fingerprint == HEADER.fingerprint
    assert normalize_header(RAW_HEADER | {"status": "paid"}).fingerprint == HEADER.fingerprint
    assert normalize_header(RAW_HEADER | {"total": Decimal("1190.13")}).fingerprint != HEADER.fingerprint
    assert normalize_header(RAW_HEADER | {"taxTotal": Decimal("0")}).fingerprint != HEADER.fingerprint


def test_a_header_without_id_or_total_is_refused():
    with pytest.raises(InvalidProviderData, match="without an id"):
        normalize_header(RAW_HEADER | {"id": None})
    with pytest.raises(InvalidProviderData, match="total of invoice 4200001 is None"):
        normalize_header(RAW_HEADER | {"total": None})


@pytest.mark.parametrize(
    ("charge_type", "category"),
    [
        ("license", "licence"),
        ("usage", "usage"),
        ("marketplace", "marketplace"),
        ("reservedInstance", "reserved_instance"),
        ("customerCredit", "credit"),
    ],
)
def test_charge_types_map_to_categories_at_the_seller_cost(charge_type, category):
    raw = synnex_line(random.Random(1), "4200001", START, charge_type)
    line = one(raw)
    assert (line.category, line.amount, line.line_no) == (category, raw["sellerCost"], 1)
    assert line.charge_type == charge_type and line.charge_start_date == START
    assert line.customer_id == raw["customerId"] and line.description == raw["productName"]


@pytest.mark.parametrize(
    ("spelling", "category"), [("oneTime", "one_time"), ("ONE_TIME", "one_time"), ("Adjustment", "adjustment")]
)
def test_charge_types_match_case_insensitively(spelling, category):
    assert one(synnex_line(random.Random(2), "4200001", START) | {"chargeType": spelling}).category == category


def test_customer_credits_are_negative_and_keep_their_ion_ids():
    raw = synnex_line(random.Random(3), "4200001", START, "customerCredit")
    line = one(raw)
    assert line.amount < 0 and line.amount == raw["sellerCost"]
    assert line.extra["line_id"] == str(raw["id"]) and line.extra["customer_cost"] == str(raw["customerCost"])


def test_an_unknown_charge_type_is_refused_not_guessed():
    raw = synnex_line(random.Random(4), "4200001", START) | {"chargeType": "azureMarketplaceFee"}
    with pytest.raises(InvalidProviderData, match=r"Line 1 of invoice 4200001 has chargeType 'azureMarketplaceFee'"):
        one(raw)


def test_amounts_as_strings_parse_exactly_and_floats_are_refused():
    raw = synnex_line(random.Random(5), "4200001", START)
    assert one(raw | {"sellerCost": "0.1000"}).amount == Decimal("0.1000")
    with pytest.raises(InvalidProviderData, match="binary float"):
        one(raw | {"sellerCost": 0.1})
    with pytest.raises(InvalidProviderData, match="sellerCost of line 1 of invoice 4200001 is None"):
        one(raw | {"sellerCost": None})


def test_a_line_without_currency_takes_the_invoice_currency():
    assert one(synnex_line(random.Random(6), "4200001", START) | {"currency": ""}).currency_code == "EUR"


@pytest.mark.parametrize(("tax", "expectations"), [("lines", SYNNEX_DEMO), ("header", SYNNEX_DEMO_HEADER_TAX)])
def test_demo_invoices_have_their_exact_differences(tax, expectations):
    for demo in synnex_demo_invoices():
        header = normalize_header(demo.invoice)
        lines = list(normalize_lines(header, (("ion/invoice_lines", raw) for raw in demo.lines)))
        counted_tax = header.header_tax if tax == "header" else Decimal(0)
        expected = expectations[header.invoice_id]
        assert header.header_total - detail_total(lines) - counted_tax == expected.difference, header.invoice_id
        assert len(lines) == expected.line_count


def test_the_demo_covers_every_case_the_brief_names():
    by_note = {e.note: (e.status, SYNNEX_DEMO_HEADER_TAX[i].status) for i, e in SYNNEX_DEMO.items()}
    assert sorted(by_note.values()) == [
        ("active", "active"),
        ("active", "active"),
        ("checksum_error", "active"),  # header tax: fixed by {"synnex": {"tax": "header"}}
        ("checksum_error", "checksum_error"),  # Azure Marketplace fees not in the lines
    ]
    tax_invoice = next(d for d in synnex_demo_invoices() if d.invoice["taxTotal"])
    assert SYNNEX_DEMO[str(tax_invoice.invoice["id"])].difference == tax_invoice.invoice["taxTotal"]
