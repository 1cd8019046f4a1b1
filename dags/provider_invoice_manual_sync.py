"""Download one invoice by hand, optionally with an override tolerance and a documented reason.

An active invoice is refused: run ``provider_invoice_deactivate`` first. The override is rounded up
to a whole number (1329.7525 -> 1330) and used for this run only; the reason becomes an audit note.
"""

from datetime import datetime

from airflow.sdk import DAG, Param

from include.dag_builder import DEFAULT_ARGS, invoice_pipeline
from include.dag_docs import MANUAL_SYNC_DOC
from include.params import account_param, invoice_id_param, provider_param, text_template

with DAG(
    dag_id="provider_invoice_manual_sync",
    description="Sync one provider invoice by hand (override tolerance with a reason).",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    default_args={**DEFAULT_ARGS, "retries": 0},
    tags=["invoices", "manual"],
    doc_md=MANUAL_SYNC_DOC,
    render_template_as_native_obj=True,  # an empty override is None, a number a number
    params={
        "provider": provider_param(),
        "invoice_id": invoice_id_param(),
        "account": account_param(),
        "override_tolerance": Param(
            None,
            type=["null", "number"],
            exclusiveMinimum=0,
            title="Override tolerance",
            description="Leave empty for the provider default. A positive amount, rounded up to a whole "
            "number, accepted as |header - detail| for this run only.",
        ),
        "override_reason": Param(
            None,
            type=["null", "string"],
            title="Override reason",
            description="Required with an override tolerance: invoice number, amount and why the "
            "difference is understood. Stored as a note on the invoice.",
        ),
    },
):
    invoice_pipeline(
        text_template("provider"),
        text_template("invoice_id"),
        account=text_template("account"),
        override_tolerance="{{ params.override_tolerance }}",
        override_reason=text_template("override_reason"),
    )
