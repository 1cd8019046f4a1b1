"""The provider's own list of invoices, as the last scheduled sync saw it (``provider_invoice_listing``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import delete, insert, or_
from sqlalchemy.engine import Engine

from include.model import InvoiceHeader
from include.sql.schema import provider_invoice_listing
from include.sql.store import utcnow


def record_listing(
    engine: Engine, provider: str, listed: Mapping[str, Iterable[InvoiceHeader]], accounts: Iterable[str]
) -> int:
    """Replace the rows of every account in ``listed`` (account -> headers) in one transaction; returns how many.

    An account of ``accounts`` missing from ``listed`` (its listing failed) keeps the rows of its last listing;
    the rows of an account no longer among ``accounts`` go.
    """
    now = utcnow()
    rows = [
        {
            "provider": provider,
            "account": account,
            "invoice_id": header.invoice_id,
            "currency_code": header.currency_code,
            "header_total": header.header_total,
            "invoice_date": header.invoice_date,
            "billing_period_start": header.billing_period_start,
            "billing_period_end": header.billing_period_end,
            "document_type": header.document_type,
            "listed_at": now,
        }
        for account, headers in listed.items()
        for header in {h.invoice_id: h for h in headers}.values()
    ]
    t = provider_invoice_listing
    with engine.begin() as conn:
        replaced = or_(t.c.account.in_(list(listed)), t.c.account.not_in(list(accounts)))
        conn.execute(delete(t).where(t.c.provider == provider, replaced))
        if rows:
            conn.execute(insert(t), rows)
    return len(rows)
