"""Daily mail of the provider invoice sync status to billing staff.

Recipients: the Airflow variable ``invoice_notification_recipients`` (JSON list of addresses).
Mail server: the ``smtp_default`` connection (its extra ``from_email`` is the sender). The summary
covers everything since the previous mail that actually went out.
"""

from datetime import datetime, timedelta

from airflow.sdk import DAG

from include.dag_builder import EXECUTION_TIMEOUT
from plugins.operators.notification import InvoiceStatusMailOperator

with DAG(
    dag_id="provider_invoice_daily_notification",
    description="Mail the provider invoice sync status summary to billing staff.",
    schedule="0 7 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={
        "owner": "billing",
        "retries": 2,
        "retry_delay": timedelta(minutes=5),
        "execution_timeout": EXECUTION_TIMEOUT,
    },
    tags=["invoices", "notification"],
    doc_md=__doc__,
) as dag:
    InvoiceStatusMailOperator(task_id="send_status_mail")
