"""What every per-invoice operator shares: the provider spec, the invoice database, the attempt key,
failure recording, and the one place our errors become ``AirflowFailException``."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowTaskTimeout, TaskDeferred

from include.providers import ProviderSpec, get_provider

if TYPE_CHECKING:
    from airflow.sdk import Context

    from include.model import InvoiceHeader
    from include.sql.store import AttemptKey, InvoiceStore


class OutcomeRecorded(AirflowFailException):
    """The task failed and has already written its outcome (e.g. ``checksum_error``); fail without retry.

    Its report is already in the log: the runner's "Task failed with exception" for it is logged as one
    line with the sentence, no traceback (:func:`recorded_outcome_without_traceback`).
    """


def recorded_outcome_without_traceback(logger: Any, method_name: str, event_dict: dict) -> dict:
    """structlog processor: an :class:`OutcomeRecorded` being logged loses its traceback and says its sentence.

    The Task SDK's runner logs every ``AirflowFailException`` with ``log.exception``; for an expected,
    recorded outcome that stack would only bury the report above it. Any other exception keeps its traceback.
    """
    exc_info = event_dict.get("exc_info")
    if exc_info is True:
        exc_info = sys.exc_info()
    error = exc_info[1] if isinstance(exc_info, tuple) else exc_info
    if isinstance(error, OutcomeRecorded):
        del event_dict["exc_info"]
        event_dict["event"] = f"Task failed: {error}"
    return event_dict


def _log_recorded_outcomes_without_traceback() -> None:
    """Put :func:`recorded_outcome_without_traceback` first in the task process's structlog chain, in place:
    the runner's logger is already bound to that very list (the Task SDK offers no hook for this)."""
    processors = structlog.get_config()["processors"]
    if recorded_outcome_without_traceback not in processors:
        processors.insert(0, recorded_outcome_without_traceback)


class InvoiceTaskError(RuntimeError):
    """A failure the task's retries may fix, as one sentence of ours (an unexpected error's text cut short
    after a colon)."""


def refusals() -> tuple[type[Exception], ...]:
    """Errors that carry one sentence of ours and that no retry can fix: the task fails at once with it."""
    from include.checksum.run import StageChanged
    from include.checksum.tolerance import InvalidOverride
    from include.model import InvalidProviderData, InvoiceNotFound
    from include.providers import InvalidInvoiceId, UnknownProvider
    from include.settings import InvalidSettings
    from include.sql.store import InvoiceStateError

    return (
        InvalidInvoiceId,
        InvalidOverride,
        InvalidProviderData,
        InvalidSettings,
        InvoiceNotFound,
        InvoiceStateError,
        StageChanged,
        UnknownProvider,
    )


def failure_sentence(step: str, provider: str, invoice_id: str, err: BaseException) -> str:
    """Our sentences as they are; anything else (a driver's or library's error) after one of ours, cut short."""
    if isinstance(err, (AirflowFailException, InvoiceTaskError, *refusals())):
        return str(err)
    if isinstance(err, AirflowTaskTimeout):
        return f"The {step} of {provider} invoice {invoice_id} ran longer than its execution_timeout and was stopped."
    return f"The {step} of {provider} invoice {invoice_id} failed unexpectedly: {error_detail(err)}"


def error_detail(err: BaseException) -> str:
    """Our own sentence as it is; anything else (an HTTP, driver or library error) named and cut short."""
    if isinstance(err, (AirflowFailException, *refusals())):
        return str(err)
    from include.sql.store import driver_text

    return f"{type(err).__name__}: {driver_text(err)}"


class UsageRetryPending(OutcomeRecorded):
    """A usage checksum error before the escalation day: recorded, retried by the next scheduled run.

    ``alert`` is False so the optional checksum alert stays silent until the error is escalated.
    """

    alert = False


@dataclass
class Attempt:
    """What :meth:`InvoiceOperator.failures_recorded` records a failure with; set ``header`` once it is known."""

    header: InvoiceHeader | None = None


class InvoiceOperator(BaseOperator):
    """Base for fetch / checksum_validation / load / activate / deactivate: one provider invoice per task.

    Subclasses implement :meth:`execute_invoice`; :meth:`execute` turns our own errors (:func:`refusals`)
    into ``AirflowFailException`` with their sentence, so they fail without retries.
    """

    template_fields: Sequence[str] = ("provider", "invoice_id")
    ui_color = "#e8f1fb"

    def __init__(self, *, provider: str, invoice_id: str, invoice_db_conn_id: str = "invoice_db", **kwargs):
        kwargs.setdefault("map_index_template", "{{ task.provider }} {{ task.invoice_id }}")
        super().__init__(**kwargs)
        self.provider = provider
        self.invoice_id = invoice_id
        self.invoice_db_conn_id = invoice_db_conn_id

    def execute(self, context: Context) -> Any:
        return self.failing_as_ours(self.execute_invoice, context)

    def failing_as_ours(self, step, context: Context, *args: Any) -> Any:
        """``step(context, *args)``, where our refusals fail the task at once (no retry) with their sentence.

        :meth:`execute` runs :meth:`execute_invoice` so; a task resumed after a deferral runs its method so too.
        """
        try:
            return step(context, *args)
        except OutcomeRecorded:
            _log_recorded_outcomes_without_traceback()
            raise
        except TaskDeferred:  # before refusals(), whose imports (GX) a deferral need not pay
            raise
        except refusals() as err:
            raise AirflowFailException(str(err)) from None

    def execute_invoice(self, context: Context) -> Any:
        raise NotImplementedError

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
        *,
        drop_stage_on_any_failure: bool = False,
    ) -> Iterator[Attempt]:
        """Any failure inside the block but :class:`OutcomeRecorded` marks the attempt (and an invoice
        nobody loaded) ``failed``, with our sentence (:func:`failure_sentence`).

        Our errors fail the task at once (:meth:`execute` turns them into ``AirflowFailException``); an
        unexpected one is raised again as :class:`InvoiceTaskError` with the recorded sentence, so the task
        log shows it rather than a driver's page of SQL (the traceback stays at debug level), and the
        task's retries apply. A failure for good (no retry follows) drops ``stage_id``: nothing will read
        that stage again; with ``drop_stage_on_any_failure`` (the fetch, whose retry stages anew) any
        failure does, a killed task's too.
        """
        attempt = Attempt(header)
        try:
            yield attempt
        except OutcomeRecorded:
            raise
        except BaseException as err:
            unexpected = isinstance(err, Exception) and not isinstance(err, (AirflowFailException, *refusals()))
            if not isinstance(err, Exception) and not drop_stage_on_any_failure:
                raise
            message = failure_sentence(self.task_id, self.provider, self.invoice_id, err)
            ti = context["ti"]
            if stage_id and (drop_stage_on_any_failure or not unexpected or ti.try_number > ti.max_tries):
                store.stage(stage_id).drop()
            store.record_failure(self.attempt_key(context), attempt.header, message, ti.log_url)
            if not unexpected:
                raise
            self.log.debug("Traceback of the failure", exc_info=True)
            raise InvoiceTaskError(message) from None


def triggered_by(context: Context) -> str:
    """The user who triggered the run, or the run type (``scheduled``...) when nobody did."""
    dag_run = context["dag_run"]
    run_type = dag_run.run_type
    return getattr(dag_run, "triggering_user_name", None) or str(getattr(run_type, "value", run_type))
