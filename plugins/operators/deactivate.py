"""``deactivate``: take an active invoice out of use so that it can be downloaded again."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from airflow.sdk.exceptions import AirflowFailException

from plugins.operators.base import InvoiceOperator, triggered_by

if TYPE_CHECKING:
    from airflow.sdk import Context


class DeactivateInvoiceOperator(InvoiceOperator):
    """Refused, naming the lines, while any line is referenced by a customer invoice."""

    template_fields: Sequence[str] = (*InvoiceOperator.template_fields, "reason")

    def __init__(self, *, reason: str, **kwargs):
        super().__init__(**kwargs)
        self.reason = reason

    def execute_invoice(self, context: Context) -> None:
        reason = str(self.reason).strip() if self.reason is not None else ""
        if not reason:
            raise AirflowFailException("reason is required to deactivate an invoice.")
        spec = self.spec
        self.store().deactivate(self.attempt_key(context), reason=reason, author=triggered_by(context))
        self.log.info("Invoice %s of %s is inactive: %s", self.invoice_id, spec.display_name, reason)
