"""The daily status summary for billing staff, read from the invoice database.

The window starts where the latest mail that was actually sent ended (``invoice_notification``), so
a mail that failed to go out does not lose its events: the next run reports them. Events come from
``invoice_sync_attempt``; per invoice only the latest finished sync attempt of the window counts (a
checksum error fixed by a later manual sync shows as activated), while every deactivation is listed.

A usage checksum error (daily-rated usage against the reconciliation lines) is retried by the next scheduled
run; until its escalation day (``usage_escalation_day``, kept in the attempt's diagnostics) it is listed as
waiting for daily-rated usage, which needs no person; from that day on it needs attention like any other.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation

from sqlalchemy import and_, func, insert, or_, select
from sqlalchemy.engine import Engine

from include.sql.schema import invoice_notification, invoice_sync_attempt, provider_invoice

WAITING_STATUSES = ("checksum_error", "failed")
"""Invoice statuses that need a person; a loaded but inactive (and not deactivated) invoice does too."""

FAILURE_OUTCOMES = ("failed", "activation_blocked")


@dataclass(frozen=True)
class Hint:
    """The best-ranked likely cause from the checksum diagnostics."""

    cause: str
    amount: Decimal | None
    evidence: str
    action: str


@dataclass(frozen=True)
class InvoiceEntry:
    """One invoice line of the mail; which fields are set depends on the section it is in."""

    provider: str
    invoice_id: str
    at: datetime
    status: str
    account: str | None = None
    """The connection id of the provider account (shown when the provider has several)."""
    currency_code: str | None = None
    header_total: Decimal | None = None
    detail_total: Decimal | None = None
    difference: Decimal | None = None
    line_count: int | None = None
    """The invoice's lines: loaded, or for a checksum error the lines its checksum validated."""
    message: str | None = None
    hint: Hint | None = None
    task_url: str | None = None
    by: str | None = None
    usage_escalates_on: date | None = None
    """Set for a usage checksum error: the day from which it needs a person."""
    usage_check: bool = False
    """The entry is a usage checksum error (daily-rated usage against the reconciliation lines)."""

    def usage_pending(self, on: date) -> bool:
        """A usage checksum error that is still retried by itself on day ``on`` (not escalated yet)."""
        return self.usage_check and self.usage_escalates_on is not None and on < self.usage_escalates_on


@dataclass(frozen=True)
class StatusReport:
    window_start: datetime
    window_end: datetime
    activated: tuple[InvoiceEntry, ...]
    checksum_errors: tuple[InvoiceEntry, ...]
    failures: tuple[InvoiceEntry, ...]
    deactivations: tuple[InvoiceEntry, ...]
    waiting: tuple[InvoiceEntry, ...]
    usage_pending: tuple[InvoiceEntry, ...] = ()
    """Usage checksum errors before their escalation day: retried daily, no person needed yet."""
    several_accounts: frozenset[str] = frozenset()
    """Providers whose invoices come from more than one account: their entries name the account."""

    def sections(self) -> dict[str, tuple[InvoiceEntry, ...]]:
        """Section name -> entries, in the order the mail shows them (what needs a person first)."""
        return {
            "checksum_errors": self.checksum_errors,
            "failures": self.failures,
            "waiting": self.waiting,
            "usage_pending": self.usage_pending,
            "activated": self.activated,
            "deactivations": self.deactivations,
        }

    @property
    def needs_attention(self) -> bool:
        return bool(self.checksum_errors or self.failures or self.waiting)

    @property
    def is_empty(self) -> bool:
        return not any(self.sections().values())

    def providers(self) -> list[str]:
        return sorted({entry.provider for entries in self.sections().values() for entry in entries})


def window_start(engine: Engine, fallback: datetime) -> datetime:
    """End of the window of the latest mail sent, or ``fallback`` when none was ever sent."""
    with engine.connect() as conn:
        previous = conn.execute(
            select(invoice_notification.c.window_end).order_by(invoice_notification.c.sent_at.desc()).limit(1)
        ).scalar()
    return as_utc(previous) if previous is not None else as_utc(fallback)


def build_report(engine: Engine, start: datetime, end: datetime, *, today: date | None = None) -> StatusReport:
    """Everything that happened in ``[start, end)`` plus what is still waiting from before ``start``; usage
    checksum errors are judged escalated or not on ``today`` (the day ``end`` falls on unless given)."""
    start, end = as_utc(start), as_utc(end)
    attempts = _finished_attempts(engine, start, end)
    latest = {(row.provider, row.invoice_id): row for row in attempts if row.outcome != "deactivated"}
    by_outcome: dict[str, list[InvoiceEntry]] = {}
    for row in latest.values():
        by_outcome.setdefault(row.outcome, []).append(_attempt_entry(row))
    today = today or end.date()
    errors = by_outcome.get("checksum_error", ())
    waiting = _waiting(engine, start)
    return StatusReport(
        window_start=start,
        window_end=end,
        activated=_sorted(by_outcome.get("activated", ())),
        checksum_errors=_sorted(e for e in errors if not e.usage_pending(today)),
        failures=_sorted(entry for outcome in FAILURE_OUTCOMES for entry in by_outcome.get(outcome, ())),
        deactivations=_sorted(_attempt_entry(row) for row in attempts if row.outcome == "deactivated"),
        waiting=tuple(e for e in waiting if not e.usage_pending(today)),
        usage_pending=_sorted(
            [*(e for e in errors if e.usage_pending(today)), *(e for e in waiting if e.usage_pending(today))]
        ),
        several_accounts=frozenset(several_accounts(engine)),
    )


def several_accounts(engine: Engine) -> list[str]:
    """The providers whose invoices come from more than one account: where the mail and the workspace name it."""
    inv = provider_invoice
    query = select(inv.c.provider).group_by(inv.c.provider).having(func.count(func.distinct(inv.c.account)) > 1)
    with engine.connect() as conn:
        return sorted(conn.execute(query).scalars())


def record_notification(
    engine: Engine,
    *,
    dag_id: str,
    run_id: str,
    report: StatusReport,
    recipients: list[str],
    subject: str,
    sent_at: datetime,
) -> None:
    """Remember a mail the SMTP server accepted; the next report starts at its ``window_end``."""
    with engine.begin() as conn:
        conn.execute(
            insert(invoice_notification).values(
                dag_id=dag_id,
                run_id=run_id,
                window_start=report.window_start,
                window_end=report.window_end,
                recipients=json.dumps(recipients),
                subject=subject,
                sent_at=as_utc(sent_at),
            )
        )


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes (stored as UTC); make every timestamp aware UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _finished_attempts(engine: Engine, start: datetime, end: datetime) -> list:
    a, inv = invoice_sync_attempt, provider_invoice
    query = (
        select(
            a.c.provider,
            a.c.invoice_id,
            a.c.account,
            a.c.outcome,
            a.c.header_total,
            a.c.detail_total,
            a.c.difference,
            a.c.message,
            a.c.diagnostics,
            a.c.task_url,
            a.c.triggered_by,
            a.c.finished_at,
            inv.c.currency_code,
            inv.c.line_count,
        )
        .outerjoin(inv, and_(inv.c.provider == a.c.provider, inv.c.invoice_id == a.c.invoice_id))
        .where(a.c.finished_at >= start, a.c.finished_at < end, a.c.outcome != "running")
        .order_by(a.c.finished_at, a.c.id)
    )
    with engine.connect() as conn:
        return list(conn.execute(query))


def _usage_fields(diagnostics: str | None) -> dict:
    """``usage_check`` and ``usage_escalates_on`` from an attempt's diagnostics JSON (a failed usage checksum)."""
    try:
        data = json.loads(diagnostics or "{}")
        if data.get("check") != "usage":
            return {}
        escalates_on = (data.get("usage") or {}).get("escalates_on")
        return {"usage_check": True, "usage_escalates_on": date.fromisoformat(escalates_on) if escalates_on else None}
    except (ValueError, AttributeError, TypeError):
        return {}


def _attempt_entry(row) -> InvoiceEntry:
    return InvoiceEntry(
        **(_usage_fields(row.diagnostics) if row.outcome == "checksum_error" else {}),
        provider=row.provider,
        invoice_id=row.invoice_id,
        at=as_utc(row.finished_at),
        status=row.outcome,
        account=row.account,
        currency_code=row.currency_code,
        header_total=row.header_total,
        detail_total=row.detail_total,
        difference=row.difference,
        line_count=row.line_count,
        message=row.message,
        hint=top_hint(row.diagnostics) if row.outcome == "checksum_error" else None,
        task_url=row.task_url,
        by=row.triggered_by,
    )


def _waiting(engine: Engine, start: datetime) -> tuple[InvoiceEntry, ...]:
    """Invoices that needed a person already before the window and still do, with their latest task link."""
    inv, a = provider_invoice, invoice_sync_attempt
    latest_url = (
        select(a.c.task_url)
        .where(a.c.provider == inv.c.provider, a.c.invoice_id == inv.c.invoice_id, a.c.task_url.is_not(None))
        .order_by(a.c.started_at.desc(), a.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    latest_diagnostics = (
        select(a.c.diagnostics)
        .where(a.c.provider == inv.c.provider, a.c.invoice_id == inv.c.invoice_id, a.c.outcome == "checksum_error")
        .order_by(a.c.started_at.desc(), a.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    query = select(inv, latest_url.label("task_url"), latest_diagnostics.label("diagnostics")).where(
        or_(
            inv.c.status.in_(WAITING_STATUSES),
            and_(inv.c.status == "inactive", inv.c.deactivated_at.is_(None)),
        ),
        inv.c.updated_at < start,
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return _sorted(
        InvoiceEntry(
            **(_usage_fields(row.diagnostics) if row.status == "checksum_error" else {}),
            provider=row.provider,
            invoice_id=row.invoice_id,
            at=as_utc(row.updated_at),
            status=row.status,
            account=row.account,
            currency_code=row.currency_code,
            header_total=row.header_total,
            detail_total=row.detail_total,
            difference=row.difference,
            message=row.status_message,
            task_url=row.task_url,
        )
        for row in rows
    )


def top_hint(diagnostics: str | None) -> Hint | None:
    """The first of the ranked ``hints`` in an attempt's diagnostics JSON; None when absent or unreadable."""
    try:
        hints = json.loads(diagnostics or "{}").get("hints") or []
        best = hints[0]
        return Hint(
            cause=str(best.get("cause", "")),
            amount=_decimal(best.get("amount")),
            evidence=str(best.get("evidence", "")),
            action=str(best.get("action", "")),
        )
    except (ValueError, AttributeError, IndexError, KeyError, TypeError):
        return None


def _decimal(value) -> Decimal | None:
    try:
        return Decimal(str(value)) if value is not None else None
    except InvalidOperation:
        return None


def _sorted(entries: Iterable[InvoiceEntry]) -> tuple[InvoiceEntry, ...]:
    return tuple(sorted(entries, key=lambda e: (e.provider, e.at, e.invoice_id)))
