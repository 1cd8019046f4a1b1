"""The usage checksum: Azure usage in the reconciliation lines against Microsoft's billed daily-rated usage.

Azure consumption is billed on to customers from the daily-rated usage (the finest grain), so before an
invoice is activated its daily-rated pre-tax total must agree with the pre-tax Azure usage of the
reconciliation lines within the provider's ``usage_mismatch_tolerance`` (or the override). Microsoft
publishes the daily-rated set a day or two after the invoice, often incomplete at first: then the import
fails with a checksum error, is retried by the next scheduled run (the sync lists ``checksum_error``
invoices again), and from day ``usage_escalation_day`` of the month after the billing period it needs a
person (the daily mail's "needs attention", the optional alert).

When it fails, one row per subscription whose two totals differ goes to ``invoice_usage_mismatch`` and to
a CSV file beside the Data Docs (largest |difference| first), and the on-call report names the top
subscriptions and says whether the daily-rated set looks partial (usage dates stop before the period end).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from include.model import InvoiceHeader
from include.settings import SETTINGS_VARIABLE, ProviderSettings
from include.sql.usage import SubscriptionUsage, compare_staged_usage, exact_sum

NOT_PUBLISHED = "daily-rated usage not published yet"
TOP_SUBSCRIPTIONS = 5
"""Subscriptions the report and the message name."""
CSV_COLUMNS = (
    "provider",
    "invoice_id",
    "run_id",
    "customer_id",
    "subscription_id",
    "reconciliation_pre_tax",
    "daily_rated_pre_tax",
    "difference",
    "last_usage_date",
)
MISMATCH_DIR = "usage_mismatches"
"""Under the Data Docs root, so whatever serves the Data Docs serves the CSV files too."""


def today() -> date:
    """The day the escalation is judged on (UTC); a function so tests can set the clock."""
    return datetime.now(UTC).date()


def escalation_date(header: InvoiceHeader, settings: ProviderSettings) -> date | None:
    """Day ``usage_escalation_day`` of the month after the billing period (clamped to that month's last day).

    Without a period end the invoice month stands in for "the month after"; without either, None (escalate
    at once: nothing says the wait is normal).
    """
    if header.billing_period_end is not None:
        after = (header.billing_period_end.replace(day=1) + timedelta(days=32)).replace(day=1)
    elif header.invoice_date is not None:
        after = header.invoice_date.replace(day=1)
    else:
        return None
    month_end = (after + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    return after.replace(day=min(settings.usage_escalation_day, month_end.day))


@dataclass(frozen=True)
class UsageCheck:
    """The outcome of one usage checksum, with everything the report, the mail and the CSV need."""

    header: InvoiceHeader
    rows: tuple[SubscriptionUsage, ...]
    tolerance: Decimal
    success: bool
    failed_expectations: tuple[str, ...] = ()
    data_docs_page: str | None = None
    escalates_on: date | None = None
    checked_on: date | None = None
    csv_path: Path | None = None

    @property
    def reconciliation_pre_tax(self) -> Decimal:
        return exact_sum(row.reconciliation_pre_tax for row in self.rows)

    @property
    def daily_rated_pre_tax(self) -> Decimal:
        return exact_sum(row.daily_rated_pre_tax for row in self.rows)

    @property
    def difference(self) -> Decimal:
        """Reconciliation minus daily-rated, exact."""
        return exact_sum((self.reconciliation_pre_tax, -self.daily_rated_pre_tax))

    @property
    def daily_rated_lines(self) -> int:
        return sum(row.daily_rated_lines for row in self.rows)

    @property
    def not_published(self) -> bool:
        return self.daily_rated_lines == 0

    @property
    def mismatches(self) -> list[SubscriptionUsage]:
        """Subscriptions whose totals differ, largest |difference| first (ties by subscription id)."""
        return sorted(
            (row for row in self.rows if row.difference != 0),
            key=lambda row: (-abs(row.difference), row.subscription_id or ""),
        )

    @property
    def partial(self) -> list[SubscriptionUsage]:
        """Differing subscriptions whose daily-rated usage stops before the period end (or is missing)."""
        end = self.header.billing_period_end
        return [
            row
            for row in self.mismatches
            if row.last_usage_date is None or (end is not None and row.last_usage_date < end)
        ]

    @property
    def escalated(self) -> bool:
        return self.escalates_on is None or (self.checked_on or today()) >= self.escalates_on


def usage_frame(rows: Iterable[SubscriptionUsage], currency_code: str):
    """One row per subscription for the GX suite: Decimals stay Decimal objects (never float)."""
    import pandas as pd

    rows = list(rows)
    return pd.DataFrame(
        {
            "subscription_id": pd.Series([row.subscription_id or "" for row in rows], dtype=object),
            "customer_id": pd.Series([row.customer_id for row in rows], dtype=object),
            "currency_code": pd.Series([row.currency_code or currency_code for row in rows], dtype=object),
            "reconciliation_pre_tax": pd.Series([row.reconciliation_pre_tax for row in rows], dtype=object),
            "daily_rated_pre_tax": pd.Series([row.daily_rated_pre_tax for row in rows], dtype=object),
            "difference": pd.Series([row.difference for row in rows], dtype=object),
        }
    )


def check_usage(
    engine,
    suite_file: str,
    header: InvoiceHeader,
    stage_id: str,
    *,
    tolerance: Decimal,
    settings: ProviderSettings,
    validation_name: str,
    run_name: str,
    compared: Sequence[SubscriptionUsage] | None = None,
) -> UsageCheck | None:
    """Run the usage suite on the staged reconciliation and daily-rated usage; None when the invoice has no
    Azure usage on either side (nothing to compare). Daily-rated usage missing altogether is a failure of its
    own, whatever the tolerance: an empty set must never pass.

    ``compared``: :func:`compare_staged_usage` of this stage when the caller already read it (the checksum
    operator reads it while the line checksum runs); read here otherwise."""
    from include.checksum.data_docs import data_docs_url
    from include.checksum.validation import validate_usage

    rows = tuple(compare_staged_usage(engine, stage_id) if compared is None else compared)
    if not any(row.reconciliation_lines or row.daily_rated_lines for row in rows):
        return None
    check = UsageCheck(
        header=header,
        rows=rows,
        tolerance=tolerance,
        success=False,
        escalates_on=escalation_date(header, settings),
        checked_on=today(),
    )
    if check.not_published:
        return check
    outcome = validate_usage(
        suite_file,
        usage_frame(rows, header.currency_code),
        reconciliation_pre_tax=check.reconciliation_pre_tax,
        tolerance=tolerance,
        invoice_currencies=[header.currency_code],
        validation_name=validation_name,
        run_name=run_name,
    )
    if outcome.observed_sum_micros != check.daily_rated_pre_tax:
        raise RuntimeError(
            f"GX observed a daily-rated total of {outcome.observed_sum_micros} but SQL summed "
            f"{check.daily_rated_pre_tax}; the staged usage changed during validation."
        )
    return _replace(
        check,
        success=outcome.success,
        failed_expectations=outcome.failed_expectations,
        data_docs_page=data_docs_url(outcome.data_docs_page),  # over HTTP from [api] base_url, as the lines' page
    )


def _replace(check: UsageCheck, **changes) -> UsageCheck:
    return dataclasses.replace(check, **changes)


def _amount(value: Decimal) -> str:
    """Positional, never rounded, without trailing zeros past the cents (PostgreSQL's NUMERIC(38,16) has 16)."""
    value = value.normalize() if value else Decimal(0)
    return f"{value.quantize(Decimal('0.01')) if value.as_tuple().exponent > -2 else value:f}"


def _where(row: SubscriptionUsage) -> str:
    return f"subscription {row.subscription_id or '(none)'} (customer {row.customer_id or 'unknown'})"


def partial_sentence(check: UsageCheck) -> str | None:
    """Whether the daily-rated set looks partial, in one sentence; None when nothing suggests it."""
    partial = check.partial
    if not partial:
        return None
    end = check.header.billing_period_end
    shown = "; ".join(
        f"{row.subscription_id or '(none)'} "
        + (f"stops at {row.last_usage_date}" if row.last_usage_date else "has no daily-rated usage")
        for row in partial[:TOP_SUBSCRIPTIONS]
    )
    more = f" and {len(partial) - TOP_SUBSCRIPTIONS} more" if len(partial) > TOP_SUBSCRIPTIONS else ""
    return (
        f"The daily-rated set looks partial: usage dates of {len(partial)} subscription(s) stop before the "
        f"period end {end or '(unknown)'} ({shown}{more})."
    )


def retry_sentence(check: UsageCheck) -> str:
    if check.escalated:
        since = f" since {check.escalates_on}" if check.escalates_on else ""
        return (
            f"Escalated{since} (usage_escalation_day in the {SETTINGS_VARIABLE} variable): it still fails late in "
            "the month, so a person must look at it."
        )
    return (
        f"Retried by the next scheduled run without a person; it needs attention from {check.escalates_on} "
        f"(usage_escalation_day in the {SETTINGS_VARIABLE} variable)."
    )


def failure_message(check: UsageCheck, invoice_label: str) -> str:
    """The one-paragraph reason of a failed usage checksum: task exception, attempt and invoice message."""
    cur = check.header.currency_code
    if check.not_published:
        head = (
            f"Checksum error on {invoice_label}: {NOT_PUBLISHED} (the reconciliation lines carry "
            f"{_amount(check.reconciliation_pre_tax)} {cur} of pre-tax Azure usage, Microsoft returned no "
            "daily-rated usage line)."
        )
    else:
        head = (
            f"Checksum error on {invoice_label} (Azure usage): reconciliation pre-tax usage "
            f"{_amount(check.reconciliation_pre_tax)} - daily-rated {_amount(check.daily_rated_pre_tax)} = "
            f"{_amount(check.difference)} {cur}, outside the tolerance {check.tolerance}"
            + (f"; failed expectations: {', '.join(check.failed_expectations)}" if check.failed_expectations else "")
            + "."
        )
        top = check.mismatches[:1]
        if top:
            head += f" Largest difference: {_where(top[0])}, {_amount(top[0].difference)} {cur}."
        partial = partial_sentence(check)
        if partial:
            head += f" {partial}"
    return f"{head} {retry_sentence(check)}"


def render_report(check: UsageCheck, invoice_label: str) -> str:
    """Fixed-width text for the top of the failed task's log."""
    cur = check.header.currency_code
    lines = [
        f"Checksum FAILED: {invoice_label} - Azure usage: "
        + (NOT_PUBLISHED if check.not_published else f"daily-rated usage differs by {_amount(check.difference)} {cur}")
        + ".",
        "",
        f"  Billing period {check.header.billing_period_start} to {check.header.billing_period_end}",
        f"  Reconciliation pre-tax Azure usage  {_amount(check.reconciliation_pre_tax):>24} {cur}",
        f"  Daily-rated pre-tax usage           {_amount(check.daily_rated_pre_tax):>24} {cur}",
        f"  Difference                          {_amount(check.difference):>24} {cur} (reconciliation - daily-rated)",
        f"  Tolerance                           {_amount(check.tolerance):>24} {cur}",
        f"  Daily-rated lines                   {check.daily_rated_lines:>24}",
    ]
    mismatches = check.mismatches
    if mismatches:
        lines += ["", f"Subscriptions whose totals differ ({len(mismatches)}), largest first:"]
        table = [("Subscription", "Customer", "Reconciliation", "Daily-rated", "Difference", "Last usage")]
        table += [
            (
                row.subscription_id or "(none)",
                row.customer_id or "",
                _amount(row.reconciliation_pre_tax),
                _amount(row.daily_rated_pre_tax),
                _amount(row.difference),
                str(row.last_usage_date or "none"),
            )
            for row in mismatches[:TOP_SUBSCRIPTIONS]
        ]
        widths = [max(len(row[i]) for row in table) for i in range(6)]
        align = "<<>>><"
        lines += [
            "  " + "  ".join(f"{cell:{a}{w}}" for cell, a, w in zip(row, align, widths, strict=True)).rstrip()
            for row in table
        ]
        if len(mismatches) > TOP_SUBSCRIPTIONS:
            lines.append(f"  ... and {len(mismatches) - TOP_SUBSCRIPTIONS} more in the CSV")
    partial = partial_sentence(check)
    if partial:
        lines += ["", partial]
    lines += ["", retry_sentence(check)]
    lines += ["", f"Mismatch CSV: {check.csv_path or 'not written'}"]
    lines += [f"Data Docs: {check.data_docs_page or 'not available for this run'}"]
    return "\n".join(lines)


def report_json(check: UsageCheck) -> dict:
    """The same facts, JSON-safe, for the attempt's diagnostics (the mail reads ``escalates_on`` from it)."""
    return {
        "passed": check.success,
        "not_published": check.not_published,
        "reconciliation_pre_tax": f"{check.reconciliation_pre_tax:f}",
        "daily_rated_pre_tax": f"{check.daily_rated_pre_tax:f}",
        "difference": f"{check.difference:f}",
        "tolerance": f"{check.tolerance:f}",
        "daily_rated_lines": check.daily_rated_lines,
        "mismatching_subscriptions": len(check.mismatches),
        "partial": [row.subscription_id for row in check.partial],
        "escalates_on": check.escalates_on.isoformat() if check.escalates_on else None,
        "escalated": check.escalated,
        "csv": str(check.csv_path) if check.csv_path else None,
        "data_docs_page": check.data_docs_page,
    }


def hint(check: UsageCheck) -> dict:
    """The first hint of a failed usage checksum, in the shape of :func:`include.checksum.diagnostics.report_json`."""
    top = check.mismatches[:1]
    evidence = partial_sentence(check) or (
        f"Largest difference: {_where(top[0])}, {_amount(top[0].difference)} {check.header.currency_code}."
        if top
        else "The daily-rated usage and the reconciliation lines differ."
    )
    return {
        "cause": "usage_not_published" if check.not_published else "usage_mismatch",
        "amount": _amount(check.difference),
        "explains": True,
        "match": "exact",
        "evidence": f"{NOT_PUBLISHED.capitalize()}." if check.not_published else evidence,
        "action": retry_sentence(check),
    }


def mismatch_csv(rows: Iterable[dict]) -> str:
    """CSV text of mismatch rows (as :func:`include.sql.usage.mismatches` returns them: largest first)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow([_cell(row.get(column)) for column in CSV_COLUMNS])
    return buffer.getvalue()


def _cell(value) -> str:
    """A CSV cell: amounts exact and the same on both databases (no trailing zeros of the column's scale)."""
    if value is None:
        return ""
    return _amount(value) if isinstance(value, Decimal) else str(value)


def csv_rows(check: UsageCheck, provider: str, run_id: str) -> list[dict]:
    return [row.mismatch_row(provider, check.header.invoice_id, run_id) for row in check.mismatches]


def csv_path(docs_root: Path, provider: str, invoice_id: str, run_id: str) -> Path:
    """``<Data Docs root>/usage_mismatches/<provider>/<invoice>/<run>.csv`` with every part made path-safe."""

    def safe(part: str) -> str:
        return re.sub(r"[^A-Za-z0-9._-]", "_", part).lstrip(".") or "_"

    return docs_root / MISMATCH_DIR / safe(provider) / safe(invoice_id) / f"{safe(run_id)}.csv"


def write_mismatch_csv(check: UsageCheck, provider: str, run_id: str, docs_root: Path) -> UsageCheck:
    """Write the CSV (atomically: a reader never sees half a file) and return the check that names it."""
    path = csv_path(docs_root, provider, check.header.invoice_id, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".csv.tmp")
    partial.write_text(mismatch_csv(csv_rows(check, provider, run_id)), encoding="utf-8")
    partial.replace(path)
    return _replace(check, csv_path=path)
