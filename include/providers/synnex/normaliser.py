"""TD SYNNEX StreamOne Ion (v1) invoices and invoice lines -> the canonical model.

Ion's invoice JSON is not public (TD SYNNEX documents the endpoints, not the payloads), so the field
names below are our best reading of the SDK, the filter/sort keys and the report columns. They are
all in the tables at the top of this module, so correcting them against a real account touches
nothing else:

- ``HEADER_FIELDS``: canonical header field <- Ion invoice key;
- ``LINE_FIELDS``: canonical line field <- Ion line key;
- ``CHARGE_TYPES``: Ion ``chargeType`` (case-insensitive) -> canonical category; an unknown charge type
  is refused rather than guessed, because a wrong category hides the cause of a checksum error;
- ``EXTRA_FIELDS``: Ion keys kept in ``InvoiceLine.extra`` for reconciliation by hand.

The fingerprint hashes every mapped header value, so it changes when Ion re-issues an invoice.

A line's amount is its ``sellerCost``: what TD SYNNEX charges the reseller, net of tax (the reports'
seller cost column; ``customerCost`` is the MSRP the reseller bills on). Ion states tax on the header
only (``taxTotal``), which is why the ``tax`` setting of ``synnex`` is usually ``"header"``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from decimal import Decimal

from include.model import InvalidProviderData, InvoiceHeader, InvoiceLine, parse_date, parse_money

PROVIDER = "synnex"

HEADER_FIELDS = {
    "invoice_id": "id",
    "account_id": "accountId",  # checked by the hook against the connection's ``account_id``
    "currency_code": "currency",
    "header_total": "total",  # tax included
    "header_tax": "taxTotal",  # absent or 0 when the invoice carries no tax
    "invoice_date": "invoiceDate",
    "billing_period_start": "billingStartDate",  # the documented filter field
    "billing_period_end": "billingEndDate",  # the documented filter field
}
LINE_FIELDS = {
    "amount": "sellerCost",
    "currency_code": "currency",
    "charge_type": "chargeType",
    "customer_id": "customerId",
    "customer_name": "customerName",
    "subscription_id": "subscriptionId",
    "product_id": "productId",
    "sku_id": "sku",
    "charge_start_date": "chargeStartDate",
    "charge_end_date": "chargeEndDate",
    "description": "productName",
}
CHARGE_TYPES = {
    "license": "licence",
    "usage": "usage",  # Azure plan consumption
    "marketplace": "marketplace",
    "reservedinstance": "reserved_instance",
    "customercredit": "credit",  # Microsoft CSP Azure plan / NCE credits (TD SYNNEX KB 44002616970)
    "onetime": "one_time",
    "adjustment": "adjustment",
}
EXTRA_FIELDS = {
    "line_id": "id",
    "cloud_provider": "cloudProvider",
    "quantity": "quantity",
    "unit_price": "unitPrice",
    "customer_cost": "customerCost",
    "margin": "margin",
}


def _text(raw: dict, key: str) -> str | None:
    value = raw.get(key)
    return None if value in (None, "") else str(value)


def _fingerprint(values: dict) -> str:
    """Hash of the header's values; money normalised, so ``12.50`` and ``12.5`` hash alike."""
    basis = {key: format(v.normalize(), "f") if isinstance(v, Decimal) else v for key, v in values.items()}
    return hashlib.sha256(json.dumps(basis, default=str, sort_keys=True).encode()).hexdigest()


def normalize_header(raw: dict) -> InvoiceHeader:
    """An Ion invoice as an :class:`InvoiceHeader`; ``total`` is what the lines (plus header tax) must reach."""
    fields = {name: raw.get(key) for name, key in HEADER_FIELDS.items()}
    invoice_id = str(fields["invoice_id"] or "")
    if not invoice_id:
        raise InvalidProviderData("A TD SYNNEX StreamOne Ion invoice arrived without an id.")

    def money(name: str) -> Decimal:
        return parse_money(fields[name], field_name=f"{HEADER_FIELDS[name]} of invoice {invoice_id}")

    values = {
        "invoice_id": invoice_id,
        "currency_code": str(fields["currency_code"] or "").upper(),
        "header_total": money("header_total"),
        "header_tax": None if fields["header_tax"] is None else money("header_tax"),
        "invoice_date": parse_date(fields["invoice_date"]),
        "billing_period_start": parse_date(fields["billing_period_start"]),
        "billing_period_end": parse_date(fields["billing_period_end"]),
    }
    return InvoiceHeader(provider=PROVIDER, **values, fingerprint=_fingerprint(values))


def category_of(charge_type: str | None, where: str) -> str:
    try:
        return CHARGE_TYPES[(charge_type or "").replace("_", "").lower()]
    except KeyError:
        raise InvalidProviderData(
            f"{where} has chargeType {charge_type!r}, which is not one of {', '.join(CHARGE_TYPES)}; "
            "add it to CHARGE_TYPES in include/providers/synnex/normaliser.py."
        ) from None


def normalize_line(header: InvoiceHeader, line_no: int, source: str, raw: dict) -> InvoiceLine:
    """One Ion line as an :class:`InvoiceLine`; a missing amount or unknown charge type is refused."""
    where = f"Line {line_no} of invoice {header.invoice_id}"
    fields = {name: _text(raw, key) for name, key in LINE_FIELDS.items() if name != "amount"}
    return InvoiceLine(
        line_no=line_no,
        category=category_of(fields["charge_type"], where),
        amount=parse_money(raw.get(LINE_FIELDS["amount"]), field_name=f"{LINE_FIELDS['amount']} of {where.lower()}"),
        currency_code=(fields.pop("currency_code") or header.currency_code).upper(),
        charge_start_date=parse_date(fields.pop("charge_start_date")),
        charge_end_date=parse_date(fields.pop("charge_end_date")),
        source=source,
        extra={name: value for name, key in EXTRA_FIELDS.items() if (value := _text(raw, key)) is not None},
        **fields,
    )


def normalize_lines(
    header: InvoiceHeader, raw_lines: Iterable[tuple[str, dict]], first_line_no: int = 1
) -> Iterator[InvoiceLine]:
    """Canonical lines numbered from ``first_line_no`` (a later batch of the invoice) in the order given."""
    for line_no, (source, raw) in enumerate(raw_lines, start=first_line_no):
        yield normalize_line(header, line_no, source, raw)
