"""Deterministic demo invoices for the sandbox, with the checksum outcome each one must produce.

Every invoice is generated from fixed seeds and a few named parameters, and its expected status and
exact difference (header - detail) are derived from those parameters here, in
``MICROSOFT_DEMO`` and ``SYNNEX_DEMO`` (``SYNNEX_DEMO_HEADER_TAX`` under ``SYNNEX_HEADER_TAX_SETTINGS``);
tests and ``make demo`` compare against that, never against literals.
The line builders are public so tests can compose small data dirs of their own.

Each provider has a sibling ``write_<provider>_demo`` function called by :func:`write_demo_data`.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from include.sandbox.server import dumps
from include.sandbox.synnex import ACCOUNT_ID as SYNNEX_ACCOUNT_ID
from include.settings import ProviderSettings

DEMO_DATA_VERSION = 2
"""Bump whenever the generated data changes, so cached copies are regenerated."""
SEED = 20260201
TAX_RATE = Decimal("0.19")
CENT = Decimal("0.01")
PARTNER_ID = "11111111-2222-3333-4444-555555555555"
LINE_TOTAL_KEY = {"office": "totalForCustomer", "azure": "postTaxTotal", "one_time": "totalForCustomer"}
"""What Microsoft adds up into ``totalCharges``, per billing provider (marketplace is one-time shaped)."""

CUSTOMERS = [
    ("a1b2c3d4-0000-4000-8000-000000000001", "Contoso GmbH", "contoso.onmicrosoft.com"),
    ("a1b2c3d4-0000-4000-8000-000000000002", "Fabrikam AG", "fabrikam.onmicrosoft.com"),
    ("a1b2c3d4-0000-4000-8000-000000000003", "Northwind Traders KG", "northwind.onmicrosoft.com"),
    ("a1b2c3d4-0000-4000-8000-000000000004", "Adatum SE", "adatum.onmicrosoft.com"),
]
NCE_PRODUCTS = [  # productId, skuId, name, monthly unit price
    ("CFQ7TTC0LCHC", "0002", "Microsoft 365 Business Premium", Decimal("20.60")),
    ("CFQ7TTC0LF8R", "0001", "Microsoft 365 E3", Decimal("33.00")),
    ("CFQ7TTC0LH18", "0001", "Microsoft 365 Business Basic", Decimal("5.60")),
]
AZURE_METERS = [  # productId, skuId, product, meter description
    ("DZH318Z0BQ3Q", "0009", "Tables", "Tables - LRS Data Stored (GB/Month)"),
    ("DZH318Z0BPS6", "003H", "Virtual Machines Dv3 Series", "D2 v3/D2s v3 (1 Hour)"),
    ("DZH318Z0BNVX", "0002", "Azure App Service", "S1 App (1 Hour)"),
]

LineSets = dict[tuple[str, str], list[dict]]
"""(billingProvider, invoiceLineItemType) -> lines."""


@dataclass(frozen=True)
class DemoExpectation:
    status: str
    difference: Decimal
    """Exactly header total - detail total."""
    line_count: int
    """Lines the sandbox serves for the invoice."""
    note: str


def _iso(day: date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


def _month_end(start: date) -> date:
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def _with_tax(subtotal: Decimal) -> tuple[Decimal, Decimal]:
    tax = (subtotal * TAX_RATE).quantize(CENT, ROUND_HALF_UP)
    return tax, subtotal + tax


def office_line(rng: random.Random, invoice_id: str, period_start: date) -> dict:
    """A legacy LicenseBasedLineItem (seat fee); ``totalForCustomer`` is what counts."""
    customer_id, customer, domain = rng.choice(CUSTOMERS)
    unit_price, quantity = (
        rng.choice([Decimal("8.00"), Decimal("20.00"), Decimal("32.00")]),
        rng.randint(1, 40),
    )
    subtotal = unit_price * quantity
    tax, total = _with_tax(subtotal)
    return {
        "partnerId": PARTNER_ID,
        "customerId": customer_id,
        "customerName": customer,
        "mpnId": 1234567,
        "tier2MpnId": -1,
        "orderId": f"5680000000{rng.randint(10**7, 10**8 - 1)}",
        "subscriptionId": f"Ab12CdEF{rng.randint(10**7, 10**8 - 1)}",
        "offerId": "796B6B5F-613C-4E24-A17C-EBA730D49C02",
        "durableOfferId": "91FD106F-4B2C-4938-95AC-F54F74E9A239",
        "offerName": "OFFICE 365 E3",
        "domainName": domain,
        "billingCycleType": "MONTHLY",
        "subscriptionName": "OFFICE 365 E3",
        "subscriptionDescription": "OFFICE 365 E3",
        "chargeStartDate": _iso(period_start),
        "chargeEndDate": _iso(_month_end(period_start)),
        "chargeType": "Cycle fee",
        "unitPrice": unit_price,
        "quantity": quantity,
        "amount": subtotal,
        "totalOtherDiscount": Decimal("0.00"),
        "subtotal": subtotal,
        "tax": tax,
        "totalForCustomer": total,
        "currency": "EUR",
        "invoiceLineItemType": "billing_line_items",
        "billingProvider": "office",
        "attributes": {"objectType": "LicenseBasedLineItem"},
    }


def azure_line(rng: random.Random, invoice_id: str, period_start: date) -> dict:
    """A legacy UsageBasedLineItem (Azure 145P); ``postTaxTotal`` is what counts."""
    customer_id, customer, domain = rng.choice(CUSTOMERS)
    list_price = rng.choice([Decimal("0.085"), Decimal("0.0383"), Decimal("0.12")])
    quantity = Decimal(rng.randint(10, 9000)) / 10
    pretax = (list_price * quantity).quantize(CENT, ROUND_HALF_UP)
    tax, total = _with_tax(pretax)
    return {
        "detailLineItemId": 1,
        "sku": "7UD-00001",
        "includedQuantity": 0,
        "overageQuantity": quantity,
        "listPrice": list_price,
        "currency": "EUR",
        "pretaxCharges": pretax,
        "taxAmount": tax,
        "postTaxTotal": total,
        "chargeType": "Assess usage fee for current cycle",
        "invoiceLineItemType": "billing_line_items",
        "partnerId": PARTNER_ID,
        "partnerName": "Example CSP AG",
        "customerId": customer_id,
        "domainName": domain,
        "customerCompanyName": customer,
        "mpnId": 1234567,
        "tier2MpnId": -1,
        "invoiceNumber": invoice_id,
        "subscriptionId": f"3f0c9a4e-1111-4d2e-9b7a-{rng.randint(10**11, 10**12 - 1)}",
        "subscriptionName": "Microsoft Azure",
        "serviceName": "Azure App Service",
        "serviceType": "Standard Plan",
        "consumedQuantity": quantity,
        "chargeStartDate": _iso(period_start),
        "chargeEndDate": _iso(_month_end(period_start)),
        "unit": "1 Hour",
        "billingProvider": "azure",
        "attributes": {"objectType": "UsageBasedLineItem"},
    }


def one_time_line(rng: random.Random, invoice_id: str, period_start: date, kind: str = "licence") -> dict:
    """A new-commerce OneTimeInvoiceLineItem of ``kind``: licence, usage, reserved_instance, credit,
    marketplace (a third-party publisher) or remove (a negative seat reduction)."""
    customer_id, customer, domain = rng.choice(CUSTOMERS)
    product_id, sku_id, product, price = rng.choice(NCE_PRODUCTS)
    line = {
        "partnerId": PARTNER_ID,
        "customerId": customer_id,
        "customerName": customer,
        "customerDomainName": domain,
        "customerCountry": "DE",
        "invoiceNumber": invoice_id,
        "mpnId": "1234567",
        "resellerMpnId": "7654321",
        "orderId": f"{rng.getrandbits(48):012x}",
        "orderDate": _iso(period_start),
        "productId": product_id,
        "skuId": sku_id,
        "availabilityId": f"{product_id[:8]}XXXX",
        "productName": product,
        "skuName": product,
        "productQualifiers": [],
        "chargeType": "new",
        "unitPrice": price,
        "effectiveUnitPrice": price,
        "unitType": "",
        "quantity": rng.randint(1, 25),
        "currency": "EUR",
        "pricingCurrency": "EUR",
        "pcToBCExchangeRate": 1,
        "publisherName": "Microsoft Corporation",
        "publisherId": "",
        "subscriptionDescription": "",
        "subscriptionId": f"9d7d1f3d-aaaa-4bbb-8ccc-{rng.getrandbits(48):012x}",
        "chargeStartDate": _iso(period_start),
        "chargeEndDate": _iso(_month_end(period_start)),
        "termAndBillingCycle": "One-Year commitment for monthly/yearly billing",
        "referenceId": "",
        "meterDescription": "",
        "billingFrequency": "Monthly",
        "reservationOrderId": "",
        "promotionId": "",
        "creditReasonCode": "",
        "invoiceLineItemType": "billing_line_items",
        "billingProvider": "one_time",
        "attributes": {"objectType": "OneTimeInvoiceLineItem"},
    }
    subtotal = price * line["quantity"]
    if kind == "remove":
        line["chargeType"] = "removeQuantity"
        subtotal = -subtotal
    elif kind == "usage":
        product_id, sku_id, product, meter = rng.choice(AZURE_METERS)
        subtotal = Decimal(rng.randint(100, 250_000)) / 100
        line |= {"productId": product_id, "skuId": sku_id, "productName": product, "skuName": product}
        line |= {"subscriptionDescription": "Azure plan", "meterDescription": meter, "billingFrequency": ""}
        line |= {
            "termAndBillingCycle": "",
            "quantity": 1,
            "unitPrice": subtotal,
            "effectiveUnitPrice": subtotal,
        }
    elif kind == "reserved_instance":
        subtotal = Decimal("2764.80")
        line |= {"productId": "DZH318Z0BQ5S", "productName": "Reserved VM Instance, Standard_D2s_v3, EU West"}
        line |= {"reservationOrderId": f"{rng.getrandbits(64):016x}", "quantity": 1, "unitPrice": subtotal}
        line |= {
            "termAndBillingCycle": "1 Year",
            "billingFrequency": "OneTime",
            "effectiveUnitPrice": subtotal,
        }
    elif kind == "credit":
        subtotal = -Decimal(rng.randint(500, 20_000)) / 100
        line |= {"chargeType": "customerCredit", "creditReasonCode": "Azure consumption credit"}
        line |= {"productName": "Azure plan credit", "termAndBillingCycle": "", "quantity": 1}
    elif kind == "marketplace":
        subtotal = Decimal(rng.randint(1_000, 90_000)) / 100
        line |= {"productId": "DZH318Z0FZ0Q", "productName": "Veeam Backup for Microsoft 365"}
        line |= {"publisherName": "Veeam Software", "publisherId": "veeam", "quantity": 1}
        line |= {"termAndBillingCycle": "One-Year commitment for monthly billing", "unitPrice": subtotal}
    line["subtotal"] = subtotal
    line["taxTotal"], line["totalForCustomer"] = _with_tax(subtotal)
    return line


def line_total(provider: str, line: dict) -> Decimal:
    return line[LINE_TOTAL_KEY.get(provider, "totalForCustomer")]


def sets_total(line_sets: LineSets) -> Decimal:
    return sum(
        (line_total(provider, line) for (provider, _), lines in line_sets.items() for line in lines),
        Decimal(0),
    )


def microsoft_invoice(
    invoice_id: str,
    period_start: date,
    total: Decimal,
    declared: Iterable[tuple[str, str]],
    amendments: Iterable[dict] = (),
) -> dict:
    """A Partner Center Invoice resource declaring the (billingProvider, invoiceLineItemType) sets."""
    kind = "Recurring" if invoice_id.startswith("D") else "OneTime"
    return {
        "id": invoice_id,
        "invoiceDate": _iso(_month_end(period_start) + timedelta(days=8)),
        "billingPeriodStartDate": _iso(period_start),
        "billingPeriodEndDate": f"{_month_end(period_start).isoformat()}T23:59:59Z",
        "totalCharges": total,
        "paidAmount": 0,
        "currencyCode": "EUR",
        "currencySymbol": "€",
        "pdfDownloadLink": f"/invoices/{invoice_id}/documents/statement",
        "taxReceipts": [],
        "invoiceDetails": [
            {
                "invoiceLineItemType": line_type,
                "billingProvider": provider,
                "links": {"self": {"uri": f"/invoices/{kind}-{invoice_id}/lineitems", "method": "GET"}},
                "attributes": {"objectType": "InvoiceDetail"},
            }
            for provider, line_type in declared
        ],
        "amendments": list(amendments),
        "documentType": "invoice",
        "invoiceType": kind,
        "links": {"self": {"uri": f"/invoices/{kind}-{invoice_id}", "method": "GET", "headers": []}},
        "attributes": {"objectType": "Invoice"},
    }


def _write_invoice_dir(data_dir: str | Path, provider: str, invoice: dict, jsonl: dict[str, list[dict]]) -> Path:
    """``<provider>/<id>/invoice.json`` plus one JSON-lines file per ``jsonl`` entry (the DESIGN layout)."""
    folder = Path(data_dir) / provider / str(invoice["id"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "invoice.json").write_text(dumps(invoice) + "\n", encoding="utf-8")
    for name, rows in jsonl.items():
        (folder / name).write_text("".join(dumps(row) + "\n" for row in rows), encoding="utf-8")
    return folder


def write_microsoft_invoice(data_dir: str | Path, invoice: dict, line_sets: LineSets) -> Path:
    """Write one invoice in the DESIGN layout: ``microsoft/<id>/invoice.json`` and one JSONL per set."""
    files = {f"{provider}_{line_type}.jsonl": lines for (provider, line_type), lines in line_sets.items()}
    return _write_invoice_dir(data_dir, "microsoft", invoice, files)


# -- the demo invoices -----------------------------------------------------------------------------

BILLING = "billing_line_items"
CREDIT_NOTE_TOTAL = Decimal("-1329.7525")
DRIFT_LINES = 60
MODERN_MIX = {
    "licence": 1700,
    "remove": 40,
    "usage": 580,
    "reserved_instance": 1,
    "credit": 20,
    "marketplace": 4,
}
"""Kinds of the large v2 invoice's 2,345 one-time lines."""


@dataclass(frozen=True)
class DemoInvoice:
    invoice: dict
    line_sets: LineSets
    expectation: DemoExpectation


def _mixed(rng: random.Random, invoice_id: str, start: date, mix: dict[str, int]) -> list[dict]:
    return [one_time_line(rng, invoice_id, start, kind) for kind, count in mix.items() for _ in range(count)]


def _legacy_balanced() -> DemoInvoice:
    invoice_id, start, rng = "D0526A0001", date(2026, 1, 1), random.Random(SEED + 1)
    sets = {
        ("office", BILLING): [office_line(rng, invoice_id, start) for _ in range(30)],
        ("azure", BILLING): [azure_line(rng, invoice_id, start) for _ in range(20)],
    }
    invoice = microsoft_invoice(invoice_id, start, sets_total(sets), [*sets, ("azure", "usage_line_items")])
    note = "legacy office + azure lines; azure usage declared without a file (no money)"
    return DemoInvoice(invoice, sets, DemoExpectation("active", Decimal(0), 50, note))


def _modern_balanced() -> DemoInvoice:
    invoice_id, start, rng = "G0526A0002", date(2026, 1, 1), random.Random(SEED + 2)
    sets = {("one_time", BILLING): _mixed(rng, invoice_id, start, MODERN_MIX)}
    invoice = microsoft_invoice(invoice_id, start, sets_total(sets), sets)
    count = sum(MODERN_MIX.values())
    note = f"{count} one-time lines through the v2 export, several blobs"
    return DemoInvoice(invoice, sets, DemoExpectation("active", Decimal(0), count, note))


def _credit_note_missing() -> DemoInvoice:
    invoice_id, start, rng = "G0526A0003", date(2026, 2, 1), random.Random(SEED + 3)
    sets = {("one_time", BILLING): _mixed(rng, invoice_id, start, {"licence": 30, "usage": 10})}
    credit_note = {
        "id": "G0526A0903",
        "invoiceDate": _iso(date(2026, 3, 20)),
        "totalCharges": CREDIT_NOTE_TOTAL,
        "paidAmount": 0,
        "currencyCode": "EUR",
        "currencySymbol": "€",
        "documentType": "Credit Note",
        "amendsOf": invoice_id,
        "invoiceType": "OneTime",
        "invoiceDetails": [{"invoiceLineItemType": BILLING, "billingProvider": "one_time"}],
        "attributes": {"objectType": "Invoice"},
    }
    invoice = microsoft_invoice(invoice_id, start, sets_total(sets) + CREDIT_NOTE_TOTAL, sets, [credit_note])
    note = "header includes a credit note whose lines are not in the line items"
    return DemoInvoice(invoice, sets, DemoExpectation("checksum_error", CREDIT_NOTE_TOTAL, 40, note))


def _marketplace_missing() -> DemoInvoice:
    invoice_id, start, rng = "G0523A0004", date(2023, 11, 1), random.Random(SEED + 4)
    sets = {("one_time", BILLING): _mixed(rng, invoice_id, start, {"licence": 20, "remove": 2, "usage": 3})}
    missing = {("marketplace", BILLING): _mixed(rng, invoice_id, start, {"marketplace": 5})}
    invoice = microsoft_invoice(invoice_id, start, sets_total(sets) + sets_total(missing), [*sets, *missing])
    note = "declares marketplace lines the provider omits (v1 continuation paging, before v2)"
    return DemoInvoice(invoice, sets, DemoExpectation("checksum_error", sets_total(missing), 25, note))


def _rounding_drift() -> DemoInvoice:
    """Lines with unrounded 4-decimal totals whose sub-cent parts all round down: a small, real drift."""
    invoice_id, start, rng = "G0525A0005", date(2025, 12, 1), random.Random(SEED + 5)
    lines = []
    for _ in range(DRIFT_LINES):
        line = one_time_line(rng, invoice_id, start, "usage")
        total = Decimal(rng.randint(100, 90_000)) / 100 + Decimal(rng.randint(1, 49)) / 10_000
        subtotal = (total / (1 + TAX_RATE)).quantize(Decimal("0.0001"))
        line |= {"subtotal": subtotal, "taxTotal": total - subtotal, "totalForCustomer": total}
        lines.append(line)
    sets = {("one_time", BILLING): lines}
    header = sum((line["totalForCustomer"].quantize(CENT, ROUND_HALF_UP) for line in lines), Decimal(0))
    difference = header - sets_total(sets)
    if not CENT <= abs(difference) < 1:  # the point of this invoice; the fixed seed keeps it so
        raise ValueError(f"rounding drift {difference} is outside 0.01..0.99; change SEED")
    invoice = microsoft_invoice(invoice_id, start, header, sets)
    note = "4-decimal line totals, header rounded per line to cents: sub-euro drift within tolerance 1"
    return DemoInvoice(invoice, sets, DemoExpectation("active", difference, DRIFT_LINES, note))


def microsoft_demo_invoices() -> list[DemoInvoice]:
    return [
        _legacy_balanced(),
        _modern_balanced(),
        _credit_note_missing(),
        _marketplace_missing(),
        _rounding_drift(),
    ]


MICROSOFT_DEMO: dict[str, DemoExpectation] = {
    demo.invoice["id"]: demo.expectation for demo in microsoft_demo_invoices()
}


def write_microsoft_demo(data_dir: str | Path) -> dict[str, DemoExpectation]:
    for demo in microsoft_demo_invoices():
        write_microsoft_invoice(data_dir, demo.invoice, demo.line_sets)
    return MICROSOFT_DEMO


# -- TD SYNNEX StreamOne Ion -----------------------------------------------------------------------

SELLER_SHARE = Decimal("0.85")
"""TD SYNNEX's price to the reseller as a share of the MSRP (``customerCost``)."""
SYNNEX_SPECIALS = {  # chargeType -> (productId, sku, productName, fixed MSRP or None)
    "customerCredit": ("DZH318Z0BQ3Q", "credit", "Azure plan credit", None),
    "marketplace": ("DZH318Z0FZ0Q", "veeam-m365", "Veeam Backup for Microsoft 365", None),
    "reservedInstance": ("DZH318Z0BQ5S", "P1Y", "Reserved VM Instance, Standard_D2s_v3, EU West", Decimal("2764.80")),
}
SYNNEX_HEADER_TAX_SETTINGS = {"synnex": {"tax": "header"}}
"""The ``invoice_sync_settings`` value under which ``SYNNEX_DEMO_HEADER_TAX`` holds."""


def synnex_line(rng: random.Random, invoice_id: str, period_start: date, charge_type: str = "license") -> dict:
    """An Ion invoice line in the shape :mod:`include.providers.synnex` maps; ``sellerCost`` is what counts.

    ``charge_type``: license, usage (Azure plan), customerCredit (negative), marketplace or reservedInstance.
    """
    customer_id, customer, _ = rng.choice(CUSTOMERS)
    if charge_type in SYNNEX_SPECIALS:
        product_id, sku, name, fixed = SYNNEX_SPECIALS[charge_type]
        quantity, msrp = 1, fixed or Decimal(rng.randint(500, 90_000)) / 100
    elif charge_type == "usage":
        product_id, sku, name, _ = rng.choice(AZURE_METERS)
        quantity, msrp = 1, Decimal(rng.randint(100, 250_000)) / 100
    else:
        product_id, sku, name, price = rng.choice(NCE_PRODUCTS)
        quantity = rng.randint(1, 25)
        msrp = price * quantity
    if charge_type == "customerCredit":
        msrp = -msrp
    seller_cost = (msrp * SELLER_SHARE).quantize(CENT, ROUND_HALF_UP)
    return {
        "id": rng.getrandbits(40),
        "invoiceId": int(invoice_id),
        "customerId": customer_id,
        "customerName": customer,
        "subscriptionId": f"{rng.getrandbits(128):032x}",
        "cloudProvider": "Microsoft Azure" if charge_type != "license" else "Microsoft 365",
        "chargeType": charge_type,
        "productId": product_id,
        "sku": sku,
        "productName": name,
        "chargeStartDate": period_start.isoformat(),
        "chargeEndDate": _month_end(period_start).isoformat(),
        "quantity": quantity,
        "unitPrice": msrp / quantity,
        "customerCost": msrp,
        "sellerCost": seller_cost,
        "margin": msrp - seller_cost,
        "currency": "EUR",
    }


def synnex_invoice(invoice_id: str, period_start: date, charges: Decimal, tax: Decimal = Decimal("0.00")) -> dict:
    """An Ion invoice header: ``subTotal`` = ``charges`` (net), ``taxTotal`` = ``tax``, ``total`` both."""
    return {
        "id": int(invoice_id),
        "accountId": SYNNEX_ACCOUNT_ID,
        "invoiceNumber": f"INV-{invoice_id}",
        "status": "closed",
        "invoiceDate": (_month_end(period_start) + timedelta(days=8)).isoformat(),
        "billingStartDate": period_start.isoformat(),
        "billingEndDate": _month_end(period_start).isoformat(),
        "currency": "EUR",
        "subTotal": charges,
        "taxTotal": tax,
        "total": charges + tax,
        "detailedInvoiceFilesUrls": [],
    }


def write_synnex_invoice(data_dir: str | Path, invoice: dict, lines: list[dict]) -> Path:
    """Write one invoice in the DESIGN layout: ``synnex/<id>/invoice.json`` and ``lines.jsonl``."""
    return _write_invoice_dir(data_dir, "synnex", invoice, {"lines.jsonl": lines})


def seller_total(lines: Iterable[dict]) -> Decimal:
    return sum((line["sellerCost"] for line in lines), Decimal(0))


@dataclass(frozen=True)
class SynnexDemo:
    invoice: dict
    lines: list[dict]
    note: str

    def expectation(self, tax: str) -> DemoExpectation:
        """The outcome under the ``tax`` setting, from the generated amounts and the default tolerance."""
        counted_tax = self.invoice["taxTotal"] if tax == "header" else Decimal(0)
        difference = self.invoice["total"] - seller_total(self.lines) - counted_tax
        passes = abs(difference) <= ProviderSettings().usage_mismatch_tolerance
        return DemoExpectation("active" if passes else "checksum_error", difference, len(self.lines), self.note)


def _synnex_lines(rng: random.Random, invoice_id: str, start: date, mix: dict[str, int]) -> list[dict]:
    return [synnex_line(rng, invoice_id, start, kind) for kind, count in mix.items() for _ in range(count)]


SYNNEX_CASES = [  # (billing month, line mix, VAT rate on the header only, Azure Marketplace fees not in the lines)
    (date(2026, 1, 1), {"license": 180, "usage": 50, "reservedInstance": 1}, None, 0),
    (date(2026, 2, 1), {"license": 25, "usage": 10}, TAX_RATE, 0),
    (date(2026, 1, 1), {"license": 20, "usage": 12, "customerCredit": 4}, None, 0),
    (date(2026, 2, 1), {"license": 20, "usage": 5, "marketplace": 3}, None, 4),
]
"""Balanced over three pages of 100 lines; VAT on the header only; customer credits; missing marketplace fees."""


def synnex_demo_invoices() -> list[SynnexDemo]:
    demos = []
    for number, (start, mix, tax_rate, missing_fees) in enumerate(SYNNEX_CASES, start=1):
        invoice_id, rng = f"41000{number:02d}", random.Random(SEED + 100 + number)
        lines = _synnex_lines(rng, invoice_id, start, mix)
        fees = sum((Decimal(rng.randint(50, 5_000)) / 100 for _ in range(missing_fees)), Decimal(0))
        charges = seller_total(lines) + fees
        tax = (charges * tax_rate).quantize(CENT, ROUND_HALF_UP) if tax_rate else Decimal("0.00")
        notes = [f"{count} {kind}" for kind, count in mix.items()]
        notes += [f"header VAT {tax}"] if tax else []
        notes += [f"Azure Marketplace fees of {fees} not in the lines"] if missing_fees else []
        demos.append(SynnexDemo(synnex_invoice(invoice_id, start, charges, tax), lines, ", ".join(notes)))
    return demos


SYNNEX_DEMO: dict[str, DemoExpectation] = {
    str(demo.invoice["id"]): demo.expectation(ProviderSettings().tax) for demo in synnex_demo_invoices()
}
SYNNEX_DEMO_HEADER_TAX: dict[str, DemoExpectation] = {
    str(demo.invoice["id"]): demo.expectation(SYNNEX_HEADER_TAX_SETTINGS["synnex"]["tax"])
    for demo in synnex_demo_invoices()
}


def write_synnex_demo(data_dir: str | Path) -> dict[str, DemoExpectation]:
    for demo in synnex_demo_invoices():
        write_synnex_invoice(data_dir, demo.invoice, demo.lines)
    return SYNNEX_DEMO


def write_demo_data(data_dir: str | Path) -> dict[str, dict[str, DemoExpectation]]:
    """Write every provider's demo invoices into ``data_dir``; returns provider -> invoice -> expectation."""
    return {"microsoft": write_microsoft_demo(data_dir), "synnex": write_synnex_demo(data_dir)}


def default_cache_dir() -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "provider-invoice-sync" / f"sandbox-demo-v{DEMO_DATA_VERSION}"


def ensure_demo_data(target: str | Path | None = None) -> Path:
    """The demo data dir, generated once (atomically, so concurrent sandboxes never see half a dir)."""
    target = Path(target) if target else default_cache_dir()
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".demo-", dir=target.parent))
    write_demo_data(staging)
    try:
        staging.rename(target)
    except OSError:  # another process finished first
        shutil.rmtree(staging, ignore_errors=True)
    return target
