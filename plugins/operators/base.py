"""What every per-invoice operator shares: the provider spec, the invoice database, the attempt key."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from include.providers import ProviderSpec, get_provider

if TYPE_CHECKING:
    from airflow.sdk import Context

    from include.model import InvoiceHeader
    from include.sql.store import AttemptKey, InvoiceStore


class OutcomeRecorded(AirflowFailException):
    """The task failed and has already written its outcome (e.g. ``checksum_error``); fail without retry."""


class InvoiceTaskError(RuntimeError):
    """An unexpected failure, retold as one sentence of ours (the original's text cut short after a colon)."""


def failure_sentence(step: str, provider: str, invoice_id: str, err: BaseException) -> str:
    """Our sentences as they are; anything else (a driver's or library's error) after one of ours, cut short."""
    from include.model import InvalidProviderData

    if isinstance(err, AirflowFailException | InvalidProviderData):
        return str(err)
    from include.sql.store import driver_text

    detail = f"{type(err).__name__}: {driver_text(err)}"
    return f"The {step} of {provider} invoice {invoice_id} failed unexpectedly: {detail}"


class InvoiceOperator(BaseOperator):
    """Base for fetch / checksum_validation / load / activate: one provider invoice per task instance."""

    template_fields: Sequence[str] = ("provider", "invoice_id")
    ui_color = "#e8f1fb"

    def __init__(self, *, provider: str, invoice_id: str, invoice_db_conn_id: str = "invoice_db", **kwargs):
        kwargs.setdefault("map_index_template", "{{ task.provider }} {{ task.invoice_id }}")
        super().__init__(**kwargs)
        self.provider = provider
        self.invoice_id = invoice_id
        self.invoice_db_conn_id = invoice_db_conn_id

    @property
    def spec(self) -> ProviderSpec:
        return get_provider(self.provider)

    def store(self) -> InvoiceStore:
        from plugins.hooks.invoice_db import InvoiceDbHook

        return InvoiceDbHook(self.invoice_db_conn_id).get_store()

    def attempt_key(self, context: Context) -> AttemptKey:
        from include.sql.store import AttemptKey

        return AttemptKey(self.provider, self.invoice_id, context["dag"].dag_id, context["run_id"])

    @contextmanager
    def failures_recorded(
        self,
        context: Context,
        store: InvoiceStore,
        header: InvoiceHeader | None = None,
        stage_id: str | None = None,
    ) -> Iterator[None]:
        """Any other failure inside the block marks the attempt (and an invoice nobody loaded) ``failed``.

        The task fails with the same sentence that is recorded; an unexpected error keeps its traceback
        at debug level only, so the task log shows our sentence rather than a driver's page of SQL. A
        failure for good (no retry follows) drops ``stage_id``: nothing will read that stage again.
        """
        try:
            yield
        except OutcomeRecorded:
            raise
        except Exception as err:
            message = failure_sentence(self.task_id, self.provider, self.invoice_id, err)
            store.record_failure(self.attempt_key(context), header, message, context["ti"].log_url)
            ti = context["ti"]
            if stage_id and (isinstance(err, AirflowFailException) or ti.try_number > ti.max_tries):
                store.drop_stage(stage_id)
            if isinstance(err, AirflowFailException):
                raise
            self.log.debug("Traceback of the failure", exc_info=True)
            raise InvoiceTaskError(message) from None


def triggered_by(context: Context) -> str:
    """The user who triggered the run, or the run type (``scheduled``...) when nobody did."""
    dag_run = context["dag_run"]
    return getattr(dag_run, "triggering_user_name", None) or str(dag_run.run_type)
