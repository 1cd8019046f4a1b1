"""Sandbox Microsoft: Entra token endpoint, Partner Center v1 invoices/line items, Graph v2 export.

Served from ``DIR/microsoft/<invoiceId>/invoice.json`` and
``<billingProvider>_<invoiceLineItemType>.jsonl``; a declared set without a file is served empty.
Numbers are read as ``Decimal`` and written back verbatim. URL layout below the sandbox root:

- ``/login/<tenant>/oauth2/token`` (refresh-token grant; issues the Bearer tokens checked below, and a new
  refresh token per grant when the server rotates them: :meth:`SandboxServer.refresh_token_grant`)
- ``/partnercenter/v1/invoices[/<id>[/lineitems[/<provider>/<type>]]]`` (offset and continuation paging)
- ``/graph/v1.0/reports/partners/billing/...`` (reconciliation and billed-usage exports -> operation -> manifest)
- ``/blobs/billing/<manifest>/<blob>?<sas>`` (gzip JSON lines, SAS checked)

As long as the three Microsoft APIs it stands in for need (one handler per endpoint, sandbox code).
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import secrets
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

from include.sandbox.server import Request, Response, Route, dumps, error, loads

TENANT_ID = "5a0b7c1e-0000-4000-8000-00000000cafe"
CLIENT_ID = "sandbox-partner-center-app"
CLIENT_SECRET = "sandbox-client-secret"
REFRESH_TOKEN = "sandbox-refresh-token"
PARTNER_CENTER = "https://api.partnercenter.microsoft.com"
GRAPH = "https://graph.microsoft.com"
MAX_PAGE = 2000
PROVIDERS = {"office": "office", "azure": "azure", "onetime": "one_time", "marketplace": "marketplace"}
"""billingProvider as spelled in v1 URLs -> as declared in invoiceDetails and file names."""
LINE_TYPES = {"billinglineitems": "billing_line_items", "usagelineitems": "usage_line_items"}
CONTINUATION_PAGED = {"one_time", "marketplace"}
EXPORTED_SETS = {
    "reconciliation": [("one_time", "billing_line_items"), ("marketplace", "billing_line_items")],
    "usage": [("one_time", "usage_line_items")],
}
"""What each v2 export of an invoice contains: billed reconciliation lines, billed daily-rated usage."""
LINE_TYPE_PATHS = {"billing_line_items": "BillingLineItems", "usage_line_items": "UsageLineItems"}


def connection(base_url: str) -> dict:
    """The connection (its id is in the provider registry) pointing at this sandbox."""
    return {
        "conn_type": "partner_center",
        "host": f"{base_url}/partnercenter",
        "login": CLIENT_ID,
        "password": CLIENT_SECRET,
        "extra": {
            "tenant_id": TENANT_ID,
            "refresh_token": REFRESH_TOKEN,
            "token_url": f"{base_url}/login/{{tenant_id}}/oauth2/token",
            "graph_url": f"{base_url}/graph/v1.0",
        },
    }


# -- data ------------------------------------------------------------------------------------------


def _invoice_dir(request: Request, invoice_id: str) -> Path:
    invoice_id = invoice_id.split("-", 1)[-1]  # self links read OneTime-G000..., Recurring-D000...
    return request.server.data_dir / "microsoft" / invoice_id


def _invoice(request: Request, invoice_id: str) -> dict | None:
    path = _invoice_dir(request, invoice_id) / "invoice.json"
    return loads(path.read_bytes()) if path.is_file() else None


@lru_cache(maxsize=32)
def _read_jsonl(path: str, _mtime_ns: int, _size: int) -> tuple[dict, ...]:
    with open(path, encoding="utf-8") as handle:
        return tuple(loads(line) for line in handle if line.strip())


def _lines(folder: Path, provider: str, line_type: str) -> tuple[dict, ...]:
    path = folder / f"{provider}_{line_type}.jsonl"
    if not path.is_file():
        return ()
    stat = path.stat()
    return _read_jsonl(str(path), stat.st_mtime_ns, stat.st_size)


def _not_found(invoice_id: str) -> Response:
    return Response(
        404,
        {
            "code": 600008,
            "description": f"Invoice {invoice_id} was not found.",
            "errorName": "InvoiceNotFound",
        },
    )


def _bad_request(description: str) -> Response:
    return Response(400, {"code": 400, "description": description, "errorName": "BadRequest"})


# -- auth ------------------------------------------------------------------------------------------


def token(request: Request) -> Response:
    form = request.form()
    refused = (
        request.match["tenant"] != TENANT_ID
        or form.get("grant_type") != "refresh_token"
        or form.get("client_id") != CLIENT_ID
        or form.get("client_secret") != CLIENT_SECRET
    )
    if refused:
        return Response(401, {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client."})
    refresh_token = request.server.refresh_token_grant(REFRESH_TOKEN, form.get("refresh_token"))
    if refresh_token is None or form.get("resource") not in (PARTNER_CENTER, GRAPH):
        return Response(
            400,
            {
                "error": "invalid_grant",
                "error_description": "AADSTS70000: The provided grant has expired, was revoked or was already used.",
            },
        )
    access_token = f"sbx.{secrets.token_hex(16)}"
    request.server.state(__name__).setdefault("tokens", {})[access_token] = form["resource"]
    now = int(time.time())
    return Response(
        200,
        {
            "token_type": "Bearer",
            "scope": "user_impersonation",
            "expires_in": "3599",
            "ext_expires_in": "3599",
            "expires_on": str(now + 3599),
            "not_before": str(now),
            "resource": form["resource"],
            "access_token": access_token,
            "refresh_token": refresh_token,
        },
    )


def requires(resource: str) -> Callable:
    """Handler decorator: 401 unless the request carries a Bearer token issued for ``resource``."""

    def decorate(handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
        def guarded(request: Request) -> Response:
            scheme, _, presented = (request.headers.get("Authorization") or "").partition(" ")
            tokens = request.server.state(__name__).get("tokens", {})
            if scheme.lower() != "bearer" or tokens.get(presented) != resource:
                return error(401, "InvalidAuthenticationToken", f"A valid token for {resource} is required.")
            return handler(request)

        return guarded

    return decorate


# -- Partner Center v1 -----------------------------------------------------------------------------


@requires(PARTNER_CENTER)
def list_invoices(request: Request) -> Response:
    root = request.server.data_dir / "microsoft"
    ids = sorted(p.parent.name for p in root.glob("*/invoice.json")) if root.is_dir() else []
    size, offset = int(request.query.get("size", 100)), int(request.query.get("offset", 0))
    items = [_invoice(request, invoice_id) for invoice_id in ids[offset : offset + size]]
    links = {"self": {"uri": f"/invoices?size={size}&offset={offset}", "method": "GET", "headers": []}}
    if offset + size < len(ids):
        links["next"] = {
            "uri": f"/invoices?size={size}&offset={offset + size}",
            "method": "GET",
            "headers": [],
        }
    return Response(200, _collection(items, links))


@requires(PARTNER_CENTER)
def get_invoice(request: Request) -> Response:
    invoice = _invoice(request, request.match["invoice"])
    return Response(200, invoice) if invoice is not None else _not_found(request.match["invoice"])


@requires(PARTNER_CENTER)
def line_items(request: Request) -> Response:
    invoice_id = request.match["invoice"]
    provider = request.match["provider"] or request.query.get("provider", "")
    line_type = request.match["type"] or request.query.get("invoicelineitemtype", "")
    if provider.lower() not in PROVIDERS or line_type.lower() not in LINE_TYPES:
        return _bad_request("The request is invalid.")  # Microsoft's answer to e.g. provider=one_time
    if _invoice(request, invoice_id) is None:
        return _not_found(invoice_id)
    set_name = (PROVIDERS[provider.lower()], LINE_TYPES[line_type.lower()])
    lines = _lines(_invoice_dir(request, invoice_id), *set_name)
    size = min(int(request.query.get("size", MAX_PAGE)), MAX_PAGE)
    if set_name[0] in CONTINUATION_PAGED:
        return _continuation_page(request, invoice_id, set_name, lines, size)
    if request.query.get("seekOperation"):
        return _bad_request(f"{provider} line items are paged by offset, not by continuation token.")
    offset = int(request.query.get("offset", 0))
    base = f"/invoices/{invoice_id}/lineitems?provider={provider}&invoicelineitemtype={line_type}&size={size}"
    links = {"self": {"uri": f"{base}&offset={offset}", "method": "GET", "headers": []}}
    if offset + size < len(lines):
        links["next"] = {"uri": f"{base}&offset={offset + size}", "method": "GET", "headers": []}
    return Response(200, _collection(list(lines[offset : offset + size]), links))


def _continuation_page(
    request: Request, invoice_id: str, set_name: tuple[str, str], lines: tuple[dict, ...], size: int
) -> Response:
    offset = 0
    if request.query.get("seekOperation", "").lower() == "next":
        state = _decode_token(request.headers.get("MS-ContinuationToken") or "")
        if request.break_chain or state is None or state.get("set") != [invoice_id, *set_name]:
            return _bad_request("The continuation token is invalid or has expired.")
        offset, size = state["offset"], state["size"]
    payload = _collection(list(lines[offset : offset + size]), {})
    if offset + size < len(lines):
        next_token = _encode_token({"set": [invoice_id, *set_name], "offset": offset + size, "size": size})
        payload["continuationToken"] = next_token
        payload["links"]["next"] = {
            "uri": f"/invoices/{invoice_id}/lineitems/OneTime/{LINE_TYPE_PATHS[set_name[1]]}?seekOperation=Next",
            "method": "GET",
            "headers": [{"key": "MS-ContinuationToken", "value": next_token}],
        }
    return Response(200, payload)


def _encode_token(state: dict) -> str:
    return base64.urlsafe_b64encode(dumps(state).encode()).decode()


def _decode_token(token: str) -> dict | None:
    try:
        state = loads(base64.urlsafe_b64decode(token.encode()))
    except (binascii.Error, ValueError):
        return None
    return state if isinstance(state, dict) else None


def _collection(items: list, links: dict) -> dict:
    """Partner Center's collection: ``totalCount`` is the number of items in this response."""
    return {
        "totalCount": len(items),
        "items": items,
        "links": links,
        "attributes": {"objectType": "Collection"},
    }


# -- Graph v2 billed reconciliation export ---------------------------------------------------------

BILLING = "/graph/v1.0/reports/partners/billing"


@requires(GRAPH)
def start_export(request: Request) -> Response:
    body = request.json() or {}
    if not isinstance(body, dict) or not body.get("invoiceId"):
        return error(400, "BadRequest", "invoiceId is required.")
    operation_id = str(uuid.uuid4())
    operations = request.server.state(__name__).setdefault("operations", {})
    export = request.match["export"]
    operations[operation_id] = {"invoice": body["invoiceId"], "export": export, "polls": 0, "manifest": None}
    location = f"{request.server.url}{BILLING}/operations/{operation_id}"
    return Response(202, headers={"Location": location, "Retry-After": str(request.server.export_retry_after)})


@requires(GRAPH)
def get_operation(request: Request) -> Response:
    operation_id = request.match["operation"]
    operation = request.server.state(__name__).get("operations", {}).get(operation_id)
    if operation is None:
        return error(404, "NotFound", f"Operation {operation_id} does not exist.")
    operation["polls"] += 1
    payload = {"id": operation_id, "createdDateTime": _now(), "lastActionDateTime": _now()}
    if operation["polls"] <= request.server.export_polls:
        retry = {"Retry-After": str(request.server.export_retry_after)}
        return Response(200, {**payload, "status": "running"}, headers=retry)
    if _invoice(request, operation["invoice"]) is None:
        return Response(200, {**payload, "status": "failed", "error": {"code": "5000", "message": "No data available"}})
    operation["manifest"] = operation["manifest"] or _build_manifest(request, operation["invoice"], operation["export"])
    manifest_url = f"{request.server.url}{BILLING}/manifests/{operation['manifest']}"
    return Response(
        200,
        {
            **payload,
            "@odata.type": "#microsoft.graph.partners.billing.exportSuccessOperation",
            "status": "succeeded",
            "resourceLocation@odata.navigationLink": manifest_url,
        },
    )


def _build_manifest(request: Request, invoice_id: str, export: str) -> str:
    """Cut the invoice's exported lines into gzip JSON-lines blobs of ``blob_lines`` (PascalCase keys)."""
    folder, per_blob = _invoice_dir(request, invoice_id), request.server.blob_lines
    lines = [line for set_name in EXPORTED_SETS[export] for line in _lines(folder, *set_name)]
    manifest_id = str(uuid.uuid4())
    blobs = {}
    for number, start in enumerate(range(0, len(lines), per_blob), start=1):
        text = "".join(
            dumps({k[:1].upper() + k[1:]: v for k, v in line.items()}) + "\n"
            for line in lines[start : start + per_blob]
        )
        blobs[f"part_{number:06d}.json.gz"] = gzip.compress(text.encode(), mtime=0)
    signature = secrets.token_hex(16)
    request.server.state(__name__).setdefault("manifests", {})[manifest_id] = {
        "id": manifest_id,
        "schemaVersion": "2",
        "dataFormat": "compressedJSONLines",
        "createdDateTime": _now(),
        "eTag": hashlib.sha256(b"".join(blobs.values())).hexdigest()[:16],
        "partnerTenantId": TENANT_ID,
        "rootDirectory": f"{request.server.url}/blobs/billing/{manifest_id}",
        "sasToken": f"sv=2023-11-03&sr=c&sp=rl&sig={signature}",
        "partitionType": "default",
        "blobCount": len(blobs),
        "blobs": [{"name": name, "partitionValue": str(n)} for n, name in enumerate(blobs, start=1)],
        "_content": blobs,
        "_signature": signature,
    }
    return manifest_id


@requires(GRAPH)
def get_manifest(request: Request) -> Response:
    manifest = request.server.state(__name__).get("manifests", {}).get(request.match["manifest"])
    if manifest is None:
        return error(404, "NotFound", "Manifest does not exist.")
    return Response(200, {k: v for k, v in manifest.items() if not k.startswith("_")})


def get_blob(request: Request) -> Response:
    manifest = request.server.state(__name__).get("manifests", {}).get(request.match["manifest"])
    if manifest is None or request.query.get("sig") != manifest["_signature"]:
        return error(403, "AuthenticationFailed", "Server failed to authenticate the request (SAS).")
    content = manifest["_content"].get(request.match["blob"])
    if content is None:
        return error(404, "BlobNotFound", "The specified blob does not exist.")
    return Response(200, body=content, content_type="application/octet-stream")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


ROUTES: list[Route] = [
    ("POST", r"/login/(?P<tenant>[^/]+)/oauth2/token", token),
    ("GET", r"/partnercenter/v1/invoices", list_invoices),
    ("GET", r"/partnercenter/v1/invoices/(?P<invoice>[^/]+)", get_invoice),
    (
        "GET",
        r"/partnercenter/v1/invoices/(?P<invoice>[^/]+)/lineitems(?:/(?P<provider>[^/]+)/(?P<type>[^/]+))?",
        line_items,
    ),
    ("POST", rf"{BILLING}/(?P<export>reconciliation|usage)/billed/export", start_export),
    ("GET", rf"{BILLING}/operations/(?P<operation>[^/]+)", get_operation),
    ("GET", rf"{BILLING}/manifests/(?P<manifest>[^/]+)", get_manifest),
    ("GET", r"/blobs/billing/(?P<manifest>[^/]+)/(?P<blob>[^/]+)", get_blob),
]
