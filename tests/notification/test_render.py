"""Subject lines, money and escaping of the status mail, without a database."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from include.notification.render import money, render
from include.sql.status_report import InvoiceEntry, StatusReport

START, END = datetime(2026, 11, 22, 7, tzinfo=UTC), datetime(2026, 11, 23, 7, tzinfo=UTC)


def _report(**sections) -> StatusReport:
    empty = dict.fromkeys(("activated", "checksum_errors", "failures", "deactivations", "waiting"), ())
    return StatusReport(window_start=START, window_end=END, **{**empty, **sections})


def _entry(invoice_id, status, **values) -> InvoiceEntry:
    return InvoiceEntry(provider="microsoft", invoice_id=invoice_id, at=END, status=status, **values)


def test_subject_says_ok_when_nothing_is_blocked():
    activated = tuple(_entry(f"G{i}", "activated", header_total=Decimal(10), currency_code="EUR") for i in range(3))

    assert render(_report(activated=activated)).subject == (
        "[OK] Provider invoices 2026-11-23: 3 activated, nothing blocked"
    )
    assert render(_report()).subject == "[OK] Provider invoices 2026-11-23: nothing new"


def test_subject_asks_for_action_on_errors_and_failures():
    report = _report(
        checksum_errors=(_entry("G1", "checksum_error"), _entry("G2", "checksum_error")),
        failures=(_entry("G3", "failed"),),
    )

    assert render(report).subject == "[ACTION NEEDED] Provider invoices 2026-11-23: 2 checksum errors, 1 failure"


def test_html_escapes_everything_from_the_database():
    hostile = '<img src=x onerror="alert(1)">'
    report = _report(
        failures=(_entry(hostile, "failed", message=hostile, task_url='http://x/"><script>'),),
        deactivations=(_entry("G9", "deactivated", by="<b>eve</b>", message="a & b"),),
    )

    mail = render(report)

    assert "<img" not in mail.html and "<script>" not in mail.html and "<b>eve" not in mail.html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in mail.html
    assert 'href="http://x/&quot;&gt;&lt;script&gt;"' in mail.html
    assert "a &amp; b" in mail.html
    assert hostile in mail.text


def test_non_web_links_are_not_clickable():
    mail = render(_report(failures=(_entry("G1", "failed", task_url="javascript:alert(1)"),)))

    assert "href" not in mail.html


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        (Decimal("1234.5"), "1,234.50"),
        (Decimal("-3.200000"), "-3.20"),
        (Decimal("0.0025"), "0.0025"),
        (Decimal("1329.752500"), "1,329.7525"),
        (Decimal("100"), "100.00"),
        (None, "n/a"),
    ],
)
def test_money_keeps_every_real_digit(amount, shown):
    assert money(amount) == shown
