"""One checksum run: staged lines + header -> GX suite, exact totals, diagnosis and the on-call sentence.

A plain function, so the ``checksum_validation`` operator only records what it returns (and tests can
run it without Airflow). The SQL totals and the sum GX observes are read from the same stage, and
must agree to the micro: if they do not, the stage changed under the validation.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from include.checksum.data_docs import data_docs_url
from include.checksum.diagnostics import DiagnosisInput, SiblingInvoice, diagnose, render_report, report_json
from include.model import from_micros, to_micros

if TYPE_CHECKING:
    from include.model import InvoiceHeader
    from include.providers import ProviderSpec
    from include.settings import ProviderSettings
    from include.sql.store import InvoiceStore


class StageChanged(RuntimeError):
    """GX and SQL saw different staged lines."""


@dataclass(frozen=True)
class ChecksumResult:
    passed: bool
    totals: dict[str, Decimal]
    """``header_total``, ``detail_total``, ``difference`` (= header - detail), ``tolerance_applied``."""
    diagnostics: dict
    """The breakdown and ranked hints, as stored on the attempt."""
    data_docs_page: str | None
    message: str | None = None
    """On failure: the one paragraph an on-call engineer reads first."""
    report: str | None = None
    """On failure: the full on-call report for the task log."""


def run_checksum(
    store: InvoiceStore,
    spec: ProviderSpec,
    header: InvoiceHeader,
    stage_id: str,
    *,
    settings: ProviderSettings,
    tolerance: Decimal,
    validation_name: str,
    run_name: str,
) -> ChecksumResult:
    """Validate the staged lines of ``header`` with the provider's suite; nothing is written here."""
    header_tax = header.header_tax if settings.tax == "header" and header.header_tax else None
    stage = store.stage(stage_id)
    amounts = stage.amounts_view(
        header_tax_micros=to_micros(header_tax) if header_tax else 0, currency_code=header.currency_code
    )
    # The database computes the totals while GX is imported (seconds of CPU), set up and queries.
    with amounts as view, ThreadPoolExecutor(1) as pool:
        summary_read = pool.submit(stage.summary)
        from include.checksum.validation import StagedLines, validate_lines

        outcome = validate_lines(
            spec.suite_file,
            StagedLines(url=store.engine.url.render_as_string(hide_password=False), table=view),
            header_total_micros=to_micros(header.header_total),
            tolerance_micros=to_micros(tolerance),
            invoice_currencies=[header.currency_code],
            validation_name=validation_name,
            run_name=run_name,
        )
        summary = summary_read.result()
    breakdown = dict(summary.breakdown)
    line_counts = dict(summary.line_counts)
    if header_tax:
        breakdown["tax"] = breakdown.get("tax", Decimal(0)) + header_tax
        line_counts["tax"] = line_counts.get("tax", 0) + 1
    detail_total = from_micros(sum(to_micros(v) for v in breakdown.values()))
    if outcome.observed_sum_micros is not None and outcome.observed_sum_micros != to_micros(detail_total):
        raise StageChanged(
            f"GX observed a detail total of {from_micros(outcome.observed_sum_micros)} but SQL summed "
            f"{detail_total}; the staged lines changed during validation."
        )
    difference = header.header_total - detail_total
    totals = {
        "header_total": header.header_total,
        "detail_total": detail_total,
        "difference": difference,
        "tolerance_applied": tolerance,
    }
    diagnosis = DiagnosisInput(
        header=header,
        detail_total=detail_total,
        tolerance=tolerance,
        breakdown=breakdown,
        line_counts=line_counts,
        currency_totals=summary.currency_totals,
        usage_last_charge_end=summary.usage_last_charge_end,
        settings=settings,
        provider_display_name=spec.display_name,
        sibling_invoices=[SiblingInvoice(**row) for row in store.sibling_invoices(header, settings.account)],
        unreported_categories=spec.unreported_categories,
    )
    hints = diagnose(diagnosis)
    docs_url = data_docs_url(outcome.data_docs_page)  # over HTTP from [api] base_url, not a file:// path
    diagnostics = {**report_json(diagnosis, hints), "data_docs": docs_url}
    if outcome.success:
        return ChecksumResult(True, totals, diagnostics, docs_url)

    label = f"{spec.display_name} invoice {header.invoice_id}"
    message = _failure_message(label, header, totals, summary.currency_totals, outcome, hints)
    # the headline names the provider itself: the label is the invoice id alone
    report = render_report(diagnosis, hints, invoice_label=header.invoice_id, data_docs=docs_url)
    return ChecksumResult(False, totals, diagnostics, docs_url, message, report)


def _failure_message(label: str, header, totals: dict, currency_totals: dict, outcome, hints) -> str:
    """One sentence: lines in another currency than the header say so (their sum in the header's currency
    means nothing); otherwise header, detail, difference and tolerance; then what GX refused and the likeliest cause."""
    own = header.currency_code.upper()
    foreign = {code: total for code, total in sorted(currency_totals.items()) if code.upper() != own}
    if foreign:
        listing = ", ".join(f"{total} {code}" for code, total in foreign.items())
        what = f"the header is in {header.currency_code or 'no currency'} but lines are in other currencies ({listing})"
    else:
        what = (
            f"header {totals['header_total']} - detail {totals['detail_total']} = {totals['difference']}, "
            f"outside the tolerance {totals['tolerance_applied']}"
        )
    failed = f"; failed expectations: {', '.join(outcome.failed_expectations)}" if outcome.failed_expectations else ""
    cause = f"; likely cause: {hints[0].evidence.rstrip('.')}" if hints and not foreign else ""
    return f"Checksum error on {label}: {what}{failed}{cause}."
