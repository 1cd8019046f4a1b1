"""Subject, plain-text and HTML body of the daily status mail, from one :class:`StatusReport`.

Both bodies are rendered from the same list of :class:`Item` so they never say different things;
the HTML escapes every value that comes from the database or a provider.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from include.model import CENT
from include.providers import PROVIDERS
from include.sql.status_report import InvoiceEntry, StatusReport

SECTION_TITLES = {
    "checksum_errors": "Checksum errors: blocked, nothing loaded",
    "failures": "Failures",
    "waiting": "Still waiting from earlier days",
    "usage_pending": "Waiting for Microsoft's daily-rated usage: retried daily, needs attention from the day shown",
    "activated": "Activated",
    "deactivations": "Deactivated",
}
STATUS_LABELS = {
    "checksum_error": "checksum error",
    "failed": "failed",
    "activation_blocked": "activation blocked",
    "inactive": "loaded, not active",
}


@dataclass(frozen=True)
class Mail:
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class Item:
    """One invoice in the mail: a headline, detail lines and an optional link to the Airflow task."""

    headline: str
    details: tuple[str, ...] = ()
    link: str | None = None


def render(report: StatusReport) -> Mail:
    return Mail(subject=subject(report), text=render_text(report), html=render_html(report))


def subject(report: StatusReport) -> str:
    """``[ACTION NEEDED]`` when a person must act, so the inbox alone tells whether to open it."""
    day = report.window_end.date().isoformat()
    return f"{'[ACTION NEEDED]' if report.needs_attention else '[OK]'} Provider invoices {day}: {summary(report)}"


def summary(report: StatusReport) -> str:
    if report.is_empty:
        return "nothing new"
    counts = [
        _count(len(report.checksum_errors), "checksum error"),
        _count(len(report.failures), "failure"),
        _count(len(report.waiting), "still waiting", plural="still waiting"),
        _count(len(report.usage_pending), "waiting for daily-rated usage", plural="waiting for daily-rated usage"),
        _count(len(report.activated), "activated", plural="activated"),
        _count(len(report.deactivations), "deactivated", plural="deactivated"),
    ]
    parts = [part for part in counts if part]
    if not report.needs_attention:
        parts.append("nothing blocked")
    return ", ".join(parts)


def render_text(report: StatusReport) -> str:
    lines = [_window(report), "", summary(report).capitalize() + "."]
    for provider, sections in _grouped(report):
        lines += ["", provider, "=" * len(provider)]
        for title, items in sections:
            lines += ["", f"{title} ({len(items)})"]
            for item in items:
                lines.append(f"  - {item.headline}")
                lines += [f"    {detail}" for detail in item.details]
                if item.link:
                    lines.append(f"    Airflow task: {item.link}")
    return "\n".join(lines) + "\n"


def render_html(report: StatusReport) -> str:
    e = html.escape
    colour = "#b00020" if report.needs_attention else "#1b5e20"
    parts = [
        '<html><body style="font-family: sans-serif">',
        f"<p>{e(_window(report))}</p>",
        f'<p style="color: {colour}; font-weight: bold">{e(summary(report).capitalize())}.</p>',
    ]
    for provider, sections in _grouped(report):
        parts.append(f"<h2>{e(provider)}</h2>")
        for title, items in sections:
            parts.append(f"<h3>{e(title)} ({len(items)})</h3><ul>")
            for item in items:
                details = "".join(f"<br>{e(detail)}" for detail in item.details)
                link = f'<br><a href="{e(item.link)}">Airflow task</a>' if _linkable(item.link) else ""
                parts.append(f"<li><b>{e(item.headline)}</b>{details}{link}</li>")
            parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _grouped(report: StatusReport) -> list[tuple[str, list[tuple[str, list[Item]]]]]:
    """Provider display name -> non-empty sections, each with its items."""
    grouped = []
    for provider in report.providers():
        sections = [
            (
                SECTION_TITLES[name],
                [
                    _item(name, entry, show_account=provider in report.several_accounts)
                    for entry in entries
                    if entry.provider == provider
                ],
            )
            for name, entries in report.sections().items()
        ]
        grouped.append((_display_name(provider), [(title, items) for title, items in sections if items]))
    return grouped


def _item(section: str, entry: InvoiceEntry, *, show_account: bool = False) -> Item:
    """``show_account``: the provider has several accounts, so the invoice is named with its account's."""
    currency = entry.currency_code or ""
    label = f"{entry.invoice_id} ({entry.account})" if show_account and entry.account else entry.invoice_id
    if section == "checksum_errors":
        details = ()
        if entry.hint:
            amount = f" ({money(entry.hint.amount)} {currency})" if entry.hint.amount is not None else ""
            details = (
                f"Likely cause: {entry.hint.cause}{amount}: {entry.hint.evidence}",
                f"What to do: {entry.hint.action}",
            )
        return Item(
            f"{label}: header {money(entry.header_total)}, detail {money(entry.detail_total)}"
            f"{_in_lines(entry.line_count)}, difference {money(entry.difference)} {currency}".rstrip(),
            details,
            entry.task_url,
        )
    if section == "activated":
        return Item(f"{label}: {money(entry.header_total)} {currency}".rstrip())
    if section == "deactivations":
        return Item(
            f"{label}: deactivated by {entry.by or 'unknown'} at {_when(entry.at)}",
            (f"Reason: {entry.message or 'none given'}",),
        )
    status = STATUS_LABELS.get(entry.status, entry.status)
    since = f" since {_when(entry.at)}" if section == "waiting" else f" at {_when(entry.at)}"
    difference = f", difference {money(entry.difference)} {currency}".rstrip() if entry.difference else ""
    return Item(
        f"{label}: {status}{since}{difference}",
        (entry.message,) if entry.message else (),
        entry.task_url,
    )


def money(amount: Decimal | None) -> str:
    """Thousands separators and at least two decimals, never rounding away a real fraction of a cent."""
    if amount is None:
        return "n/a"
    cents = amount.quantize(CENT)
    return format(cents if cents == amount else amount.normalize(), ",f")


def _in_lines(count: int | None) -> str:
    return "" if count is None else f" in {count:,} line{'' if count == 1 else 's'}"


def _count(n: int, singular: str, *, plural: str | None = None) -> str:
    if not n:
        return ""
    return f"{n} {singular if n == 1 else plural or singular + 's'}"


def _window(report: StatusReport) -> str:
    return f"Provider invoice sync status from {_when(report.window_start)} to {_when(report.window_end)}"


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _linkable(url: str | None) -> bool:
    return bool(url) and url.lower().startswith(("http://", "https://"))


def _display_name(provider: str) -> str:
    spec = PROVIDERS.get(provider)
    return spec.display_name if spec else provider
