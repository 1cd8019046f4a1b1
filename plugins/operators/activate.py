"""``activate``: mark a loaded invoice active once its currency is active for the provider."""

from __future__ import annotations

from typing import TYPE_CHECKING

from plugins.operators.base import InvoiceOperator, OutcomeRecorded

if TYPE_CHECKING:
    from airflow.sdk import Context


class ActivateInvoiceOperator(InvoiceOperator):
    """Runs after ``load``; the invoice row it activates must be ``inactive`` (loaded, not yet active). The active
    currencies are those of the account the invoice was loaded from."""

    def execute_invoice(self, context: Context) -> None:
        from include.settings import load_settings

        store = self.store()
        key = self.attempt_key(context)
        with self.failures_recorded(context, store):
            invoice = store.get_invoice(self.provider, self.invoice_id)
            settings = load_settings(self.provider, invoice["account"] if invoice else None)
            if invoice and not settings.currency_is_active(invoice["currency_code"]):
                message = (
                    f"Invoice {self.invoice_id} is in {invoice['currency_code']}, which is not an active currency "
                    f"for {self.spec.display_name} (active: {', '.join(settings.active_currencies or ())}); "
                    "add it to active_currencies in the invoice_sync_settings variable, then re-run the sync."
                )
                store.block_activation(key, message)
                raise OutcomeRecorded(message)
            store.activate(key)
        self.log.info("Invoice %s of %s is active", self.invoice_id, self.spec.display_name)
