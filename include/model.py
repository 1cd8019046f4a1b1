"""The canonical invoice model every provider is normalised into.

Money is `decimal.Decimal` from the wire to the database: provider JSON is parsed with
``parse_float=Decimal`` and amounts that arrive as strings go through :func:`parse_money`.
Where a fast exact sum is needed (GX, pandas, SQLite) money travels as integer *micros*
(millionths of the currency unit), see :func:`to_micros`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import NamedTuple

MONEY_SCALE = 6
"""Decimal places kept for money. Provider line amounts carry 2 (sometimes 4); 6 leaves headroom."""

MICROS_PER_UNIT = 10**MONEY_SCALE

CENT = Decimal("0.01")
"""The smallest unit invoices are printed and rounded in (EUR, USD...)."""

CATEGORIES = (
    "licence",
    "usage",
    "one_time",
    "marketplace",
    "reserved_instance",
    "credit",
    "adjustment",
    "tax",
)
"""Every line maps onto one of these; the checksum breakdown is reported per category."""


class InvalidProviderData(ValueError):
    """A provider response that cannot be trusted (malformed, truncated, inconsistent)."""


MONEY_DIGITS = 24
"""Significant digits a money column holds (``NUMERIC(24, 6)``): 18 before the point, 6 after."""

MAX_INTEGER_DIGITS = MONEY_DIGITS - MONEY_SCALE


def parse_money(
    value: object, *, field_name: str = "amount", scale: int = MONEY_SCALE, integer_digits: int | None = None
) -> Decimal:
    """Parse a provider amount exactly, or refuse it with one sentence: the one money parser.

    JSON numbers must already be ``Decimal`` (never float). Anything finer than ``scale`` decimals
    (trailing zeros aside) or with more integer digits than the money column holds is refused here, the
    same way on every database, instead of being rounded by NUMERIC or overflowing it later. Daily-rated
    usage (:mod:`include.daily_usage`) passes its own ``scale`` and ``integer_digits``.
    """
    integer_digits = MAX_INTEGER_DIGITS if integer_digits is None else integer_digits
    if isinstance(value, bool) or value is None:
        raise InvalidProviderData(f"{field_name} is {_shown(value)}, expected a number.")
    if isinstance(value, float):
        raise InvalidProviderData(f"{field_name} arrived as a binary float ({value!r}); parse JSON with Decimal.")
    try:
        amount = Decimal(str(value).strip()) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise InvalidProviderData(f"{field_name} {_shown(value)} is not a number.") from None
    if not amount.is_finite():
        raise InvalidProviderData(f"{field_name} {_shown(value)} is not a finite number.")
    _, digits, exponent = amount.as_tuple()
    if exponent < -scale and any(digits[exponent + scale :]):
        raise InvalidProviderData(
            f"{field_name} {_shown(amount)} has more than {scale} decimal places; amounts are kept to "
            f"{scale} places and are never rounded."
        )
    if len(digits) + exponent > integer_digits and amount != 0:
        raise InvalidProviderData(
            f"{field_name} {_shown(amount)} has more than {integer_digits} digits before the decimal point, "
            "more than the money columns hold."
        )
    return amount


def _shown(value: object, limit: int = 60) -> str:
    """A value as it may appear inside one of our sentences: repr, cut short."""
    text = repr(value) if not isinstance(value, Decimal) else str(value)
    return text if len(text) <= limit else f"{text[:limit]}..."


def to_micros(amount: Decimal) -> int:
    """Exact integer micros of ``amount``; refuses what :func:`parse_money` refuses (never rounds)."""
    amount = parse_money(amount)
    sign, digits, exponent = amount.as_tuple()
    magnitude = int("".join(map(str, digits)) or "0")
    shift = exponent + MONEY_SCALE
    micros = magnitude * 10**shift if shift >= 0 else magnitude // 10**-shift
    return -micros if sign else micros


def from_micros(micros: int) -> Decimal:
    """Exact inverse of :func:`to_micros` (division of integers this size is exact in Decimal)."""
    return Decimal(int(micros)) / MICROS_PER_UNIT


def parse_date(value: object) -> date | None:
    """ISO date or date-time (``Z`` allowed) to a date; blank means unknown."""
    if value in (None, ""):
        return None
    text = str(value).strip().replace("Z", "+00:00")
    try:
        return datetime.fromisoformat(text).date() if "T" in text else date.fromisoformat(text)
    except ValueError:
        raise InvalidProviderData(f"{value!r} is not an ISO date") from None


@dataclass(frozen=True)
class Amendment:
    """A credit, adjustment or void note attached to an invoice (Partner Center ``amendments``)."""

    document_id: str
    document_type: str
    amends_of: str | None
    total: Decimal


@dataclass(frozen=True)
class InvoiceHeader:
    """What the provider says an invoice is; ``header_total`` is what the lines must add up to."""

    provider: str
    invoice_id: str
    currency_code: str
    header_total: Decimal
    invoice_date: date | None = None
    billing_period_start: date | None = None
    billing_period_end: date | None = None
    document_type: str = "invoice"
    header_tax: Decimal | None = None
    """Tax/levies the header states on its own; counted only when the provider's tax setting says so."""
    declared_categories: tuple[str, ...] = ()
    """Categories the header declares line sets for (Partner Center ``invoiceDetails``)."""
    amendments: tuple[Amendment, ...] = ()
    fingerprint: str = ""
    """Changes whenever the provider's version of the invoice changes (total, date, eTag...)."""

    def to_xcom(self) -> dict:
        """JSON-safe dict (money as strings) for XCom and the attempt row."""
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, Decimal | date):
                data[key] = str(value)
        data["declared_categories"] = list(self.declared_categories)
        data["amendments"] = [{**asdict(a), "total": str(a.total)} for a in self.amendments]
        return data

    @classmethod
    def from_xcom(cls, data: dict) -> InvoiceHeader:
        return cls(
            provider=data["provider"],
            invoice_id=data["invoice_id"],
            currency_code=data["currency_code"],
            header_total=Decimal(data["header_total"]),
            invoice_date=parse_date(data.get("invoice_date")),
            billing_period_start=parse_date(data.get("billing_period_start")),
            billing_period_end=parse_date(data.get("billing_period_end")),
            document_type=data.get("document_type") or "invoice",
            header_tax=Decimal(data["header_tax"]) if data.get("header_tax") is not None else None,
            declared_categories=tuple(data.get("declared_categories") or ()),
            amendments=tuple(
                Amendment(a["document_id"], a["document_type"], a.get("amends_of"), Decimal(a["total"]))
                for a in data.get("amendments") or ()
            ),
            fingerprint=data.get("fingerprint", ""),
        )


class InvoiceLine(NamedTuple):
    """One canonical line item; ``amount`` is what the line contributes to the checksum.

    A named tuple, immutable like the rest of the model: a big invoice makes a million of these, and a
    tuple is built several times faster than a frozen dataclass (and is already the row that is staged).
    """

    line_no: int
    category: str
    amount: Decimal
    currency_code: str
    customer_id: str | None = None
    customer_name: str | None = None
    subscription_id: str | None = None
    product_id: str | None = None
    sku_id: str | None = None
    charge_type: str | None = None
    charge_start_date: date | None = None
    charge_end_date: date | None = None
    description: str | None = None
    source: str | None = None
    """Where the line came from on the provider side, e.g. ``office/billing_line_items``."""
    pre_tax_amount: Decimal | None = None
    """The line before tax (Microsoft ``subtotal``/``pretaxCharges``), where the provider states it: the usage
    checksum compares Azure usage pre-tax, since daily-rated usage carries no tax."""
    extra: Mapping[str, str] = MappingProxyType({})
    """Provider ids kept for reconciliation by hand (not staged)."""


def detail_total(lines: Iterable[InvoiceLine]) -> Decimal:
    """Exact sum of line amounts (integer micros, so no float and no Decimal context rounding)."""
    return from_micros(sum(to_micros(line.amount) for line in lines))


class InvoiceNotFound(LookupError):
    """The provider does not know the requested invoice id."""
