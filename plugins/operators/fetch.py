"""``fetch``: download one invoice through the provider hook, normalise it and stage its lines."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from include.sql.schema import stage_id_for
from plugins.operators.base import InvoiceOperator, triggered_by

if TYPE_CHECKING:
    from airflow.sdk import Context


def _with_period_from_lines(store, stage_id: str, header):
    """A header that states no billing period gets the one its lines cover (charge start to charge end).

    Some documented Partner Center invoices carry no ``billingPeriodStartDate``/``EndDate``; without a
    period the sibling-invoice diagnosis and the usage escalation day have nothing to work from.
    """
    if header.billing_period_start is not None and header.billing_period_end is not None:
        return header
    import dataclasses

    start, end = store.stage(stage_id).charge_period()
    return dataclasses.replace(
        header,
        billing_period_start=header.billing_period_start or start,
        billing_period_end=header.billing_period_end or end,
    )


class FetchInvoiceOperator(InvoiceOperator):
    """Fetch the header and every line page of one invoice from ``account``'s connection; XCom carries only the
    stage key, the header and the account (whose settings the next tasks read).

    ``account`` is a connection id of ``invoice_sync_settings`` (None: the provider's default account). An active
    invoice, or one another account holds, is refused before anything is written.
    """

    template_fields: Sequence[str] = (
        *InvoiceOperator.template_fields,
        "account",
        "override_tolerance",
        "override_reason",
    )

    def __init__(
        self, *, account: str | None = None, override_tolerance=None, override_reason: str | None = None, **kwargs
    ):
        super().__init__(**kwargs)
        self.account = account
        self.override_tolerance = override_tolerance
        self.override_reason = override_reason

    def execute_invoice(self, context: Context) -> dict:
        from include.checksum.tolerance import parse_override
        from include.model import InvalidProviderData
        from include.settings import load_settings

        spec = self.spec
        spec.check_invoice_id(self.invoice_id)  # before anything is read, fetched or written
        override, reason = parse_override(self.override_tolerance, self.override_reason)
        # a bad setting, or an account the settings do not name, stops the run before anything is downloaded
        settings = load_settings(self.provider, self.account or None)
        store = self.store()
        key = self.attempt_key(context)
        # Refused (InvoiceStateError), writing nothing, while the invoice is active or another account's.
        store.start_attempt(
            key,
            account=settings.account,
            triggered_by=triggered_by(context),
            override_tolerance=override,
            override_reason=reason,
        )
        stage_id = stage_id_for(key.dag_id, key.run_id, self.provider, self.invoice_id)
        with self.failures_recorded(context, store, stage_id=stage_id, drop_stage_on_any_failure=True) as attempt:
            from include.staging import StageJob, stage_invoice, stage_usage

            hook = spec.get_hook(settings.account)
            try:
                raw = hook.get_invoice(self.invoice_id)
                header = spec.normaliser().normalize_header(raw)
                if header.invoice_id != self.invoice_id:  # another invoice's header: nothing of it may be written
                    asked, answered = self.invoice_id, header.invoice_id[:80]
                    raise InvalidProviderData(f"asked for invoice {asked}, it answered with invoice {answered!r}.")
                store.check_header(header)
                attempt.header = header
                job = StageJob(
                    db_url=store.engine.url.render_as_string(hide_password=False),
                    stage_id=stage_id,
                    header=header,
                    normaliser_path=spec.normaliser_path,
                )
                count = stage_invoice(
                    store,
                    job,
                    hook,
                    raw,
                    processes=settings.stage_processes,
                    parallel_from_lines=settings.stage_parallel_from_lines,
                )
                store.stage(stage_id).check_text(self.invoice_id)
                usage_count = None
                if spec.usage_normaliser_path:
                    usage_count = stage_usage(store, job, hook, raw, spec.usage_normaliser_path)
                header = attempt.header = _with_period_from_lines(store, stage_id, header)
            except InvalidProviderData as err:
                message = f"{spec.display_name} sent unusable data for invoice {self.invoice_id}: {err}"
                raise InvalidProviderData(message) from None
        self.log.info("Staged %d lines of %s invoice %s", count, spec.display_name, self.invoice_id)
        if usage_count is not None:
            self.log.info("Staged %d daily-rated usage lines beside them", usage_count)
        return {
            "account": settings.account,
            "stage_id": stage_id,
            "line_count": count,
            "usage_line_count": usage_count,
            "header": header.to_xcom(),
        }
