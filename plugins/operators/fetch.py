"""``fetch``: download one invoice through the provider hook, normalise it and stage its lines."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from airflow.sdk.exceptions import AirflowFailException

from include.sql.schema import stage_id_for
from plugins.operators.base import InvoiceOperator, InvoiceTaskError, failure_sentence, triggered_by

if TYPE_CHECKING:
    from airflow.sdk import Context


def parse_override(override_tolerance, override_reason) -> tuple[Decimal | None, str | None]:
    """Check the manual override pair; one clear sentence for each way it can be wrong."""
    if override_tolerance in (None, "", "None"):
        return None, (override_reason or "").strip() or None
    try:
        value = Decimal(str(override_tolerance))
    except InvalidOperation:
        raise ValueError(f"override_tolerance must be a number, got {override_tolerance!r}.") from None
    if not value.is_finite() or value <= 0:
        raise ValueError(f"override_tolerance must be a number greater than 0, got {override_tolerance}.")
    reason = (override_reason or "").strip()
    if not reason or reason == "None":
        raise ValueError("override_reason is required when override_tolerance is set.")
    return value, reason


__all__ = ["FetchInvoiceOperator", "parse_override", "stage_id_for"]


class FetchInvoiceOperator(InvoiceOperator):
    """Fetch the header and every line page of one invoice; XCom carries only the stage key and header.

    An active invoice is refused before anything is written: it must be deactivated first.
    """

    template_fields: Sequence[str] = (
        *InvoiceOperator.template_fields,
        "override_tolerance",
        "override_reason",
    )

    def __init__(self, *, override_tolerance=None, override_reason: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.override_tolerance = override_tolerance
        self.override_reason = override_reason

    def execute(self, context: Context) -> dict:
        from include.model import InvalidProviderData, InvoiceNotFound
        from include.settings import load_settings
        from include.sql.store import InvoiceStateError

        try:
            spec = self.spec
            spec.check_invoice_id(self.invoice_id)  # before anything is read, fetched or written
            override, reason = parse_override(self.override_tolerance, self.override_reason)
            settings = load_settings(self.provider)  # a bad setting stops the run before anything is downloaded
        except ValueError as err:
            raise AirflowFailException(str(err)) from None
        store = self.store()
        key = self.attempt_key(context)
        try:
            store.start_attempt(
                key, triggered_by=triggered_by(context), override_tolerance=override, override_reason=reason
            )
        except InvoiceStateError as err:
            raise AirflowFailException(str(err)) from None
        header = None
        stage_id = stage_id_for(key.dag_id, key.run_id, self.provider, self.invoice_id)
        try:
            from include.staging import StageJob, stage_invoice

            hook = spec.get_hook()
            raw = hook.get_invoice(self.invoice_id)
            header = spec.normaliser().normalize_header(raw)
            if header.invoice_id != self.invoice_id:
                asked, answered = self.invoice_id, header.invoice_id[:80]
                header = None  # another invoice's header: nothing of it may be written
                raise InvalidProviderData(f"asked for invoice {asked}, it answered with invoice {answered!r}.")
            store.check_header(header)
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
            store.check_staged_text(stage_id, self.invoice_id)
        except InvoiceNotFound as err:
            self._abandon(context, store, None, stage_id, str(err))
            raise AirflowFailException(str(err)) from None
        except InvalidProviderData as err:
            message = f"{spec.display_name} sent unusable data for invoice {self.invoice_id}: {err}"
            self._abandon(context, store, header, stage_id, message)
            raise AirflowFailException(message) from None
        except BaseException as err:  # a killed task too: its stage must not outlive it
            message = failure_sentence("fetch", self.provider, self.invoice_id, err)
            self._abandon(context, store, header, stage_id, message)
            if not isinstance(err, Exception):
                raise
            self.log.debug("Traceback of the failure", exc_info=True)
            raise InvoiceTaskError(message) from None
        self.log.info("Staged %d lines of %s invoice %s", count, spec.display_name, self.invoice_id)
        return {"stage_id": stage_id, "line_count": count, "header": header.to_xcom()}

    def _abandon(self, context: Context, store, header, stage_id: str, message: str) -> None:
        """A failed fetch: its stage is dropped and its attempt (and an invoice nobody loaded) ``failed``."""
        store.drop_stage(stage_id)
        store.record_failure(self.attempt_key(context), header, message, context["ti"].log_url)
