"""``load``: move the checked lines from staging into the invoice tables in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING

from plugins.operators.base import InvoiceOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class LoadInvoiceOperator(InvoiceOperator):
    """Replace the invoice's lines with the staged ones (idempotent: delete + INSERT ... SELECT)."""

    template_fields: Sequence[str] = (*InvoiceOperator.template_fields, "checked")

    def __init__(self, *, checked, **kwargs):
        super().__init__(**kwargs)
        self.checked = checked

    def execute_invoice(self, context: Context) -> dict:
        from include.model import InvoiceHeader

        header = InvoiceHeader.from_xcom(self.checked["header"])
        totals = {k: Decimal(v) for k, v in self.checked["totals"].items()}
        store = self.store()
        with self.failures_recorded(context, store, header, self.checked["stage_id"]):
            loaded = store.load_from_stage(self.attempt_key(context), header, self.checked["stage_id"], totals=totals)
        self.log.info("Loaded %d lines of invoice %s", loaded, self.invoice_id)
        return {"line_count": loaded, "totals": self.checked["totals"]}
