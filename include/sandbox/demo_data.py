"""Deterministic demo invoices for the sandbox: what every provider's generator shares.

Each provider's demo invoices live in its package (``include/providers/<name>/demo.py``), generated
from fixed seeds and a few named parameters, with the checksum outcome each one must produce
(:class:`DemoExpectation`) derived from those parameters; tests and ``make demo`` compare against
that, never against literals. The line builders are public so tests can compose small data dirs.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from include.sandbox.server import dumps

DEMO_DATA_VERSION = 3
"""Bump whenever the generated data changes, so cached copies are regenerated."""
SEED = 20260201
TAX_RATE = Decimal("0.19")

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


@dataclass(frozen=True)
class DemoExpectation:
    status: str
    difference: Decimal
    """Exactly header total - detail total."""
    line_count: int
    """Lines the sandbox serves for the invoice."""
    note: str
    usage_lines: int = 0
    """Daily-rated usage lines the sandbox serves (and an activated invoice loads)."""
    usage_difference: Decimal | None = None
    """Exactly reconciliation - daily-rated pre-tax Azure usage, where the usage checksum runs."""


def iso_midnight(day: date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


def month_end(start: date) -> date:
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def write_invoice_dir(data_dir: str | Path, provider: str, invoice: dict, jsonl: dict[str, list[dict]]) -> Path:
    """``<provider>/<id>/invoice.json`` plus one JSON-lines file per ``jsonl`` entry (the DESIGN layout)."""
    folder = Path(data_dir) / provider / str(invoice["id"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "invoice.json").write_text(dumps(invoice) + "\n", encoding="utf-8")
    for name, rows in jsonl.items():
        (folder / name).write_text("".join(dumps(row) + "\n" for row in rows), encoding="utf-8")
    return folder


def write_demo_data(data_dir: str | Path) -> dict[str, dict[str, DemoExpectation]]:
    """Write every provider's demo invoices into ``data_dir``; returns provider -> invoice -> expectation."""
    from include.providers import PROVIDERS

    return {name: spec.demo().write_demo(data_dir) for name, spec in PROVIDERS.items()}


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
