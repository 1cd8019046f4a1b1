"""The Microsoft normaliser: amounts, categories, headers, and the demo invoices' exact checksums."""

from __future__ import annotations

import random
from datetime import date
from decimal import Decimal

import pytest

from include.model import InvalidProviderData, detail_total
from include.providers.microsoft.demo import (
    EXPECTED as MICROSOFT_DEMO,
)
from include.providers.microsoft.demo import (
    azure_line,
    microsoft_demo_invoices,
    microsoft_invoice,
    office_line,
    one_time_line,
)
from include.providers.microsoft.normaliser import normalize_header, normalize_lines

START = date(2026, 1, 1)
HEADER = normalize_header(microsoft_invoice("G1", START, Decimal("0"), [("one_time", "billing_line_items")]))


def one(source: str, raw: dict):
    (line,) = normalize_lines(HEADER, [(source, raw)])
    return line


def pascal(raw: dict) -> dict:
    return {key[:1].upper() + key[1:]: value for key, value in raw.items()}


def test_legacy_office_is_licence_at_total_for_customer():
    raw = office_line(random.Random(1), "D1", START)
    line = one("office/billing_line_items", raw)
    assert (line.category, line.amount, line.line_no) == ("licence", raw["totalForCustomer"], 1)
    assert line.amount == raw["subtotal"] + raw["tax"]
    assert line.customer_id == raw["customerId"] and line.charge_start_date == START


def test_legacy_azure_is_usage_at_post_tax_total():
    raw = azure_line(random.Random(1), "D1", START)
    line = one("azure/billing_line_items", raw)
    assert (line.category, line.amount) == ("usage", raw["postTaxTotal"])
    assert line.customer_name == raw["customerCompanyName"]


@pytest.mark.parametrize(
    ("kind", "category"),
    [
        ("licence", "licence"),
        ("remove", "licence"),
        ("usage", "usage"),
        ("reserved_instance", "reserved_instance"),
        ("credit", "credit"),
        ("marketplace", "marketplace"),
    ],
)
def test_one_time_categories_in_camel_and_pascal_case(kind, category):
    raw = one_time_line(random.Random(2), "G1", START, kind)
    for variant in (raw, pascal(raw)):
        line = one("one_time/billing_line_items", variant)
        assert (line.category, line.amount) == (category, raw["totalForCustomer"])


def test_one_time_without_commitment_or_meter_is_one_time():
    raw = one_time_line(random.Random(2), "G1", START) | {"termAndBillingCycle": "", "productId": "X"}
    assert one("one_time/billing_line_items", raw).category == "one_time"


def test_credits_are_negative_and_keep_their_reason():
    line = one("one_time/billing_line_items", one_time_line(random.Random(3), "G1", START, "credit"))
    assert line.amount < 0 and line.extra["credit_reason_code"] == "Azure consumption credit"


def test_amounts_as_strings_parse_exactly_and_floats_are_refused():
    raw = one_time_line(random.Random(4), "G1", START)
    assert one("one_time/billing_line_items", raw | {"totalForCustomer": "0.1000"}).amount == Decimal("0.1000")
    with pytest.raises(InvalidProviderData, match="binary float"):
        one("one_time/billing_line_items", raw | {"totalForCustomer": 0.1})
    with pytest.raises(InvalidProviderData, match="totalForCustomer of line 1 of invoice G1"):
        one("one_time/billing_line_items", {k: v for k, v in raw.items() if k != "totalForCustomer"})


def test_a_line_in_another_currency_keeps_it():
    raw = one_time_line(random.Random(5), "G1", START) | {"currency": "USD"}
    assert one("one_time/billing_line_items", raw).currency_code == "USD"
    assert one("one_time/billing_line_items", {**raw, "currency": ""}).currency_code == "EUR"


def test_lines_are_numbered_from_one_and_unknown_sources_refused():
    raw = one_time_line(random.Random(6), "G1", START)
    lines = list(normalize_lines(HEADER, [("one_time/billing_line_items", raw)] * 3))
    assert [line.line_no for line in lines] == [1, 2, 3]
    with pytest.raises(InvalidProviderData, match="unknown 'azure_data_market/billing_line_items'"):
        one("azure_data_market/billing_line_items", raw)


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        ("Credit Note", "credit_note"),
        ("ADJUSTMENT_NOTE", "adjustment_note"),
        ("void_note", "void_note"),
        ("Invoice", "invoice"),
    ],
)
def test_document_types_are_accepted_case_insensitively(spelling, expected):
    raw = microsoft_invoice("G1", START, Decimal("10.00"), []) | {"documentType": spelling}
    assert normalize_header(raw).document_type == expected


def test_header_fields_amendments_and_declared_categories():
    declared = [
        ("office", "billing_line_items"),
        ("azure", "billing_line_items"),
        ("azure", "usage_line_items"),
        ("one_time", "billing_line_items"),
        ("marketplace", "billing_line_items"),
    ]
    amendment = {"id": "G2", "documentType": "adjustment_note", "amendsOf": "G1", "totalCharges": "-5.5000"}
    raw = microsoft_invoice("G1", START, Decimal("100.25"), declared, [amendment])
    header = normalize_header(raw)
    assert (header.provider, header.invoice_id, header.currency_code) == ("microsoft", "G1", "EUR")
    assert header.header_total == Decimal("100.25") and header.billing_period_start == START
    assert header.declared_categories == ("licence", "usage", "one_time", "marketplace")
    (note,) = header.amendments
    assert (note.document_id, note.document_type, note.amends_of, note.total) == (
        "G2",
        "adjustment_note",
        "G1",
        Decimal("-5.5000"),
    )


def test_fingerprint_changes_only_when_microsoft_reissues():
    raw = microsoft_invoice("G1", START, Decimal("100.25"), [])
    same = normalize_header(raw | {"paidAmount": 100, "totalCharges": Decimal("100.250")}).fingerprint
    assert normalize_header(raw).fingerprint == same
    assert normalize_header(raw | {"totalCharges": Decimal("100.26")}).fingerprint != same
    credit = {"id": "G2", "documentType": "Credit Note", "totalCharges": Decimal("-1")}
    assert normalize_header(raw | {"amendments": [credit]}).fingerprint != same


@pytest.mark.parametrize("demo", microsoft_demo_invoices(), ids=lambda demo: demo.invoice["id"])
def test_demo_invoices_add_up_to_their_expected_difference(demo):
    header = normalize_header(demo.invoice)
    raw_lines = [
        (f"{provider}/{kind}", line)
        for (provider, kind), lines in demo.line_sets.items()
        if kind == "billing_line_items"
        for line in lines
    ]
    lines = list(normalize_lines(header, raw_lines))
    expected = MICROSOFT_DEMO[header.invoice_id]
    assert len(lines) == expected.line_count
    assert header.header_total - detail_total(lines) == expected.difference
    assert sum((line.amount for line in lines), Decimal(0)) + expected.difference == header.header_total
    usage_fails = expected.usage_difference is not None and abs(expected.usage_difference) > 1
    assert (abs(expected.difference) <= 1 and not usage_fails) == (expected.status == "active")  # default tolerance 1


def test_demo_covers_every_scenario():
    statuses = [expectation.status for expectation in MICROSOFT_DEMO.values()]
    assert statuses.count("checksum_error") == 3 and statuses.count("active") == 4
    assert any(0 < abs(e.difference) < 1 for e in MICROSOFT_DEMO.values())
    assert max(e.line_count for e in MICROSOFT_DEMO.values()) > 2000
