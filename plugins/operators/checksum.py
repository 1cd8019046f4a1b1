"""``checksum_validation``: the provider's GX suite on the staged lines, with run-time parameters."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from plugins.operators.base import InvoiceOperator, OutcomeRecorded, UsageRetryPending
from plugins.operators.links import GXDataDocsLink

if TYPE_CHECKING:
    from airflow.sdk import Context


class ChecksumValidationOperator(InvoiceOperator):
    """Prove header total == detail total (within the tolerance) before anything is loaded, then, for a provider
    with daily-rated usage, that the reconciliation's Azure usage agrees with it (:mod:`include.checksum.usage`).

    The run itself is :func:`include.checksum.run.run_checksum`; this operator records its result. On
    failure the invoice becomes ``checksum_error``, the attempt keeps the breakdown and ranked hints as
    JSON, the staged lines are dropped, and the task fails with the on-call report at the top of its
    log and a link to the GX Data Docs page of this validation.
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

    def execute_invoice(self, context: Context) -> dict:
        from include.checksum.run import run_checksum
        from include.checksum.tolerance import effective_tolerance, override_note, parse_override
        from include.model import InvoiceHeader
        from include.settings import load_settings
        from include.sql.usage import compare_staged_usage

        header = InvoiceHeader.from_xcom(self.staged["header"])
        stage_id = self.staged["stage_id"]
        store = self.store()
        key = self.attempt_key(context)
        with self.failures_recorded(context, store, header, stage_id), ThreadPoolExecutor(1) as pool:
            settings = load_settings(self.provider, self.staged.get("account"))  # the account's tolerance
            override, reason = parse_override(self.override_tolerance, self.override_reason)
            tolerance = effective_tolerance(settings, override)
            self._shape_stage_while_gx_imports(store, stage_id, pool)
            # The usage comparison is a database query (a second at 1M lines): read while GX runs.
            compared = pool.submit(compare_staged_usage, store.engine, stage_id) if self.spec.usage_suite_file else None
            result = run_checksum(
                store,
                self.spec,
                header,
                stage_id,
                settings=settings,
                tolerance=tolerance,
                validation_name=f"{self.provider}_{self.invoice_id}",
                run_name=f"{key.dag_id}__{key.run_id}__{self.invoice_id}",
            )
            if result.data_docs_page:
                GXDataDocsLink.persist(context, result.data_docs_page)
            note = override_note(override, tolerance, reason)
            if not result.passed:
                self.log.error("%s", result.report)  # the on-call report, first thing of the task's log
                store.record_checksum_error(
                    key,
                    header,
                    stage_id,
                    totals=result.totals,
                    line_count=self.staged["line_count"],
                    message=result.message,
                    diagnostics=result.diagnostics,
                    note=note,
                    task_url=context["ti"].log_url,
                )
                raise OutcomeRecorded(result.message)
            diagnostics = result.diagnostics
            usage = self._check_usage(context, store, header, stage_id, tolerance, settings, key, compared)
            if usage is not None and not usage.success:
                self._usage_failed(context, store, header, key, usage, result.totals, diagnostics, note)
            if usage is not None:
                diagnostics = {**diagnostics, "usage": _usage_json(usage)}
            store.record_checksum_pass(key, totals=result.totals, diagnostics=diagnostics, note=note)
            if note:
                self.log.info("Checksum passed with an override: %s", note)
        self.log.info(
            "Checksum passed for %s: header %s, detail %s, difference %s, tolerance %s",
            self.invoice_id,
            *(result.totals[k] for k in ("header_total", "detail_total", "difference", "tolerance_applied")),
        )
        return {
            **self.staged,
            "totals": {k: str(v) for k, v in result.totals.items()},
            "data_docs_page": result.data_docs_page,
        }

    def _shape_stage_while_gx_imports(self, store, stage_id: str, pool: ThreadPoolExecutor) -> None:
        """PostgreSQL: the stage gets its tables' keys (a sort, the load's one heavy step) and its statistics (for
        the plans of the checksum's queries) on a database core while GX is imported here (seconds of CPU on one
        core); the load then only attaches it. A stage that fails the checksum is dropped, keyed or not (one whose
        line numbers repeat cannot be keyed, and GX's uniqueness expectation refuses it)."""
        shaped = pool.submit(store.shape_stage, stage_id, self.provider, self.invoice_id)
        import include.checksum.validation  # noqa: F401  (GX; run_checksum would import it next)

        shaped.result()

    def _check_usage(self, context: Context, store, header, stage_id: str, tolerance, settings, key, compared):
        """The provider's usage checksum (daily-rated usage against the reconciliation lines), if it has one;
        None when the invoice has no Azure usage to compare. ``compared``: the future of the usage comparison."""
        spec = self.spec
        if compared is None:
            return None
        from include.checksum.usage import check_usage

        usage = check_usage(
            store.engine,
            spec.usage_suite_file,
            header,
            stage_id,
            tolerance=tolerance,
            settings=settings,
            validation_name=f"{self.provider}_{self.invoice_id}_usage",
            run_name=f"{key.dag_id}__{key.run_id}__{self.invoice_id}__usage",
            compared=compared.result(),
        )
        if usage is not None and usage.data_docs_page:
            GXDataDocsLink.persist(context, usage.data_docs_page)
        return usage

    def _usage_failed(self, context: Context, store, header, key, usage, totals, diagnostics, note) -> None:
        """Record the usage checksum error with its mismatch rows and CSV; fail (alerting only once escalated)."""
        from include.checksum import usage as usage_check
        from include.checksum.validation import data_docs_root

        usage = usage_check.write_mismatch_csv(usage, self.provider, key.run_id, data_docs_root())
        label = f"{self.spec.display_name} invoice {self.invoice_id}"
        self.log.error("Checksum failed (Azure usage)\n%s", usage_check.render_report(usage, label))
        message = usage_check.failure_message(usage, label)
        diagnostics = {
            **diagnostics,
            "check": "usage",
            "usage": _usage_json(usage),
            "hints": [usage_check.hint(usage), *diagnostics.get("hints", [])],
        }
        store.record_checksum_error(
            key,
            header,
            self.staged["stage_id"],
            totals=totals,
            line_count=self.staged["line_count"],
            message=message,
            diagnostics=diagnostics,
            note=note,
            task_url=context["ti"].log_url,
            usage_mismatches=usage.rows,
        )
        raise OutcomeRecorded(message) if usage.escalated else UsageRetryPending(message)


def _usage_json(usage) -> dict:
    from include.checksum.usage import report_json

    return report_json(usage)
