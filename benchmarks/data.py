"""Deterministic benchmark invoices: N new-commerce one-time lines as v2 export blobs, cached on disk.

The sandbox's own builders make one Python dict per line and serialise it with the exact-Decimal
``dumps``; that is fine for demo data but minutes for a million lines. Here every line is one
``%``-format of a template with the same keys a Partner Center v2 billed-reconciliation blob carries
(PascalCase), so 1M lines take seconds. Amounts are generated as integers of 1/10,000 currency unit
(licence lines with 19 % tax rounded to cents, usage lines with four decimal places, credits and
seat removals negative), which makes the header total exact without a single Decimal addition.

Layout of one cached invoice (``<cache>/<lines>/``)::

    microsoft/<invoice_id>/invoice.json    # what the sandbox serves for GET /invoices/<id>
    microsoft/<invoice_id>/one_time_usage_line_items.jsonl
                                            # billed daily-rated usage: one day per Azure plan usage line,
                                            # adding up to its subtotal, so the usage checksum passes
    blobs/part_000001.json.gz ...           # gzip JSON lines, ``BLOB_LINES`` per blob
    meta.json                               # invoice id, line count, exact header total, blob names
"""

from __future__ import annotations

import gzip
import itertools
import json
import os
import random
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

DATA_VERSION = 3
"""Bump whenever the generated data changes, so cached copies are regenerated."""
SEED = 20260301
BLOB_LINES = 50_000
SUBSCRIPTIONS = 10_000
"""Subscriptions the lines are spread over: a reseller's subscriptions, each with many lines a month, not
one per line (the usage checksum holds one row per subscription, :mod:`include.checksum.usage`)."""
"""Lines per export blob; real reconciliation blobs are tens of megabytes, so are these."""
PERIOD_START = "2026-02-01"
PERIOD_END = "2026-02-28"
PARTNER_ID = "11111111-2222-3333-4444-555555555555"
CUSTOMERS = [
    (f"a1b2c3d4-0000-4000-8000-{n:012d}", name, f"{name.split()[0].lower()}.onmicrosoft.com")
    for n, name in enumerate(
        ["Contoso GmbH", "Fabrikam AG", "Northwind Traders KG", "Adatum SE", "Litware Inc", "Tailspin Toys"], 1
    )
]
PRODUCTS = [  # productId, skuId, name, monthly unit price in cents
    ("CFQ7TTC0LCHC", "0002", "Microsoft 365 Business Premium", 2060),
    ("CFQ7TTC0LF8R", "0001", "Microsoft 365 E3", 3300),
    ("CFQ7TTC0LH18", "0001", "Microsoft 365 Business Basic", 560),
]
METERS = [  # productId, skuId, product, meter description
    ("DZH318Z0BQ3Q", "0009", "Tables", "Tables - LRS Data Stored (GB/Month)"),
    ("DZH318Z0BPS6", "003H", "Virtual Machines Dv3 Series", "D2 v3/D2s v3 (1 Hour)"),
    ("DZH318Z0BNVX", "0002", "Azure App Service", "S1 App (1 Hour)"),
]

_TEMPLATE = (
    '{"PartnerId":"' + PARTNER_ID + '","CustomerId":"%(cid)s","CustomerName":"%(cname)s",'
    '"CustomerDomainName":"%(domain)s","CustomerCountry":"DE","InvoiceNumber":"%(invoice)s",'
    '"MpnId":"1234567","ResellerMpnId":"7654321","OrderId":"%(order)012x","OrderDate":"' + PERIOD_START + '",'
    '"ProductId":"%(pid)s","SkuId":"%(sku)s","AvailabilityId":"%(pid8)sXXXX","ProductName":"%(pname)s",'
    '"SkuName":"%(pname)s","ProductQualifiers":[],"ChargeType":"%(ctype)s","UnitPrice":%(unit)s,'
    '"EffectiveUnitPrice":%(unit)s,"UnitType":"","Quantity":%(qty)d,"Currency":"EUR","PricingCurrency":"EUR",'
    '"PcToBCExchangeRate":1,"PublisherName":"%(publisher)s","PublisherId":"","SubscriptionDescription":"%(sdesc)s",'
    '"SubscriptionId":"9d7d1f3d-aaaa-4bbb-8ccc-%(sub)012x","ChargeStartDate":"' + PERIOD_START + '",'
    '"ChargeEndDate":"' + PERIOD_END + '","TermAndBillingCycle":"%(term)s","ReferenceId":"",'
    '"MeterDescription":"%(meter)s","BillingFrequency":"Monthly","ReservationOrderId":"%(ri)s","PromotionId":"",'
    '"CreditReasonCode":"%(reason)s","InvoiceLineItemType":"billing_line_items","BillingProvider":"one_time",'
    '"Subtotal":%(subtotal)s,"TaxTotal":%(tax)s,"TotalForCustomer":%(total)s,'
    '"Attributes":{"objectType":"OneTimeInvoiceLineItem"}}\n'
)


_USAGE_TEMPLATE = (
    '{"partnerId":"' + PARTNER_ID + '","customerId":"%(cid)s","customerName":"%(cname)s",'
    '"invoiceNumber":"%(invoice)s","productId":"%(pid)s","skuId":"%(sku)s","productName":"%(pname)s",'
    '"subscriptionId":"9d7d1f3d-aaaa-4bbb-8ccc-%(sub)012x","usageDate":"' + PERIOD_END + 'T00:00:00Z",'
    '"meterId":"%(pid)s-%(sku)s","meterName":"%(meter)s","meterCategory":"%(pname)s","chargeType":"new",'
    '"unitPrice":%(subtotal)s,"quantity":1,"billingPreTaxTotal":%(subtotal)s,"billingCurrency":"EUR",'
    '"invoiceLineItemType":"usage_line_items","billingProvider":"one_time",'
    '"attributes":{"objectType":"DailyRatedUsageLineItem"}}\n'
)
"""The billed daily-rated usage of an Azure plan usage line (one day for its whole subtotal)."""


@dataclass(frozen=True)
class BenchInvoice:
    root: Path
    invoice_id: str
    lines: int
    header_total: Decimal
    blobs: tuple[str, ...]

    @property
    def data_dir(self) -> Path:
        """The sandbox ``DIR`` (holds ``microsoft/<id>/invoice.json``)."""
        return self.root

    def blob_path(self, name: str) -> Path:
        return self.root / "blobs" / name


def _money(units: int) -> str:
    """Integer 1/10,000 units as an exact JSON number with four decimals."""
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), 10_000)
    return f"{sign}{whole}.{frac:04d}"


def _tax(subtotal_cents: int) -> int:
    """19 % tax rounded half up to the cent, symmetric for negative amounts."""
    sign = -1 if subtotal_cents < 0 else 1
    return sign * ((abs(subtotal_cents) * 19 + 50) // 100)


def _line(rng: random.Random, invoice_id: str) -> tuple[str, int, str | None]:
    """One export line and its ``TotalForCustomer`` in 1/10,000 units."""
    cid, cname, domain = CUSTOMERS[rng.randrange(len(CUSTOMERS))]
    pid, sku, pname, price = PRODUCTS[rng.randrange(len(PRODUCTS))]
    qty = rng.randint(1, 25)
    roll = rng.random()
    values = {
        "cid": cid,
        "cname": cname,
        "domain": domain,
        "invoice": invoice_id,
        "order": rng.getrandbits(48),
        "sub": rng.randrange(SUBSCRIPTIONS),
        "ctype": "new",
        "publisher": "Microsoft Corporation",
        "sdesc": "",
        "term": "One-Year commitment for monthly/yearly billing",
        "meter": "",
        "ri": "",
        "reason": "",
    }
    if roll < 0.20:  # Azure plan usage: four decimal places, no tax rounding to cents
        pid, sku, pname, meter = METERS[rng.randrange(len(METERS))]
        total = rng.randint(1, 25_000_000)
        values |= {"sdesc": "Azure plan", "meter": meter, "term": ""}
        values |= {"pid": pid, "sku": sku, "pname": pname, "qty": 1}
        values |= {"unit": _money(total), "subtotal": _money(total), "tax": "0.0000", "total": _money(total)}
        return _TEMPLATE % (values | {"pid8": pid[:8]}), total, _USAGE_TEMPLATE % values
    subtotal = price * qty
    if roll < 0.22:
        subtotal = -rng.randint(500, 20_000)
        values |= {"ctype": "customerCredit", "reason": "Azure consumption credit", "term": ""}
        pname, qty = "Azure plan credit", 1
    elif roll < 0.23:
        subtotal = -subtotal
        values["ctype"] = "removeQuantity"
    elif roll < 0.24:
        subtotal = rng.randint(1_000, 90_000)
        values |= {"publisher": "Veeam Software", "term": "One-Year commitment for monthly billing"}
        pid, pname, qty = "DZH318Z0FZ0Q", "Veeam Backup for Microsoft 365", 1
    elif roll < 0.245:
        subtotal = 276_480
        values |= {"ri": f"{rng.getrandbits(64):016x}", "term": "1 Year"}
        pid, pname, qty = "DZH318Z0BQ5S", "Reserved VM Instance, Standard_D2s_v3, EU West", 1
    total_cents = subtotal + _tax(subtotal)
    values |= {"pid": pid, "sku": sku, "pname": pname, "qty": qty, "pid8": pid[:8]}
    values |= {
        "unit": _money(price * 100),
        "subtotal": _money(subtotal * 100),
        "tax": _money(_tax(subtotal) * 100),
        "total": _money(total_cents * 100),
    }
    return _TEMPLATE % values, total_cents * 100, None


def invoice_id_for(lines: int) -> str:
    return f"G0BENCH{lines:09d}"


def _invoice_json(invoice_id: str, total: str) -> str:
    invoice = {
        "id": invoice_id,
        "invoiceDate": "2026-03-08",
        "billingPeriodStartDate": PERIOD_START,
        "billingPeriodEndDate": f"{PERIOD_END}T23:59:59Z",
        "totalCharges": "__TOTAL__",
        "paidAmount": 0,
        "currencyCode": "EUR",
        "currencySymbol": "€",
        "invoiceDetails": [
            {
                "invoiceLineItemType": "billing_line_items",
                "billingProvider": "one_time",
                "links": {"self": {"uri": f"/invoices/OneTime-{invoice_id}/lineitems", "method": "GET"}},
                "attributes": {"objectType": "InvoiceDetail"},
            }
        ],
        "amendments": [],
        "documentType": "invoice",
        "invoiceType": "OneTime",
        "attributes": {"objectType": "Invoice"},
    }
    return json.dumps(invoice).replace('"__TOTAL__"', total) + "\n"


def generate(lines: int, cache_dir: str | Path, *, blob_lines: int = BLOB_LINES) -> BenchInvoice:
    """The invoice of ``lines`` lines under ``cache_dir``, generated once and reused while unchanged."""
    root = Path(cache_dir) / f"v{DATA_VERSION}-{lines}-{blob_lines}"
    meta_path = root / "meta.json"
    if meta_path.is_file():
        return _load(root)
    invoice_id = invoice_id_for(lines)
    tmp = root.with_name(root.name + f".tmp{os.getpid()}")
    (tmp / "blobs").mkdir(parents=True, exist_ok=True)
    rng = random.Random(SEED + lines)
    total_units, blobs, written, usage = 0, [], 0, []
    while written < lines:
        count = min(blob_lines, lines - written)
        chunk = []
        for _ in range(count):
            text, units, daily = _line(rng, invoice_id)
            chunk.append(text)
            total_units += units
            if daily:
                usage.append(daily)
        name = f"part_{len(blobs) + 1:06d}.json.gz"
        # Level 6 is gzip's default and what a provider's blob store serves.
        (tmp / "blobs" / name).write_bytes(gzip.compress("".join(chunk).encode(), compresslevel=6, mtime=0))
        blobs.append(name)
        written += count
    header_total = _money(total_units)
    invoice_dir = tmp / "microsoft" / invoice_id
    invoice_dir.mkdir(parents=True, exist_ok=True)
    (invoice_dir / "invoice.json").write_text(_invoice_json(invoice_id, header_total), encoding="utf-8")
    (invoice_dir / "one_time_usage_line_items.jsonl").write_text("".join(usage), encoding="utf-8")
    meta = {"invoice_id": invoice_id, "lines": lines, "header_total": header_total, "blobs": blobs}
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    if root.exists():  # a concurrent generator won
        return _load(root)
    tmp.rename(root)
    return _load(root)


_TOP_LEVEL_KEY = re.compile(r'(^\{|,)"([a-z])', re.MULTILINE)
"""The first letter of a line's top-level keys (the nested ``attributes`` object has one key, after ``:{``)."""


def usage_blobs(bench: BenchInvoice, blob_lines: int = BLOB_LINES) -> tuple[str, ...]:
    """The invoice's daily-rated usage as the Graph export's gzip blobs (PascalCase keys), cut once and cached.

    The sandbox would cut them per export request, parsing and dumping every line exactly: at 10M invoice
    lines (2M daily-rated ones) that outlasts the client's timeout. Cut here from the text, once, they keep
    the provider's cost out of the numbers as the reconciliation blobs do.
    """
    folder = bench.root / "usage-blobs"
    if not folder.is_dir():
        tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
        tmp.mkdir(parents=True, exist_ok=True)
        source = bench.root / "microsoft" / bench.invoice_id / "one_time_usage_line_items.jsonl"
        with source.open(encoding="utf-8") as lines:
            chunks = iter(lambda: list(itertools.islice(lines, blob_lines)), [])
            for number, chunk in enumerate(chunks, start=1):
                text = _TOP_LEVEL_KEY.sub(lambda m: f'{m[1]}"{m[2].upper()}', "".join(chunk))
                blob = gzip.compress(text.encode(), compresslevel=6, mtime=0)
                (tmp / f"part_{number:06d}.json.gz").write_bytes(blob)
        if folder.exists():  # a concurrent run cut them too
            return usage_blobs(bench, blob_lines)
        tmp.rename(folder)
    return tuple(sorted(path.name for path in folder.glob("*.json.gz")))


def _load(root: Path) -> BenchInvoice:
    meta = json.loads((root / "meta.json").read_text(encoding="utf-8"))
    return BenchInvoice(root, meta["invoice_id"], meta["lines"], Decimal(meta["header_total"]), tuple(meta["blobs"]))
