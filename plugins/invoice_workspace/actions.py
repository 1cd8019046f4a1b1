"""Sync and Deactivate from the workspace: each one is a run of the DAG that owns the rule.

A run is created by Airflow's own trigger route function (``trigger_dag_run`` of the REST API), so the
DAG's Params validate the conf exactly as for the trigger form and the run records the logged-in user
as ``triggering_user_name`` (the attempt and the note name that user). The run's note says where it
came from. Nothing here touches the invoice database.
"""

from __future__ import annotations

from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from fastapi import HTTPException, Request, status
from pydantic import BaseModel

from plugins.invoice_workspace.access import DEACTIVATE_DAG, MANUAL_SYNC_DAG, can_trigger


class SyncRequest(BaseModel):
    override_tolerance: float | int | str | None = None
    override_reason: str | None = None


class DeactivateRequest(BaseModel):
    reason: str | None = None


def _refused(sentence: str) -> HTTPException:
    return HTTPException(status.HTTP_400_BAD_REQUEST, sentence)


def sync_conf(provider: str, invoice_id: str, body: SyncRequest, account: str | None = None) -> tuple[dict, str]:
    """The manual sync's conf and the run note; the fetch task's own override rule, refused early. ``account``
    (the invoice's, :func:`include.workspace.queries.invoice_account`) goes with it when known."""
    from include.checksum.tolerance import parse_override

    try:
        override, reason = parse_override(body.override_tolerance, body.override_reason)
    except ValueError as err:
        raise _refused(str(err)) from None
    invoice = {"provider": provider, "invoice_id": invoice_id, **({"account": account} if account else {})}
    if override is None:
        return invoice, "Sync"
    conf = {
        **invoice,
        "override_tolerance": int(override) if override == override.to_integral_value() else float(override),
        "override_reason": reason,
    }
    return conf, f"Sync with override tolerance {override}: {reason}"


def deactivate_conf(provider: str, invoice_id: str, body: DeactivateRequest) -> tuple[dict, str]:
    reason = (body.reason or "").strip()
    if not reason:
        raise _refused("reason is required to deactivate an invoice.")
    return {"provider": provider, "invoice_id": invoice_id, "reason": reason}, f"Deactivate: {reason}"


def start_run(request: Request, user: BaseUser, dag_id: str, conf: dict, what: str) -> dict:
    """Trigger ``dag_id`` with ``conf`` as ``user``; the answer names the run (and whether the DAG is paused)."""
    if dag_id not in (MANUAL_SYNC_DAG, DEACTIVATE_DAG):
        raise ValueError(dag_id)
    if not can_trigger(user, dag_id):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"You may not trigger {dag_id}.")
    from airflow.api_fastapi.core_api.datamodels.dag_run import TriggerDAGRunPostBody
    from airflow.api_fastapi.core_api.routes.public.dag_run import trigger_dag_run
    from airflow.models.dag import DagModel
    from airflow.models.dagbag import DBDagBag
    from airflow.utils.session import create_session

    body = TriggerDAGRunPostBody(
        logical_date=None, conf=conf, note=f"{what} (invoices workspace, by {user.get_name()})"
    )
    with create_session() as session:
        dag_run = trigger_dag_run(dag_id, body, DBDagBag(), user, session, request)
        run_id = dag_run.run_id
        paused = bool(session.get(DagModel, dag_id).is_paused)
    return {"dag_id": dag_id, "dag_run_id": run_id, "paused": paused}


def run_outcome(dag_id: str, run_id: str) -> dict:
    """The run's state; once it failed, the sentence its failed task raised (the DAG's rule, in its words)."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        run = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
        if run is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"{dag_id} has no run {run_id}.")
        answer = {"dag_id": dag_id, "dag_run_id": run_id, "state": str(run.state), "message": None}
        if run.state == "failed":
            failed = session.scalars(
                select(TaskInstance).where(
                    TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id, TaskInstance.state == "failed"
                )
            ).first()
            answer["message"] = _failure_sentence(failed) if failed else None
    return answer


def _failure_sentence(ti) -> str | None:
    """The exception message of the task's last try, read from its log as the UI reads it."""
    from airflow.utils.log.log_reader import TaskLogReader

    try:
        messages, _ = TaskLogReader().read_log_chunks(ti, ti.try_number, {"download_logs": True})
    except Exception:  # a log that cannot be read only costs the sentence, not the answer
        return None
    sentence = None
    for message in messages:
        details = getattr(message, "error_detail", None) or (
            message.get("error_detail") if isinstance(message, dict) else None
        )
        if details:
            sentence = str(details[-1].get("exc_value") or sentence)
    return sentence
