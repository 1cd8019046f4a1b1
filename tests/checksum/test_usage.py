"""The usage checksum's pieces: the escalation day, the exact GX sum at 16 decimals, the report and the CSV."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal

import pytest

from include.checksum.usage import (
    UsageCheck,
    csv_path,
    csv_rows,
    escalation_date,
    failure_message,
    mismatch_csv,
    render_report,
)
from include.model import InvoiceHeader
from include.settings import ProviderSettings
from include.sql.usage import SubscriptionUsage

D = Decimal


def header(end: date | None = date(2026, 1, 31), invoice_date: date | None = date(2026, 2, 8)) -> InvoiceHeader:
    return InvoiceHeader(
        "microsoft", "G1", "EUR", D("100"), invoice_date=invoice_date, billing_period_start=None, billing_period_end=end
    )


@pytest.mark.parametrize(
    ("end", "invoice_date", "day", "expected"),
    [
        (date(2026, 1, 31), None, 11, date(2026, 2, 11)),
        (date(2025, 12, 31), None, 11, date(2026, 1, 11)),
        (date(2026, 1, 20), None, 31, date(2026, 2, 28)),  # a shorter month takes its last day
        (date(2024, 1, 31), None, 30, date(2024, 2, 29)),
        (None, date(2026, 3, 8), 11, date(2026, 3, 11)),  # no period: the invoice month is the month after
        (None, None, 11, None),
    ],
)
def test_escalation_day_of_the_month_after_the_period(end, invoice_date, day, expected):
    assert escalation_date(header(end, invoice_date), ProviderSettings(usage_escalation_day=day)) == expected


def _row(sub: str, recon: str, daily: str, last: date | None = date(2026, 1, 31)) -> SubscriptionUsage:
    return SubscriptionUsage(sub, f"c-{sub}", D(recon), D(daily), 1, 1 if last else 0, last, "EUR")


def _check(*rows: SubscriptionUsage, **kwargs) -> UsageCheck:
    kwargs.setdefault("escalates_on", date(2026, 2, 11))
    kwargs.setdefault("checked_on", date(2026, 2, 3))
    return UsageCheck(header=header(), rows=rows, tolerance=D("1"), success=False, **kwargs)


def test_mismatches_are_largest_difference_first_and_partial_sets_are_named():
    check = _check(
        _row("s-small", "10.00", "9.50"),
        _row("s-big", "100.00", "20.486031696515249", last=date(2026, 1, 28)),
        _row("s-neg", "1.00", "4.00"),
        _row("s-same", "5.00", "5.000000000000000"),
    )
    assert [row.subscription_id for row in check.mismatches] == ["s-big", "s-neg", "s-small"]
    assert check.difference == D("100.00") + D("10.00") + 1 + 5 - (D("20.486031696515249") + D("9.50") + 4 + 5)
    assert [row.subscription_id for row in check.partial] == ["s-big"]
    message = failure_message(check, "Microsoft Partner Center invoice G1")
    assert message.startswith("Checksum error on Microsoft Partner Center invoice G1 (Azure usage)")
    assert "s-big (customer c-s-big), 79.513968303484751 EUR" in message
    assert "looks partial" in message and "s-big stops at 2026-01-28" in message
    assert "Retried by the next scheduled run" in message and "2026-02-11" in message
    report = render_report(check, "invoice G1")
    assert report.index("s-big") < report.index("s-neg") < report.index("s-small") and "s-same" not in report


def test_escalated_and_not_published_sentences():
    check = _check(_row("s1", "12.00", "0", last=None), checked_on=date(2026, 2, 11))
    assert check.not_published and check.escalated
    message = failure_message(check, "invoice G1")
    assert "daily-rated usage not published yet" in message and "Escalated since 2026-02-11" in message


def test_csv_keeps_every_digit_largest_difference_first(tmp_path):
    check = _check(_row("s-small", "1.00", "0.99"), _row("s-big", "3.00", "0.486031696515249"))
    text = mismatch_csv(csv_rows(check, "microsoft", "run/1"))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["subscription_id"], r["difference"]) for r in rows] == [
        ("s-big", "2.513968303484751"),
        ("s-small", "0.01"),
    ]
    assert (
        csv_path(tmp_path, "microsoft", "../G1", "manual__2026/01").parent.parent.parent
        == tmp_path / "usage_mismatches"
    )


def test_gx_usage_suite_is_exact_where_floats_are_not(tmp_path):
    from include.checksum.usage import usage_frame
    from include.checksum.validation import validate_usage

    daily = [D("0.486031696515249"), D("123456789.1234567890123456"), D("0.1"), D("0.2")]
    rows = [_row(f"s{i}", "0", str(value)) for i, value in enumerate(daily)]
    total = sum(daily)
    assert sum(float(v) for v in daily) == float(total + D("1E-16"))  # floats cannot tell these apart

    def run(target: Decimal, tolerance: Decimal):
        return validate_usage(
            "microsoft_usage.json",
            usage_frame(rows, "EUR"),
            reconciliation_pre_tax=target,
            tolerance=tolerance,
            invoice_currencies=["EUR"],
            validation_name="usage",
            run_name="exact",
            docs_dir=tmp_path,
        )

    assert run(total, D(0)).success and run(total, D(0)).observed_sum_micros == total
    assert not run(total + D("1E-16"), D(0)).success
    assert run(total + 1, D(1)).success and not run(total + D("1.0000000000000001"), D(1)).success
    assert run(total, D(0)).data_docs_page
