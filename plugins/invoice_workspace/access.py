"""Who may use the workspace: Airflow's auth manager decides, with the same login as the UI.

The user comes from ``airflow.api_fastapi.core_api.security.get_user`` (a bearer token, or the UI's
session cookie). Reading needs read access to every invoice DAG; an action needs permission to
trigger (create runs of) the DAG it runs. A state-changing request that carries only the cookie must
come from a page of this server (``Origin``, else ``Referer``), so that another site cannot make a
logged-in browser start a sync.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.core_api.security import get_user
from fastapi import Depends, HTTPException, Request, status

from include.providers import PROVIDERS

MANUAL_SYNC_DAG = "provider_invoice_manual_sync"
DEACTIVATE_DAG = "provider_invoice_deactivate"
INVOICE_DAGS = (*(f"provider_invoice_sync_{name}" for name in sorted(PROVIDERS)), MANUAL_SYNC_DAG, DEACTIVATE_DAG)


def can_read(user: BaseUser) -> bool:
    manager = get_auth_manager()
    return all(
        manager.is_authorized_dag(method="GET", details=DagDetails(id=dag_id), user=user) for dag_id in INVOICE_DAGS
    )


def can_trigger(user: BaseUser, dag_id: str) -> bool:
    return get_auth_manager().is_authorized_dag(
        method="POST", access_entity=DagAccessEntity.RUN, details=DagDetails(id=dag_id), user=user
    )


def reader(user: Annotated[BaseUser, Depends(get_user)]) -> BaseUser:
    """Dependency of every route: an authenticated user who may read the invoice DAGs (else 401/403)."""
    if not can_read(user):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "You need read access to the invoice DAGs.")
    return user


Reader = Annotated[BaseUser, Depends(reader)]


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def same_origin(request: Request) -> None:
    """Dependency of the actions: a cookie-only request must name this server as its Origin (or Referer)."""
    if request.headers.get("authorization", "").lower().startswith("bearer "):
        return  # a script holding a token; browsers never add this header on their own
    from include.checksum.data_docs import base_url

    allowed = {_origin(str(request.base_url)), _origin(base_url())}
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source or _origin(source) not in allowed:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "This action must be started from the invoices workspace.")
