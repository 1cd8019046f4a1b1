"""The checksum diagnostics name the true cause of a difference, with the exact amount, best first.

Every fixture builds the detail from many lines of 0.1 / 0.7 / 12.99 style amounts, which a float sum
would get wrong (sum([0.1] * 1000) != 100), so every asserted amount proves the arithmetic is Decimal.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from include.checksum.diagnostics import (
    CAUSES,
    DiagnosisInput,
    SiblingInvoice,
    diagnose,
    difference,
    override_suggestion,
    render_report,
    report_json,
)
from include.model import Amendment, InvoiceHeader, InvoiceLine, detail_total
from include.settings import ProviderSettings

D = Decimal
PERIOD_END = date(2024, 5, 31)


def lines(category: str, amount: str, count: int, currency: str = "EUR", end: date = PERIOD_END):
    return [
        InvoiceLine(0, category, D(amount), currency, charge_start_date=date(2024, 5, 1), charge_end_date=end)
        for _ in range(count)
    ]


BASE_LINES = (
    lines("usage", "0.1", 1000)  # 100.0, where the float sum is 99.9999999999986
    + lines("licence", "0.7", 300)  # 210.0
    + lines("licence", "10.35", 12)  # 124.20
    + lines("one_time", "12.99", 40)  # 519.60
)
BASE_DETAIL = D("953.80")
DEFAULT_SETTINGS = ProviderSettings()


def make_input(gap: str, *, extra_lines=(), settings=DEFAULT_SETTINGS, **header_fields) -> DiagnosisInput:
    """An invoice whose header total is the base detail plus ``gap``, aggregated the way the task does."""
    header_fields = {"declared_categories": ("licence", "usage", "one_time"), **header_fields}
    all_lines = [*BASE_LINES, *extra_lines]
    breakdown: dict[str, Decimal] = {}
    counts: dict[str, int] = {}
    currencies: dict[str, Decimal] = {}
    for line in all_lines:
        breakdown[line.category] = breakdown.get(line.category, D(0)) + line.amount
        counts[line.category] = counts.get(line.category, 0) + 1
        currencies[line.currency_code] = currencies.get(line.currency_code, D(0)) + line.amount
    header = InvoiceHeader(
        provider="microsoft",
        invoice_id="G000024130",
        currency_code="EUR",
        header_total=BASE_DETAIL + D(gap),
        billing_period_start=date(2024, 5, 1),
        billing_period_end=PERIOD_END,
        **header_fields,
    )
    return DiagnosisInput(
        header=header,
        detail_total=detail_total(all_lines),
        tolerance=settings.usage_mismatch_tolerance,
        breakdown=breakdown,
        line_counts=counts,
        currency_totals=currencies,
        usage_last_charge_end=max(line.charge_end_date for line in all_lines if line.category == "usage"),
        settings=settings,
        provider_display_name="Microsoft Partner Center",
    )


@pytest.fixture
def header_tax():
    return make_input("181.22", header_tax=D("181.22"))


@pytest.fixture
def credit_note():
    note = Amendment("G000024131", "Credit Note", "G000024130", D("-1329.7525"))
    return make_input("-1329.7525", amendments=(note,))


@pytest.fixture
def adjustment_note():
    notes = (
        Amendment("G000024132", "credit note", "G000024130", D("-999.99")),
        Amendment("G000024133", "adjustment_note", "G000024130", D("107.66")),
        Amendment("G000024134", "VOID_NOTE", "G000024130", D("25.01")),
    )
    return make_input("132.67", amendments=notes)


@pytest.fixture
def missing_category():
    return make_input(
        "2456.31", declared_categories=("licence", "usage", "one_time", "marketplace", "reserved_instance")
    )


@pytest.fixture
def rounding():
    return make_input("0.37", settings=ProviderSettings(usage_mismatch_tolerance=D(0)))


@pytest.fixture
def inactive_currency():
    return make_input("0.3", settings=ProviderSettings(active_currencies=("USD", "GBP")))


@pytest.fixture
def foreign_currency_lines():
    return make_input("0", extra_lines=lines("usage", "1.1", 25, currency="USD"))  # 27.5 USD too many


@pytest.fixture
def split_invoice():
    inp = make_input("-412.35")
    siblings = (
        SiblingInvoice("G000024200", D("9.99"), "active"),
        SiblingInvoice("G000024199", D("412.35"), "new"),
    )
    return replace(inp, sibling_invoices=siblings)


@pytest.fixture
def late_lines():
    return replace(make_input("48.30"), usage_last_charge_end=date(2024, 5, 29))


@pytest.mark.parametrize(
    ("case", "amount"),
    [
        ("header_tax", "181.22"),
        ("credit_note", "-1329.7525"),
        ("adjustment_note", "132.67"),
        ("missing_category", "2456.31"),
        ("rounding", "0.37"),
        ("inactive_currency", "0"),
        ("foreign_currency_lines", "-27.5"),
        ("split_invoice", "-412.35"),
        ("late_lines", "48.30"),
    ],
)
def test_top_hint_names_the_true_cause_with_the_exact_amount(request, case, amount):
    hints = diagnose(request.getfixturevalue(case))
    assert hints[0].cause == case
    assert hints[0].amount == D(amount)
    assert hints[0].explains is (case != "inactive_currency")
    assert all(hint.cause in CAUSES for hint in hints)


def test_base_fixture_sums_exactly():
    assert make_input("0").detail_total == BASE_DETAIL


def test_header_tax_action_names_the_setting(header_tax):
    top = diagnose(header_tax)[0]
    assert '"tax": "header"' in top.action and "invoice_sync_settings" in top.action
    assert diagnose(replace(header_tax, settings=ProviderSettings(tax="header")))[0].cause == "unexplained"


def test_credit_note_evidence_and_override(credit_note):
    top = diagnose(credit_note)[0]
    assert "G000024131" in top.evidence and "amends G000024130" in top.evidence
    assert "provider_invoice_manual_sync" in top.action and "override_tolerance=1330" in top.action


def test_adjustment_notes_are_matched_by_their_sum_without_the_unrelated_credit(adjustment_note):
    top = diagnose(adjustment_note)[0]
    assert "G000024133" in top.evidence and "G000024134" in top.evidence
    assert "G000024132" not in top.evidence


def test_credit_note_with_the_opposite_sign_still_explains():
    note = Amendment("G000024131", "adjustment_note", "G000024130", D("1329.7525"))
    top = diagnose(make_input("-1329.7525", amendments=(note,)))[0]
    assert (top.cause, top.amount, top.explains) == ("adjustment_note", D("-1329.7525"), True)


def test_missing_category_names_the_categories(missing_category):
    top = diagnose(missing_category)[0]
    assert "marketplace, reserved_instance" in top.evidence
    assert "override_tolerance=2457" in top.action


def test_rounding_is_not_claimed_beyond_one_cent_per_line():
    causes = [h.cause for h in diagnose(make_input("13.53", settings=ProviderSettings(usage_mismatch_tolerance=D(0))))]
    assert "rounding" not in causes  # 1352 lines allow at most 13.52


def test_inactive_currency_is_reported_even_when_the_totals_agree(inactive_currency):
    assert [h.cause for h in diagnose(inactive_currency)] == ["inactive_currency"]
    assert "USD, GBP" in diagnose(inactive_currency)[0].evidence


def test_nothing_to_explain_within_tolerance():
    assert diagnose(make_input("-0.99")) == []


def test_weaker_sibling_is_still_listed(split_invoice):
    hints = diagnose(split_invoice)
    assert [(h.cause, h.explains) for h in hints] == [
        ("split_invoice", True),
        ("split_invoice", False),
    ]
    assert "G000024200" in hints[1].evidence


def test_late_lines_cannot_explain_a_negative_difference(late_lines):
    hints = diagnose(replace(late_lines, detail_total=late_lines.detail_total + D("96.60")))
    assert hints[0].cause == "unexplained"
    assert [(h.cause, h.explains) for h in hints[1:]] == [("late_lines", False)]


def test_exact_match_ranks_before_tolerance_match_and_before_inferred_causes():
    note = Amendment("G000024131", "credit note", "G000024130", D("181.22"))
    inp = make_input(
        "181.22",
        header_tax=D("181.20"),
        amendments=(note,),
        declared_categories=("licence", "usage", "one_time", "marketplace"),
        settings=ProviderSettings(usage_mismatch_tolerance=D("0.05")),
    )
    assert [(h.cause, h.explains) for h in diagnose(inp)] == [
        ("credit_note", True),
        ("header_tax", True),
        ("missing_category", True),
    ]


def test_unexplained_difference_says_so_plainly():
    inp = make_input("517.43")
    hints = diagnose(inp)
    assert [h.cause for h in hints] == ["unexplained"]
    assert hints[0].evidence.startswith("No known cause explains the difference of 517.43 EUR")
    first_line = render_report(inp, hints, invoice_label="G000024130", data_docs=None).splitlines()[0]
    assert "No known cause explains the difference of 517.43 EUR" in first_line


@pytest.mark.parametrize(
    ("diff", "expected"),
    [("-1329.7525", 1330), ("1329.7525", 1330), ("0", 0), ("5.00", 5), ("0.0001", 1)],
)
def test_override_suggestion_rounds_up_to_a_whole_number(diff, expected):
    assert override_suggestion(D(diff)) == expected


def test_report_shows_numbers_breakdown_top_hint_and_data_docs(credit_note):
    hints = diagnose(credit_note)
    report = render_report(
        credit_note, hints, invoice_label="G000024130", data_docs="file:///airflow/data_docs/index.html"
    )
    lines_ = report.splitlines()
    assert "Microsoft Partner Center" in lines_[0] and "G000024130" in lines_[0]
    assert "credit_note" in lines_[0]
    for number in ("-375.9525", "953.80", "-1329.7525"):
        assert number in report
    assert any(line.split()[:3] == ["usage", "1000", "100.00"] for line in lines_)
    assert any(line.split()[:3] == ["licence", "312", "334.20"] for line in lines_)
    assert "override_tolerance=1330" in report
    assert "file:///airflow/data_docs/index.html" in report
    assert "\x1b" not in report


def test_report_marks_declared_categories_without_lines(missing_category):
    report = render_report(missing_category, diagnose(missing_category), invoice_label="X", data_docs=None)
    assert any(line.split() == ["marketplace", "0", "0.00", "declared,", "no", "lines"] for line in report.splitlines())
    assert "Data Docs: not available" in report


def test_report_json_is_json_safe_and_exact(adjustment_note):
    data = json.loads(json.dumps(report_json(adjustment_note, diagnose(adjustment_note))))
    assert D(data["difference"]) == difference(adjustment_note) == D("132.67")
    assert D(data["detail"]["total"]) == BASE_DETAIL
    assert data["breakdown"]["usage"] == {"amount": "100.00", "lines": 1000}
    assert data["hints"][0]["cause"] == "adjustment_note" and data["hints"][0]["amount"] == "132.67"
    assert data["override_suggestion"] == 133


def test_categories_a_provider_never_reports_explain_a_positive_gap():
    from dataclasses import replace

    from include.providers import PROVIDERS

    synnex = PROVIDERS["synnex"]
    inp = replace(
        make_input("80.38", declared_categories=()),
        provider_display_name=synnex.display_name,
        unreported_categories=synnex.unreported_categories,
    )
    top = diagnose(inp)[0]
    assert (top.cause, top.amount, top.explains) == ("missing_category", D("80.38"), True)
    assert "Azure Marketplace fees" in top.evidence and "no marketplace lines" in top.evidence
    assert "override_tolerance=81" in top.action
    negative = replace(inp, header=replace(inp.header, header_total=BASE_DETAIL - D("80.38")))
    assert "missing_category" not in [h.cause for h in diagnose(negative)]  # unreported fees only add
