"""``fetch``: download one invoice through the provider hook, normalise it and stage its lines."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from airflow.sdk.exceptions import AirflowFailException

from plugins.operators.base import InvoiceOperator, triggered_by

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


def stage_id_for(dag_id: str, run_id: str, provider: str, invoice_id: str) -> str:
    """Stable per run and invoice, so a retried fetch replaces its own staging rows."""
    return hashlib.sha256(f"{dag_id}|{run_id}|{provider}|{invoice_id}".encode()).hexdigest()[:40]


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

        if not str(self.invoice_id or "").strip():
            raise AirflowFailException("invoice_id must not be empty.")
        from include.settings import load_settings

        try:
            spec = self.spec
            override, reason = parse_override(self.override_tolerance, self.override_reason)
            settings = load_settings(self.provider)  # a bad setting stops the run before anything is downloaded
        except ValueError as err:
            raise AirflowFailException(str(err)) from None
        store = self.store()
        existing = store.get_invoice(self.provider, self.invoice_id)
        if existing and existing["status"] == "active":
            raise AirflowFailException(
                f"Invoice {self.invoice_id} of {spec.display_name} is active; "
                "run provider_invoice_deactivate first to download it again."
            )

        key = self.attempt_key(context)
        store.start_attempt(
            key, triggered_by=triggered_by(context), override_tolerance=override, override_reason=reason
        )
        header = None
        try:
            from include.staging import StageJob, stage_invoice

            hook = spec.get_hook()
            raw = hook.get_invoice(self.invoice_id)
            header = spec.normaliser().normalize_header(raw)
            stage_id = stage_id_for(key.dag_id, key.run_id, self.provider, self.invoice_id)
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
        except InvoiceNotFound as err:
            store.record_failure(key, None, str(err), context["ti"].log_url)
            raise AirflowFailException(str(err)) from None
        except InvalidProviderData as err:
            message = f"{spec.display_name} sent unusable data for invoice {self.invoice_id}: {err}"
            store.record_failure(key, header, message, context["ti"].log_url)
            raise AirflowFailException(message) from None
        except Exception as err:
            store.record_failure(key, header, f"{type(err).__name__}: {err}", context["ti"].log_url)
            raise
        self.log.info("Staged %d lines of %s invoice %s", count, spec.display_name, self.invoice_id)
        return {"stage_id": stage_id, "line_count": count, "header": header.to_xcom()}
