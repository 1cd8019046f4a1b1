"""The invoices workspace: a FastAPI app the Airflow API server mounts at ``/provider-invoices``.

Routes (DESIGN.md "Invoices workspace"): the page, the JSON list and record, the provider listing,
CSV downloads, the Sync and Deactivate actions (DAG runs, see :mod:`plugins.invoice_workspace.actions`),
the state of a run they started, and the GX Data Docs pages. Every route needs an Airflow user with
read access to the invoice DAGs (:mod:`plugins.invoice_workspace.access`); the page itself sends an
anonymous browser to Airflow's login and back.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from airflow.api_fastapi.core_api.security import get_user
from fastapi import Depends, FastAPI, HTTPException, Query, Request, status
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from include.checksum.data_docs import DATA_DOCS_ROUTE, WORKSPACE_PREFIX, offline_page, resolve_page
from include.providers import PROVIDERS
from include.workspace import queries
from plugins.invoice_workspace import actions
from plugins.invoice_workspace.access import DEACTIVATE_DAG, MANUAL_SYNC_DAG, Reader, can_read, same_origin

STATIC = Path(__file__).parent / "static"
PAGE_POLICY = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'self'"
"""The workspace loads only its own files and runs only in Airflow's own frame."""
DOCS_POLICY = "default-src 'self'; script-src 'none'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; " + (
    "object-src 'none'; base-uri 'none'"
)
"""GX pages are static reports: no script runs in them (their filters needed the CDN's jQuery anyway), so
provider data that GX renders into a page cannot act with the reader's Airflow session."""

app = FastAPI(title="Provider invoices workspace", docs_url=None, redoc_url=None, openapi_url=None)
app.mount("/static", StaticFiles(directory=STATIC), name="static")


def _engine():
    from plugins.hooks.invoice_db import InvoiceDbHook

    return InvoiceDbHook().get_engine()


def _provider(provider: str) -> str:
    if provider not in PROVIDERS:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"Unknown provider {provider!r}.")
    return provider


# -- the page ------------------------------------------------------------------------------------


@app.get("/", include_in_schema=False)
async def workspace_page(request: Request):
    """The single-page workspace; an anonymous browser goes to Airflow's login first."""
    try:
        user = await get_user(request, None, None)
    except HTTPException:
        from airflow.api_fastapi.app import get_auth_manager

        return RedirectResponse(get_auth_manager().get_url_login(next_url=str(request.url)))
    if not can_read(user):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "You need read access to the invoice DAGs.")
    return FileResponse(
        STATIC / "workspace.html", headers={"Cache-Control": "no-store", "Content-Security-Policy": PAGE_POLICY}
    )


@app.get("/api/me")
def me(user: Reader) -> dict:
    return {"name": user.get_name()}


# -- reading -------------------------------------------------------------------------------------


class ListFilters:
    """The list's query parameters, shared by the JSON list and its CSV."""

    def __init__(
        self,
        provider: str | None = None,
        status_: Annotated[str | None, Query(alias="status")] = None,
        period: str | None = None,
    ):
        self.provider, self.status, self.period = provider, status_, period

    def page(self, page: int, page_size: int) -> dict:
        try:
            return queries.list_invoices(
                _engine(),
                provider=self.provider,
                status=self.status,
                period=self.period,
                page=page,
                page_size=page_size,
            )
        except queries.BadFilter as err:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(err)) from None


Filters = Annotated[ListFilters, Depends()]


@app.get("/api/invoices")
def list_invoices(_: Reader, filters: Filters, page: int = 1, page_size: int = queries.PAGE_SIZE) -> dict:
    return filters.page(page, page_size)


@app.get("/api/invoices.csv")
def list_invoices_csv(_: Reader, filters: Filters) -> Response:
    columns = [*queries.LIST_COLUMNS, "last_attempt_at", "last_attempt_outcome", "last_attempt_by"]
    rows, page = [], 1
    while True:
        chunk = filters.page(page, queries.MAX_PAGE_SIZE)
        for item in chunk["invoices"]:
            last = item.pop("last_attempt") or {}
            rows.append([*(item[c] for c in queries.LIST_COLUMNS), last.get("at"), last.get("outcome"), last.get("by")])
        if page * queries.MAX_PAGE_SIZE >= chunk["total"]:
            break
        page += 1
    return _csv("provider-invoices.csv", columns, rows)


@app.get("/api/invoices/{provider}/{invoice_id}")
def invoice_record(_: Reader, provider: str, invoice_id: str) -> dict:
    record = queries.invoice_record(_engine(), _provider(provider), invoice_id)
    if record is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"Invoice {invoice_id} of {provider} is not in the invoice database."
        )
    return record


@app.get("/api/invoices/{provider}/{invoice_id}/breakdown.csv")
def breakdown_csv(_: Reader, provider: str, invoice_id: str) -> Response:
    record = invoice_record(_, provider, invoice_id)
    currency = record["invoice"]["currency_code"]
    rows = [[b["category"], b["lines"], b["amount"], currency] for b in record["breakdown"]]
    return _csv(f"{provider}-{invoice_id}-breakdown.csv", ["category", "lines", "amount", "currency_code"], rows)


@app.get("/api/invoices/{provider}/{invoice_id}/usage-mismatches.csv")
def usage_mismatches_csv(_: Reader, provider: str, invoice_id: str) -> Response:
    """The subscriptions whose two usage totals differ, largest difference first, when the invoice's last
    checksum failed on Azure usage (the file beside the Data Docs, from the database)."""
    from include.checksum.usage import mismatch_csv
    from include.sql.usage import mismatches

    run_id = invoice_record(_, provider, invoice_id)["usage_mismatch_run"]
    if run_id is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"The last checksum of invoice {invoice_id} did not fail on Azure usage."
        )
    rows = mismatches(_engine(), provider, invoice_id, run_id)
    return _csv_response(f"{provider}-{invoice_id}-usage-mismatches.csv", mismatch_csv(rows))


@app.get("/api/providers/{provider}/available")
def available_invoices(_: Reader, provider: str) -> dict:
    """What the provider listed at the last scheduled sync, with each invoice's import status."""
    return {"provider": provider, "invoices": queries.provider_listing(_engine(), _provider(provider))}


def _csv(filename: str, header: list[str], rows: list[list]) -> Response:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return _csv_response(filename, out.getvalue())


def _csv_response(filename: str, text: str) -> Response:
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}"},
    )


# -- actions -------------------------------------------------------------------------------------


@app.post("/api/invoices/{provider}/{invoice_id}/sync", dependencies=[Depends(same_origin)])
def sync(request: Request, user: Reader, provider: str, invoice_id: str, body: actions.SyncRequest) -> dict:
    account = queries.invoice_account(_engine(), _provider(provider), invoice_id)
    conf, what = actions.sync_conf(provider, invoice_id, body, account)
    return actions.start_run(request, user, MANUAL_SYNC_DAG, conf, what)


@app.post("/api/invoices/{provider}/{invoice_id}/deactivate", dependencies=[Depends(same_origin)])
def deactivate(request: Request, user: Reader, provider: str, invoice_id: str, body: actions.DeactivateRequest) -> dict:
    conf, what = actions.deactivate_conf(_provider(provider), invoice_id, body)
    return actions.start_run(request, user, DEACTIVATE_DAG, conf, what)


@app.get("/api/runs/{dag_id}/{run_id}")
def run_state(_: Reader, dag_id: str, run_id: str) -> dict:
    """How a run the workspace started is doing and, once it failed, the DAG's own sentence."""
    if dag_id not in (MANUAL_SYNC_DAG, DEACTIVATE_DAG):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"{dag_id} is not a workspace action.")
    return actions.run_outcome(dag_id, run_id)


# -- Data Docs -----------------------------------------------------------------------------------


@app.get(DATA_DOCS_ROUTE.removeprefix(WORKSPACE_PREFIX) + "/{path:path}")
def data_docs(_: Reader, path: str) -> Response:
    """A GX Data Docs file; only inside the Data Docs folder, HTML without CDN assets."""
    page = resolve_page(path or "index.html")
    if page is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "No Data Docs page at this path.")
    if page.suffix == ".html":
        return HTMLResponse(offline_page(page.read_text(errors="replace")), headers=_DOCS_HEADERS)
    return FileResponse(page, headers=_DOCS_HEADERS)


_DOCS_HEADERS = {"Content-Security-Policy": DOCS_POLICY, "X-Content-Type-Options": "nosniff"}
