"""``list_invoices``: which invoices of the provider's accounts a scheduled sync must (re)fetch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from include.providers import get_provider

if TYPE_CHECKING:
    from airflow.sdk import Context

LISTING_FAILURES = "listing_failures"
"""XCom key of the sentences about accounts whose listing failed (``check_listings`` fails with them)."""


class ListingFailed(RuntimeError):
    """No account of the provider could be listed: the task fails, and its retries apply (unless every
    account failed for good, e.g. with an expired consent: then it fails at once)."""


class ListInvoicesOperator(BaseOperator):
    """Return ``{"account", "invoice_id"}`` of every new, failed and checksum-error invoice of every account of the
    provider; skip what needs no download.

    Skipped: active invoices (unchanged ones need nothing; a changed one is logged, since only a
    person may deactivate and re-download it), invoices a person deactivated (they wait for a
    manual sync) and listed ids that break the provider's invoice-id rule (the hook reports them).

    One account's failing listing does not hide the others' invoices: they are returned, and the sentence
    naming the account goes to the ``listing_failures`` XCom, with which ``check_listings`` fails the run
    (this task then succeeds, so its retries do not list the healthy accounts again). An invoice id listed by
    a second account of the provider is not synced from it: that is a failure of the second account's listing.
    Only when no account could be listed does this task fail (and retry), as with one account.

    First of all the settings are read (a bad value stops the sync before any request), and the stages
    that runs which are over left behind are dropped.
    """

    def __init__(self, *, provider: str, invoice_db_conn_id: str = "invoice_db", **kwargs):
        super().__init__(**kwargs)
        self.provider = provider
        self.invoice_db_conn_id = invoice_db_conn_id

    def execute(self, context: Context) -> list[dict]:
        from include.settings import InvalidSettings, load_accounts
        from include.sql.listing import record_listing
        from include.sql.store import account_conflict
        from plugins.hooks.invoice_db import InvoiceDbHook
        from plugins.operators.base import error_detail

        spec = get_provider(self.provider)
        try:
            accounts = list(load_accounts(self.provider))
        except InvalidSettings as err:
            raise AirflowFailException(str(err)) from None
        store = InvoiceDbHook(self.invoice_db_conn_id).get_store()
        dropped = store.drop_orphan_stages()
        if dropped:
            self.log.warning("Dropped %d stage(s) that ended runs left behind: %s", len(dropped), dropped)
        normaliser = spec.normaliser()
        listed, failures, for_good = {}, [], True
        for account in accounts:
            try:
                listed[account] = [normaliser.normalize_header(raw) for raw in spec.get_hook(account).list_invoices()]
            except Exception as err:
                failures.append(f"The listing of {spec.display_name} account {account} failed: {error_detail(err)}")
                self.log.error("%s", failures[-1])
                for_good = for_good and isinstance(err, AirflowFailException)  # e.g. an expired consent
        if not listed:
            raise (AirflowFailException if for_good else ListingFailed)(" ".join(failures))
        record_listing(store.engine, self.provider, listed, accounts)  # what the workspace offers for a manual sync
        states = store.invoice_states(self.provider)
        holders = {invoice_id: state["account"] for invoice_id, state in states.items()}
        to_sync: dict[str, dict] = {}
        for account, headers in listed.items():
            for header in headers:
                holder = holders.setdefault(header.invoice_id, account)
                if holder != account:
                    failures.append(account_conflict(self.provider, header.invoice_id, holder, account))
                elif self._needs_sync(header, states.get(header.invoice_id), spec.display_name):
                    to_sync[header.invoice_id] = {"account": account, "invoice_id": header.invoice_id}
        context["ti"].xcom_push(key=LISTING_FAILURES, value=failures)
        self.log.info("%d %s invoices need a sync: %s", len(to_sync), spec.display_name, list(to_sync.values()))
        return list(to_sync.values())

    def _needs_sync(self, header, state: dict | None, display_name: str) -> bool:
        if state and state["status"] == "active":
            if state["fingerprint"] != header.fingerprint:
                self.log.warning(
                    "Active invoice %s changed at %s; deactivate it to download it again.",
                    header.invoice_id,
                    display_name,
                )
            return False
        if state and state["status"] == "inactive" and state["deactivated_at"] is not None:
            self.log.info("Invoice %s was deactivated; it waits for a manual sync.", header.invoice_id)
            return False
        return True
