"""Daily-rated usage: the finest grain Azure consumption is billed on, kept exact at a scale of its own.

Microsoft rates usage per day and meter without rounding (``billingPreTaxTotal`` of
``0.486031696515249``, a ``unitPrice`` of ``0.0209496384791679``: up to 16 decimals) and rounds down only
when it rolls the days up into the reconciliation lines. The six-decimal scale of billing money would have
to refuse these values, so daily-rated amounts, quantities and prices keep ``USAGE_SCALE`` decimals, and
anything finer is refused rather than rounded.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import NamedTuple

from include.model import parse_money

USAGE_SCALE = 16
"""Decimal places kept for daily-rated values (the most Microsoft's documented values carry)."""
USAGE_PRECISION = 38
"""Digits of the database column: ``NUMERIC(38, 16)`` leaves 22 before the point."""


def parse_usage_amount(value: object, *, field_name: str) -> Decimal:
    """An exact daily-rated value; more than ``USAGE_SCALE`` decimals or ``USAGE_PRECISION`` digits is refused."""
    return parse_money(value, field_name=field_name, scale=USAGE_SCALE, integer_digits=USAGE_PRECISION - USAGE_SCALE)


class UsageLine(NamedTuple):
    """One billed daily-rated usage line (a DailyRatedUsageLineItem): one subscription, meter and day."""

    line_no: int
    customer_id: str | None
    subscription_id: str | None
    usage_date: date | None
    product_id: str | None
    meter_id: str | None
    meter_name: str | None
    meter_category: str | None
    resource_uri: str | None
    quantity: Decimal | None
    unit_price: Decimal | None
    billing_pre_tax_total: Decimal
    currency_code: str
