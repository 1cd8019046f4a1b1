"""Read-only queries behind the invoices workspace: the list, one invoice's record, the provider listing.

Nothing here writes: the workspace changes an invoice only by triggering the DAGs. Money leaves as
text in positional notation with at least two decimals and every stored digit (never a float), the
same on SQLite (micros) and PostgreSQL (NUMERIC), so the page and the CSV show what the database holds.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import and_, func, select, true
from sqlalchemy.engine import Engine

from include.model import from_micros, to_micros
from include.providers import PROVIDERS
from include.sql.schema import (
    INVOICE_STATUSES,
    invoice_sync_attempt,
    provider_invoice,
    provider_invoice_line,
    provider_invoice_listing,
    provider_invoice_note,
)
from include.sql.status_report import several_accounts

PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


class BadFilter(ValueError):
    """A filter or page value the list does not accept; the message is the sentence the caller sees."""


def money(amount: Decimal | None) -> str | None:
    """Exact text of a stored amount: ``-1329.7525``, ``12.50``, ``0.00`` (trailing zeros beyond cents dropped)."""
    if amount is None:
        return None
    exact = from_micros(to_micros(amount)).normalize()
    return f"{exact.quantize(Decimal('0.01')) if exact.as_tuple().exponent > -2 else exact:f}"


def _text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return money(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def check_filters(provider: str | None, status: str | None, period: str | None) -> date | None:
    """Refuse an unknown provider or status and a period that is not ``YYYY-MM``; returns the period's first day."""
    if provider and provider not in PROVIDERS:
        raise BadFilter(f"provider must be one of {', '.join(sorted(PROVIDERS))}, got {provider!r}.")
    if status and status not in INVOICE_STATUSES:
        raise BadFilter(f"status must be one of {', '.join(INVOICE_STATUSES)}, got {status!r}.")
    if not period:
        return None
    match = _PERIOD.match(period)
    if not match:
        raise BadFilter(f"period must be a month as YYYY-MM, got {period!r}.")
    return date(int(match[1]), int(match[2]), 1)


def _last_attempts():
    """The newest attempt of each invoice, as a subquery keyed by provider and invoice id."""
    a = invoice_sync_attempt
    newest = select(func.max(a.c.id).label("id")).group_by(a.c.provider, a.c.invoice_id).subquery()
    return select(a).join(newest, a.c.id == newest.c.id).subquery()


def list_invoices(
    engine: Engine,
    *,
    provider: str | None = None,
    status: str | None = None,
    period: str | None = None,
    page: int = 1,
    page_size: int = PAGE_SIZE,
) -> dict:
    """One page of invoices, newest first, each with its last attempt (when, outcome, who)."""
    month = check_filters(provider, status, period)
    if page < 1 or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise BadFilter(f"page must be 1 or more and page_size between 1 and {MAX_PAGE_SIZE}.")
    inv, last = provider_invoice, _last_attempts()
    conditions = []
    if provider:
        conditions.append(inv.c.provider == provider)
    if status:
        conditions.append(inv.c.status == status)
    if month:
        next_month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
        conditions.append(and_(inv.c.billing_period_start >= month, inv.c.billing_period_start < next_month))
    where = and_(true(), *conditions)
    query = (
        select(
            inv,
            last.c.started_at.label("attempt_at"),
            last.c.outcome.label("attempt_outcome"),
            last.c.triggered_by.label("attempt_by"),
            last.c.dag_id.label("attempt_dag_id"),
            last.c.run_id.label("attempt_run_id"),
        )
        .outerjoin(last, and_(last.c.provider == inv.c.provider, last.c.invoice_id == inv.c.invoice_id))
        .where(where)
        .order_by(inv.c.updated_at.desc(), inv.c.id.desc())
        .limit(page_size)
        .offset((page - 1) * page_size)
    )
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(inv).where(where)).scalar()
        rows = conn.execute(query).all()
    return {
        "total": total,
        "page": page,
        "page_size": page_size,
        "invoices": [_list_row(row._mapping) for row in rows],
        "several_accounts": several_accounts(engine),
    }


def invoice_account(engine: Engine, provider: str, invoice_id: str) -> str | None:
    """The account a manual sync of the invoice fetches from: the one it was imported from, else the one account
    whose listing offered it; None (the provider's default account) when neither tells."""
    inv, listed = provider_invoice, provider_invoice_listing
    with engine.connect() as conn:
        imported = conn.execute(
            select(inv.c.account).where(inv.c.provider == provider, inv.c.invoice_id == invoice_id)
        ).scalar()
        offered = (
            conn.execute(
                select(listed.c.account).where(listed.c.provider == provider, listed.c.invoice_id == invoice_id)
            )
            .scalars()
            .all()
        )
    return imported or (offered[0] if len(offered) == 1 else None)


LIST_COLUMNS = (
    "provider",
    "invoice_id",
    "account",
    "billing_period_start",
    "billing_period_end",
    "currency_code",
    "status",
    "header_total",
    "detail_total",
    "difference",
    "tolerance_applied",
    "line_count",
    "updated_at",
)


def _list_row(row) -> dict:
    item = {column: _text(row[column]) if column != "line_count" else row[column] for column in LIST_COLUMNS}
    item["last_attempt"] = (
        {
            "at": _text(row["attempt_at"]),
            "outcome": row["attempt_outcome"],
            "by": row["attempt_by"],
            "dag_id": row["attempt_dag_id"],
            "run_id": row["attempt_run_id"],
        }
        if row["attempt_outcome"]
        else None
    )
    return item


def invoice_record(engine: Engine, provider: str, invoice_id: str) -> dict | None:
    """Everything the workspace shows about one invoice, or ``None`` when the database does not know it."""
    inv, att, note, line = provider_invoice, invoice_sync_attempt, provider_invoice_note, provider_invoice_line
    with engine.connect() as conn:
        header = conn.execute(select(inv).where(inv.c.provider == provider, inv.c.invoice_id == invoice_id)).first()
        if header is None:
            return None
        attempts = conn.execute(
            select(att).where(att.c.provider == provider, att.c.invoice_id == invoice_id).order_by(att.c.id.desc())
        ).all()
        notes = conn.execute(
            select(note).where(note.c.provider == provider, note.c.invoice_id == invoice_id).order_by(note.c.id.desc())
        ).all()
        referenced = conn.execute(
            select(func.count()).where(
                line.c.provider == provider,
                line.c.invoice_id == invoice_id,
                line.c.customer_invoice_ref.is_not(None),
            )
        ).scalar()
    diagnosed = next((a for a in attempts if a.diagnostics), None)
    diagnostics = json.loads(diagnosed.diagnostics) if diagnosed else {}
    hints = diagnostics.get("hints") or []
    failed_task = next((a for a in attempts if a.outcome in ("checksum_error", "failed") and a.task_url), None)
    skip = {"id", "fingerprint"}
    return {
        "invoice": {k: _text(v) if k != "line_count" else v for k, v in header._mapping.items() if k not in skip},
        "breakdown": [
            {"category": category, "amount": values["amount"], "lines": values["lines"]}
            for category, values in (diagnostics.get("breakdown") or {}).items()
        ],
        "difference": diagnostics.get("difference"),
        "tolerance": diagnostics.get("tolerance"),
        "override_suggestion": diagnostics.get("override_suggestion"),
        "hints": hints,
        "next_step": hints[0]["action"] if hints else None,
        "diagnosed_by_run": diagnosed.run_id if diagnosed else None,
        "usage_mismatch_run": (
            diagnosed.run_id
            if diagnosed and diagnosed.outcome == "checksum_error" and diagnostics.get("check") == "usage"
            else None
        ),
        "data_docs": diagnostics.get("data_docs"),
        "failed_task_log": failed_task.task_url if failed_task else None,
        "referenced_lines": referenced,
        "attempts": [
            {
                "dag_id": a.dag_id,
                "run_id": a.run_id,
                "by": a.triggered_by,
                "outcome": a.outcome,
                "started_at": _text(a.started_at),
                "finished_at": _text(a.finished_at),
                "header_total": _text(a.header_total),
                "detail_total": _text(a.detail_total),
                "difference": _text(a.difference),
                "tolerance_applied": _text(a.tolerance_applied),
                "override_tolerance": _text(a.override_tolerance),
                "override_reason": a.override_reason,
                "message": a.message,
                "task_url": a.task_url,
            }
            for a in attempts
        ],
        "notes": [{"note": n.note, "by": n.author, "at": _text(n.created_at)} for n in notes],
    }


def provider_listing(engine: Engine, provider: str) -> list[dict]:
    """The invoices the provider's accounts listed at the last sync, newest period first, each with the account
    that listed it and its import status."""
    check_filters(provider, None, None)
    listed, inv = provider_invoice_listing, provider_invoice
    query = (
        select(listed, inv.c.status)
        .outerjoin(inv, and_(inv.c.provider == listed.c.provider, inv.c.invoice_id == listed.c.invoice_id))
        .where(listed.c.provider == provider)
        .order_by(listed.c.billing_period_start.desc(), listed.c.invoice_id, listed.c.account)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        {
            **{k: _text(v) for k, v in row._mapping.items() if k != "status"},
            "status": row.status or "not imported",
        }
        for row in rows
    ]
