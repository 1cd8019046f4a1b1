"""``checksum_validation``: the provider's GX suite on the staged lines, with run-time parameters."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import TYPE_CHECKING

from airflow.sdk.exceptions import AirflowFailException

from plugins.operators.base import InvoiceOperator, OutcomeRecorded
from plugins.operators.fetch import parse_override
from plugins.operators.links import GXDataDocsLink

if TYPE_CHECKING:
    from airflow.sdk import Context


class ChecksumValidationOperator(InvoiceOperator):
    """Prove header total == detail total (within the tolerance) before anything is loaded.

    On failure the invoice becomes ``checksum_error``, the attempt keeps the breakdown and ranked
    hints as JSON, the staged lines are dropped, and the task fails with the on-call report at the
    top of its log and a link to the GX Data Docs page of this validation.
    """

    template_fields: Sequence[str] = (
        *InvoiceOperator.template_fields,
        "staged",
        "override_tolerance",
        "override_reason",
    )
    operator_extra_links = (GXDataDocsLink(),)

    def __init__(self, *, staged, override_tolerance=None, override_reason: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.staged = staged
        self.override_tolerance = override_tolerance
        self.override_reason = override_reason

    def execute(self, context: Context) -> dict:
        from include.model import InvoiceHeader

        header = InvoiceHeader.from_xcom(self.staged["header"])
        store = self.store()
        with self.failures_recorded(context, store, header, self.staged["stage_id"]):
            return self._validate(context, store, header)

    def _validate(self, context: Context, store, header) -> dict:
        from include.checksum.diagnostics import (
            DiagnosisInput,
            SiblingInvoice,
            diagnose,
            render_report,
            report_json,
        )
        from include.checksum.tolerance import effective_tolerance
        from include.checksum.validation import StagedLines, validate_lines
        from include.model import from_micros, to_micros
        from include.settings import InvalidSettings, load_settings

        spec = self.spec
        stage_id = self.staged["stage_id"]
        key = self.attempt_key(context)
        try:
            settings = load_settings(self.provider)
        except InvalidSettings as err:
            raise AirflowFailException(str(err)) from None
        override, reason = parse_override(self.override_tolerance, self.override_reason)
        tolerance = effective_tolerance(settings, override)

        header_tax = header.header_tax if settings.tax == "header" and header.header_tax else None
        lines = StagedLines(
            url=store.engine.url.render_as_string(hide_password=False),
            query=store.staged_amounts_query(
                stage_id,
                header_tax_micros=to_micros(header_tax) if header_tax else 0,
                currency_code=header.currency_code,
            ),
        )
        with ThreadPoolExecutor(1) as pool:  # the database computes the totals while GX sets up and queries
            summary_read = pool.submit(store.staged_summary, stage_id)
            outcome = validate_lines(
                spec.suite_file,
                lines,
                header_total_micros=to_micros(header.header_total),
                tolerance_micros=to_micros(tolerance),
                invoice_currencies=[header.currency_code],
                validation_name=f"{self.provider}_{self.invoice_id}",
                run_name=f"{key.dag_id}__{key.run_id}__{self.invoice_id}",
            )
            summary = summary_read.result()
        breakdown = dict(summary.breakdown)
        line_counts = dict(summary.line_counts)
        if header_tax:
            breakdown["tax"] = breakdown.get("tax", Decimal(0)) + header_tax
            line_counts["tax"] = line_counts.get("tax", 0) + 1
        detail_total = from_micros(sum(to_micros(v) for v in breakdown.values()))
        if outcome.observed_sum_micros is not None and outcome.observed_sum_micros != to_micros(detail_total):
            raise AirflowFailException(
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
        if outcome.data_docs_page:
            GXDataDocsLink.persist(context, outcome.data_docs_page)

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
            sibling_invoices=[SiblingInvoice(**row) for row in store.sibling_invoices(header)],
            unreported_categories=spec.unreported_categories,
        )
        hints = diagnose(diagnosis)
        note = _override_note(override, tolerance, reason)
        if not outcome.success:
            report = render_report(
                diagnosis,
                hints,
                invoice_label=f"{spec.display_name} invoice {self.invoice_id}",
                data_docs=outcome.data_docs_page,
            )
            self.log.error("Checksum failed\n%s", report)
            label = f"{spec.display_name} invoice {self.invoice_id}"
            message = _failure_message(label, header, totals, summary.currency_totals, outcome, hints)
            store.record_checksum_error(
                key,
                header,
                stage_id,
                totals=totals,
                message=message,
                diagnostics=report_json(diagnosis, hints),
                note=note,
                task_url=context["ti"].log_url,
            )
            raise OutcomeRecorded(message)

        store.record_checksum_pass(key, totals=totals, diagnostics=report_json(diagnosis, hints), note=note)
        self.log.info(
            "Checksum passed for %s: header %s, detail %s, difference %s, tolerance %s",
            self.invoice_id,
            header.header_total,
            detail_total,
            difference,
            tolerance,
        )
        return {
            **self.staged,
            "totals": {k: str(v) for k, v in totals.items()},
            "data_docs_page": outcome.data_docs_page,
        }


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
    cause = f"; likely cause: {hints[0].evidence}" if hints and not foreign else ""
    return f"Checksum error on {label}: {what}{failed}{cause}."


def _override_note(override: Decimal | None, applied: Decimal, reason: str | None) -> str | None:
    if override is None:
        return None
    return f"Override tolerance {override} (applied as {applied}): {reason}"
