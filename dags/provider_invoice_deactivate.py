"""Deactivate an active invoice so it can be downloaded again (refused while lines are invoiced)."""

from datetime import datetime

from airflow.sdk import DAG

from include.dag_builder import EXECUTION_TIMEOUT
from include.dag_docs import DEACTIVATE_DOC
from include.params import invoice_id_param, provider_param, required_text_param, text_template
from plugins.operators.deactivate import DeactivateInvoiceOperator

with DAG(
    dag_id="provider_invoice_deactivate",
    description="Deactivate an active provider invoice so that it can be re-downloaded.",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["invoices", "manual"],
    default_args={"owner": "billing", "execution_timeout": EXECUTION_TIMEOUT},
    doc_md=DEACTIVATE_DOC,
    render_template_as_native_obj=True,  # see include.params.text_template
    params={
        "provider": provider_param(),
        "invoice_id": invoice_id_param(),
        "reason": required_text_param("Reason", "Why the invoice is deactivated; stored as a note."),
    },
):
    DeactivateInvoiceOperator(
        task_id="deactivate",
        provider=text_template("provider"),
        invoice_id=text_template("invoice_id"),
        reason=text_template("reason"),
    )
