"""``fetch``: download one invoice through the provider hook, normalise it and stage its lines."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
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


@contextmanager
def _unusable_data(display_name: str, invoice_id: str) -> Iterator[None]:
    """Provider data we cannot use, told as the provider's fault in one sentence."""
    from include.model import InvalidProviderData

    try:
        yield
    except InvalidProviderData as err:
        raise InvalidProviderData(f"{display_name} sent unusable data for invoice {invoice_id}: {err}") from None


class FetchInvoiceOperator(InvoiceOperator):
    """Fetch the header and every line page of one invoice from ``account``'s connection; XCom carries only the
    stage key, the header and the account (whose settings the next tasks read).

    ``account`` is a connection id of ``invoice_sync_settings`` (None: the provider's default account). An active
    invoice, or one another account holds, is refused before anything is written.

    An invoice whose lines come from asynchronous provider exports (Microsoft's Graph exports) starts them,
    records their operations on its attempt, and defers until the provider has prepared them (``deferrable``,
    default): the wait costs a triggerer coroutine, not a worker slot, and a retry of the run waits for the
    recorded operations instead of starting new exports. ``deferrable=False`` waits in the task.
    """

    template_fields: Sequence[str] = (
        *InvoiceOperator.template_fields,
        "account",
        "override_tolerance",
        "override_reason",
    )

    def __init__(
        self,
        *,
        account: str | None = None,
        override_tolerance=None,
        override_reason: str | None = None,
        deferrable: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.account = account
        self.override_tolerance = override_tolerance
        self.override_reason = override_reason
        self.deferrable = deferrable

    def execute_invoice(self, context: Context) -> dict:
        return self._fetch(context)

    def export_ready(self, context: Context, event: dict) -> dict:
        """Resumed by the export trigger: download what the provider prepared, or fail with its sentence."""
        return self.failing_as_ours(self._fetch, context, event)

    def resume_execution(self, next_method: str, next_kwargs: dict | None, context: Context):
        """A trigger that timed out or crashed ends the fetch with a sentence of ours, recorded on the attempt."""
        from airflow.sdk.exceptions import TaskDeferralError, TaskDeferralTimeout

        try:
            return super().resume_execution(next_method, next_kwargs, context)
        except TaskDeferralTimeout:
            minutes = round(self.spec.get_hook(self.account or None).export_timeout / 60)
            message = (
                f"{self.spec.display_name} had not prepared the exports of invoice {self.invoice_id} after "
                f"{minutes} minutes (connection extra export_timeout); a retry waits for the same exports."
            )
        except TaskDeferralError as err:
            message = f"Waiting for the exports of invoice {self.invoice_id} failed on the triggerer: {err}"
        return self.export_ready(context, {"status": "error", "message": message})

    def _fetch(self, context: Context, event: dict | None = None) -> dict:
        """The fetch, first run (``event`` None) or resumed after the exports were prepared (the trigger's event)."""
        from include.checksum.tolerance import parse_override
        from include.model import InvalidProviderData
        from include.settings import load_settings
        from plugins.operators.base import InvoiceTaskError

        spec = self.spec
        spec.check_invoice_id(self.invoice_id)  # before anything is read, fetched or written
        override, reason = parse_override(self.override_tolerance, self.override_reason)
        # a bad setting, or an account the settings do not name, stops the run before anything is downloaded
        settings = load_settings(self.provider, self.account or None)
        store = self.store()
        key = self.attempt_key(context)
        if event is None:
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
            hook = spec.get_hook(settings.account)
            with _unusable_data(spec.display_name, self.invoice_id):
                raw = hook.get_invoice(self.invoice_id)
                header = spec.normaliser().normalize_header(raw)
                if header.invoice_id != self.invoice_id:  # another invoice's header: nothing of it may be written
                    asked, answered = self.invoice_id, header.invoice_id[:80]
                    raise InvalidProviderData(f"asked for invoice {asked}, it answered with invoice {answered!r}.")
                store.check_header(header)
            attempt.header = header
            if event is not None and event["status"] == "failed":  # the provider's own sentence, as it is
                raise InvalidProviderData(event["message"])
            if event is not None and event["status"] != "succeeded":
                raise InvoiceTaskError(event["message"])
            with _unusable_data(spec.display_name, self.invoice_id):
                operations = self._exports_started(hook, raw, store, key)
                waiting = bool(operations) and self.deferrable and event is None
                if not waiting:
                    hook.export_operations = operations
                    staged = self._stage(store, hook, raw, stage_id, settings, attempt)
        if waiting:  # outside failures_recorded: deferring is no failure
            self.log.info("Waiting on the triggerer for the %s export(s) of %s", ", ".join(operations), self.invoice_id)
            trigger = hook.export_trigger(self.invoice_id, operations)
            self.defer(trigger=trigger, method_name="export_ready", timeout=timedelta(seconds=hook.export_timeout))
        self.log.info("Staged %d lines of %s invoice %s", staged["line_count"], spec.display_name, self.invoice_id)
        if staged["usage_line_count"] is not None:
            self.log.info("Staged %d daily-rated usage lines beside them", staged["usage_line_count"])
        return staged

    def _stage(self, store, hook, raw: dict, stage_id: str, settings, attempt) -> dict:
        """Stage the lines (and daily-rated usage) of ``raw``; what the fetch hands on through XCom."""
        from include.staging import StageJob, stage_invoice

        spec = self.spec
        job = StageJob(
            db_url=store.engine.url.render_as_string(hide_password=False),
            stage_id=stage_id,
            header=attempt.header,
            normaliser_path=spec.normaliser_path,
            usage_normaliser_path=spec.usage_normaliser_path,
        )
        staged = stage_invoice(
            store,
            job,
            hook,
            raw,
            processes=settings.stage_processes,
            parallel_from_lines=settings.stage_parallel_from_lines,
        )
        header = attempt.header = _with_period_from_lines(store, stage_id, attempt.header)
        return {
            "account": settings.account,
            "stage_id": stage_id,
            "line_count": staged.lines,
            "usage_line_count": staged.usage_lines,
            "header": header.to_xcom(),
        }

    def _exports_started(self, hook, raw: dict, store, key) -> dict[str, str]:
        """The provider exports the invoice needs, each started once per run: an operation recorded by an earlier
        try is reused, a new one is recorded as soon as it is started (before any wait or crash)."""
        needed = hook.exports(raw)
        operations = {export: location for export, location in store.export_operations(key).items() if export in needed}
        for export in needed:
            if export not in operations:
                operations[export] = hook.start_export(self.invoice_id, export)
                store.record_export_operations(key, operations)
        return operations
