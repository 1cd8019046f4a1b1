"""TD SYNNEX StreamOne Ion demo invoices and the checksum outcome each must produce under each tax setting.

``EXPECTED`` holds the outcomes under the default settings, ``SYNNEX_DEMO_HEADER_TAX`` those under
``SYNNEX_HEADER_TAX_SETTINGS``.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from include.model import CENT
from include.providers import DemoVariant
from include.providers.synnex.sandbox import ACCOUNT_ID as SYNNEX_ACCOUNT_ID
from include.sandbox.demo_data import (
    AZURE_METERS,
    CUSTOMERS,
    NCE_PRODUCTS,
    SEED,
    TAX_RATE,
    DemoExpectation,
    month_end,
    write_invoice_dir,
)
from include.settings import ProviderSettings

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
    """An Ion invoice line in the shape :mod:`include.providers.synnex.normaliser` maps; ``sellerCost`` is what counts.

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
        "chargeEndDate": month_end(period_start).isoformat(),
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
        "invoiceDate": (month_end(period_start) + timedelta(days=8)).isoformat(),
        "billingStartDate": period_start.isoformat(),
        "billingEndDate": month_end(period_start).isoformat(),
        "currency": "EUR",
        "subTotal": charges,
        "taxTotal": tax,
        "total": charges + tax,
        "detailedInvoiceFilesUrls": [],
    }


def write_synnex_invoice(data_dir: str | Path, invoice: dict, lines: list[dict]) -> Path:
    """Write one invoice in the DESIGN layout: ``synnex/<id>/invoice.json`` and ``lines.jsonl``."""
    return write_invoice_dir(data_dir, "synnex", invoice, {"lines.jsonl": lines})


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


EXPECTED: dict[str, DemoExpectation] = {
    str(demo.invoice["id"]): demo.expectation(ProviderSettings().tax) for demo in synnex_demo_invoices()
}
SYNNEX_DEMO_HEADER_TAX: dict[str, DemoExpectation] = {
    str(demo.invoice["id"]): demo.expectation(SYNNEX_HEADER_TAX_SETTINGS["synnex"]["tax"])
    for demo in synnex_demo_invoices()
}


VARIANTS = [DemoVariant("tax setting", SYNNEX_HEADER_TAX_SETTINGS, SYNNEX_DEMO_HEADER_TAX)]


def write_demo(data_dir: str | Path) -> dict[str, DemoExpectation]:
    for demo in synnex_demo_invoices():
        write_synnex_invoice(data_dir, demo.invoice, demo.lines)
    return EXPECTED
