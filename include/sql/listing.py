"""The provider's own list of invoices, as the last scheduled sync saw it (``provider_invoice_listing``)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, insert
from sqlalchemy.engine import Engine

from include.model import InvoiceHeader
from include.sql.schema import provider_invoice_listing
from include.sql.store import utcnow


def record_listing(engine: Engine, provider: str, headers: Iterable[InvoiceHeader]) -> int:
    """Replace ``provider``'s listed invoices with ``headers`` in one transaction; returns how many."""
    now = utcnow()
    rows = [
        {
            "provider": provider,
            "invoice_id": header.invoice_id,
            "currency_code": header.currency_code,
            "header_total": header.header_total,
            "invoice_date": header.invoice_date,
            "billing_period_start": header.billing_period_start,
            "billing_period_end": header.billing_period_end,
            "document_type": header.document_type,
            "listed_at": now,
        }
        for header in {h.invoice_id: h for h in headers}.values()
    ]
    with engine.begin() as conn:
        conn.execute(delete(provider_invoice_listing).where(provider_invoice_listing.c.provider == provider))
        if rows:
            conn.execute(insert(provider_invoice_listing), rows)
    return len(rows)
