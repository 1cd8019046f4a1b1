"""``list_invoices``: which of the provider's invoices a scheduled sync must (re)fetch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from include.providers import get_provider

if TYPE_CHECKING:
    from airflow.sdk import Context


class ListInvoicesOperator(BaseOperator):
    """Return the ids of new, failed and checksum-error invoices; skip what needs no download.

    Skipped: active invoices (unchanged ones need nothing; a changed one is logged, since only a
    person may deactivate and re-download it), invoices a person deactivated (they wait for a
    manual sync) and listed ids that break the provider's invoice-id rule (the hook reports them).

    First of all the settings are read (a bad value stops the sync before any request), and the stages
    that runs which are over left behind are dropped.
    """

    def __init__(self, *, provider: str, invoice_db_conn_id: str = "invoice_db", **kwargs):
        super().__init__(**kwargs)
        self.provider = provider
        self.invoice_db_conn_id = invoice_db_conn_id

    def execute(self, context: Context) -> list[str]:
        from include.settings import InvalidSettings, load_settings
        from include.sql.listing import record_listing
        from plugins.hooks.invoice_db import InvoiceDbHook

        spec = get_provider(self.provider)
        try:
            load_settings(self.provider)
        except InvalidSettings as err:
            raise AirflowFailException(str(err)) from None
        store = InvoiceDbHook(self.invoice_db_conn_id).get_store()
        dropped = store.drop_orphan_stages()
        if dropped:
            self.log.warning("Dropped %d stage(s) that ended runs left behind: %s", len(dropped), dropped)
        normaliser = spec.normaliser()
        headers = [normaliser.normalize_header(raw) for raw in spec.get_hook().list_invoices()]
        record_listing(store.engine, self.provider, headers)  # what the workspace offers for a manual sync
        states = store.invoice_states(self.provider)
        to_sync = []
        for header in headers:
            state = states.get(header.invoice_id)
            if state and state["status"] == "active":
                if state["fingerprint"] != header.fingerprint:
                    self.log.warning(
                        "Active invoice %s changed at %s; deactivate it to download it again.",
                        header.invoice_id,
                        spec.display_name,
                    )
                continue
            if state and state["status"] == "inactive" and state["deactivated_at"] is not None:
                self.log.info("Invoice %s was deactivated; it waits for a manual sync.", header.invoice_id)
                continue
            to_sync.append(header.invoice_id)
        self.log.info("%d of %d %s invoices need a sync: %s", len(to_sync), len(headers), spec.display_name, to_sync)
        return to_sync
