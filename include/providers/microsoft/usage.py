"""Microsoft billed daily-rated usage (DailyRatedUsageLineItem) -> :class:`include.daily_usage.UsageLine`.

Lines arrive as raw dicts from :meth:`plugins.hooks.partner_center.PartnerCenterHook.iter_usage_items`:
camelCase from the v1 ``usagelineitems`` pages, PascalCase from the Graph billed-usage export blobs, so
keys are matched case-insensitively. ``USAGE_FIELDS`` is the whole field mapping (canonical field <-
provider keys, first non-blank wins); field names are those of shared/reference/provider-apis.md 1.5.
The export's blobs also come as JSON-lines batches (``iter_usage_batches``), which
:func:`normalize_usage_batch` maps at once with Arrow (:mod:`.vectorised_usage`) when it can.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from include.daily_usage import UsageLine, parse_usage_amount
from include.model import InvalidProviderData, InvoiceHeader, parse_date

USAGE_FIELDS = {
    "customer_id": ("customerid",),
    "subscription_id": ("subscriptionid",),
    "usage_date": ("usagedate",),
    "product_id": ("productid",),
    "meter_id": ("meterid",),
    "meter_name": ("metername",),
    "meter_category": ("metercategory",),
    "resource_uri": ("resourceuri", "instancename"),
    "quantity": ("quantity",),
    "unit_price": ("unitprice",),
    "billing_pre_tax_total": ("billingpretaxtotal",),
    "currency_code": ("billingcurrency", "currency"),
}
AMOUNT_FIELDS = {"quantity": "quantity", "unit_price": "unitPrice", "billing_pre_tax_total": "billingPreTaxTotal"}
"""The exact amounts, with their names as the API spells them (for messages)."""


def _value(line: dict, keys: tuple[str, ...]):
    for key in keys:
        value = line.get(key)
        if value is not None and value != "":
            return value
    return None


def normalize_usage_line(header: InvoiceHeader, line_no: int, raw: dict) -> UsageLine:
    """One daily-rated line; a missing ``billingPreTaxTotal`` or an amount finer than the usage scale is refused."""
    lowered = {str(key).lower(): value for key, value in raw.items()}
    values = {name: _value(lowered, keys) for name, keys in USAGE_FIELDS.items()}
    where = f"daily-rated usage line {line_no} of invoice {header.invoice_id}"
    if values["billing_pre_tax_total"] is None:
        raise InvalidProviderData(f"billingPreTaxTotal of {where} is missing")
    for name, api_name in AMOUNT_FIELDS.items():
        if values[name] is not None:
            values[name] = parse_usage_amount(values[name], field_name=f"{api_name} of {where}")
    text = {name: None if values[name] is None else str(values[name]) for name in USAGE_FIELDS}
    return UsageLine(
        line_no=line_no,
        customer_id=text["customer_id"],
        subscription_id=text["subscription_id"],
        usage_date=parse_date(values["usage_date"]),
        product_id=text["product_id"],
        meter_id=text["meter_id"],
        meter_name=text["meter_name"],
        meter_category=text["meter_category"],
        resource_uri=text["resource_uri"],
        quantity=values["quantity"],
        unit_price=values["unit_price"],
        billing_pre_tax_total=values["billing_pre_tax_total"],
        currency_code=(text["currency_code"] or header.currency_code).upper(),
    )


def normalize_usage_lines(
    header: InvoiceHeader, raw_lines: Iterable[dict], first_line_no: int = 1
) -> Iterator[UsageLine]:
    """Daily-rated lines numbered from ``first_line_no`` (a later batch of the export) in the order given."""
    for line_no, raw in enumerate(raw_lines, start=first_line_no):
        yield normalize_usage_line(header, line_no, raw)


def normalize_usage_batch(header: InvoiceHeader, batch, first_line_no: int):
    """A whole JSON-lines batch as an Arrow table of staged usage rows, or ``None``: then
    :func:`normalize_usage_lines`. Imported only here, so the line-by-line path never loads Arrow."""
    from include.providers.microsoft.vectorised_usage import usage_table

    return usage_table(header, batch, first_line_no)
