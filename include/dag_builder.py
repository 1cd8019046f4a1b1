"""Builds the sync DAGs from a provider spec, so every provider runs the same tasks.

Imported by DAG files at parse time: only ``airflow.sdk`` and our operator classes, whose heavy
imports (requests, pandas, GX) happen inside ``execute``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, task, task_group
from airflow.sdk.exceptions import AirflowFailException

from include.dag_docs import SYNC_DOC
from include.providers import get_provider
from plugins.notifiers.checksum_alert import ChecksumAlertNotifier
from plugins.operators.activate import ActivateInvoiceOperator
from plugins.operators.checksum import ChecksumValidationOperator
from plugins.operators.fetch import FetchInvoiceOperator
from plugins.operators.list_invoices import LISTING_FAILURES, ListInvoicesOperator
from plugins.operators.load import LoadInvoiceOperator

START_DATE = datetime(2026, 1, 1)
EXECUTION_TIMEOUT = timedelta(hours=2)
"""The longest one try of any task of any DAG may run (each DAG file takes it from here). A 1M-line fetch
takes about 2.5 minutes on a loaded 2-core machine (benchmarks/README.md), so a 10M-line invoice fits with
room; a hung provider, database or SMTP call fails the try (and its retries apply) instead of holding a
worker slot for ever. The wait for a Graph export is not counted: the fetch is deferred meanwhile, bounded
by the connection's ``export_timeout``."""
PROVIDER_CALLS = 4
"""Fetches of one DAG in flight at once (``max_active_tis_per_dag``; deferred ones count), so a daily run
never has more than this many invoices downloading or exporting at the provider. Neither Microsoft nor
TD SYNNEX publishes numeric limits for invoice APIs; Microsoft's throttling guidance asks for reduced
parallelism, and the hooks honour ``Retry-After`` on every 429 (shared/reference/provider-apis.md 1.7)."""
DEFAULT_ARGS = {
    "owner": "billing",
    "retries": 2,
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": 2.0,
    "execution_timeout": EXECUTION_TIMEOUT,
}


def invoice_pipeline(provider, invoice_id, *, account=None, override_tolerance=None, override_reason=None) -> None:
    """fetch -> checksum_validation -> load -> activate for one invoice of ``account`` (task ids are a contract).

    Only the fetch is told the account (a connection id; None: the provider's default account): the checksum
    reads it from the fetch's XCom, and load and activate from the invoice's attempt and row.
    """
    fetch = FetchInvoiceOperator(
        task_id="fetch",
        provider=provider,
        invoice_id=invoice_id,
        account=account,
        override_tolerance=override_tolerance,
        override_reason=override_reason,
        max_active_tis_per_dag=PROVIDER_CALLS,
    )
    checksum = ChecksumValidationOperator(
        task_id="checksum_validation",
        provider=provider,
        invoice_id=invoice_id,
        staged=fetch.output,
        override_tolerance=override_tolerance,
        override_reason=override_reason,
        # Silent until the invoice_checksum_alert_recipients variable lists someone to mail.
        on_failure_callback=ChecksumAlertNotifier(),
    )
    load = LoadInvoiceOperator(task_id="load", provider=provider, invoice_id=invoice_id, checked=checksum.output)
    load >> ActivateInvoiceOperator(task_id="activate", provider=provider, invoice_id=invoice_id)


@task(retries=0)
def check_listings(failures: list[str]) -> None:
    """Fail, in the listing's own sentences, when an account could not be listed or listed another account's
    invoice; the other accounts' invoices are synced all the same (this task waits for nothing but the listing)."""
    if failures:
        raise AirflowFailException(" ".join(failures))


def build_sync_dag(provider: str) -> DAG:
    """``provider_invoice_sync_<provider>``: list every account's invoices, then the pipeline mapped once per
    (account, invoice); ``check_listings`` fails the run naming any account whose listing failed."""
    spec = get_provider(provider)
    with DAG(
        dag_id=f"provider_invoice_sync_{provider}",
        description=f"Import {spec.display_name} invoices: fetch, GX checksum, load, activate.",
        schedule="@daily",
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=["invoices", provider],
        doc_md=SYNC_DOC.format(display_name=spec.display_name),
    ) as dag:
        listed = ListInvoicesOperator(task_id="list_invoices", provider=provider)

        # prefix_group_id=False keeps the contract task ids; the mapped group makes each invoice
        # independent: one red checksum does not stop the other invoices.
        @task_group(group_id="invoice", prefix_group_id=False)
        def sync_invoice(account, invoice_id):
            invoice_pipeline(provider, invoice_id, account=account)

        sync_invoice.expand_kwargs(listed.output)
        check_listings(listed.output[LISTING_FAILURES])
    return dag
