"""Microsoft Partner Center: invoices and every money-carrying line of an invoice.

Three paging schemes meet here, and each is checked so that an invoice never arrives truncated:

- legacy Office/Azure billing lines: v1 offset paging, 2,000 per page;
- one-time (new commerce) and marketplace lines before ``v2_export_from``: v1 continuation tokens;
- the same lines from ``v2_export_from`` on: the asynchronous billed-reconciliation export on
  Microsoft Graph (export -> poll -> manifest -> gzip JSON-lines blobs), because Microsoft retired v1
  line items for new billing periods.

The billed daily-rated usage of a new-commerce invoice (:meth:`PartnerCenterHook.iter_usage_items`, or the
export's batches: :meth:`PartnerCenterHook.iter_usage_batches`) comes the same two ways: v1 ``usagelineitems``
with continuation tokens before ``v2_export_from``, the Graph billed-usage export (same flow and blob format)
from then on.

An export is started (:meth:`PartnerCenterHook.start_export`) and then waited for either here (a sleep loop,
``deferrable=False``) or, by the fetch, on the triggerer (:mod:`plugins.triggers.partner_center`), which reads the
operation's answers with :meth:`PartnerCenterHook.read_operation` as the loop does; the downloads then use the
started operations (:attr:`PartnerCenterHook.export_operations`) instead of starting new ones.

Connection ``partner_center_default`` (type ``partner_center``): host = API base URL, login/password =
Entra app client id/secret; extra ``tenant_id``, ``refresh_token`` (the consent's first token: a rotated
one is kept in the Variable ``<conn_id>_refresh_token``, see :mod:`plugins.hooks.refresh_token`),
``token_url`` (``{tenant_id}`` is filled in), ``graph_url``, ``v2_export_from`` (ISO date) and
``export_timeout`` (seconds), plus the retry settings of :mod:`plugins.hooks.http`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import date
from functools import cached_property
from typing import Any, NamedTuple
from urllib.parse import quote

import requests
from airflow.sdk.log import mask_secret
from urllib3.exceptions import HTTPError

from include.exact_json import LineBatch, gzip_line_batches
from include.model import InvalidProviderData, InvoiceNotFound, parse_date
from include.providers import conn_id_of
from plugins.hooks.http import ProviderHttpHook, origin, parse_retry_after
from plugins.hooks.refresh_token import ConsentExpired, MissingRefreshToken, RotatingRefreshToken

PARTNER_CENTER_RESOURCE = "https://api.partnercenter.microsoft.com"
GRAPH_RESOURCE = "https://graph.microsoft.com"
DEFAULT_TOKEN_URL = "https://login.microsoftonline.com/{tenant_id}/oauth2/token"
DEFAULT_GRAPH_URL = "https://graph.microsoft.com/v1.0"
DEFAULT_V2_EXPORT_FROM = "2024-02-01"
DEFAULT_EXPORT_TIMEOUT = 1800.0
DEFAULT_EXPORT_POLL = 10.0
TOKEN_REFRESH_MARGIN = 300.0
"""Seconds before expiry at which a cached token is replaced."""
PAGE_SIZE = 2000
"""The documented maximum page size of v1 line items."""

OFFSET_PAGED = {"office", "azure"}
CONTINUATION_PAGED = {"one_time": ("onetime", "OneTime"), "marketplace": ("marketplace", "Marketplace")}
"""Declared billingProvider -> its (query, path) spelling in v1 URLs; Microsoft refuses ``one_time``."""
EXPORT_SOURCE = "one_time/billing_line_items"
"""The normaliser's source of every v2 export line (one-time and marketplace lines alike)."""
RECONCILIATION_EXPORT = "reconciliation"
USAGE_EXPORT = "usage"
EXPORT_PATHS = {RECONCILIATION_EXPORT: "reconciliation/billed/export", USAGE_EXPORT: "usage/billed/export"}
"""Graph exports under ``/reports/partners/billing/``: billed reconciliation lines, billed daily-rated usage."""
LINE_ITEM_TYPES = {"billing": "BillingLineItems", "usage": "UsageLineItems"}
"""v1 ``invoicelineitemtype`` -> its path spelling for continuation pages."""
BATCH_LINES = 10_000
"""Lines of a blob per :class:`LineBatch`: small enough to keep a few in flight between processes,
large enough that handing one over costs little next to parsing it."""


class ExportState(NamedTuple):
    """One poll of an export operation: ``manifest_link`` once it is ready, else the seconds to ``wait``."""

    manifest_link: str | None = None
    wait: float = 0.0


class PartnerCenterHook(ProviderHttpHook):
    """Reads invoices and their line items from Partner Center (v1) and Microsoft Graph (v2 export)."""

    conn_name_attr = "conn_id"
    provider = "microsoft"
    default_conn_name = conn_id_of(provider)
    conn_type = "partner_center"
    hook_name = "Microsoft Partner Center"
    default_host = PARTNER_CENTER_RESOURCE

    def __init__(self, conn_id: str = default_conn_name, **kwargs: Any):
        super().__init__(conn_id, **kwargs)
        self._tokens: dict[str, tuple[str, float]] = {}
        self._correlation_id = str(uuid.uuid4())
        self.export_operations: dict[str, str] = {}
        """``export -> operation location`` of exports started before (by the fetch): waited for, not started again."""

    # -- authentication -------------------------------------------------------------------------

    @cached_property
    def token_url(self) -> str:
        template = self.extras.get("token_url") or DEFAULT_TOKEN_URL
        return template.replace("{tenant_id}", str(self.extras.get("tenant_id", "")))

    @cached_property
    def graph_url(self) -> str:
        return (self.extras.get("graph_url") or DEFAULT_GRAPH_URL).rstrip("/")

    @property
    def trusted_origins(self) -> set[str]:
        """Partner Center, Graph and the token endpoint; export blobs are read with their SAS, no token."""
        return {origin(self.base_url), origin(self.graph_url), origin(self.token_url)}

    @cached_property
    def v2_export_from(self) -> date:
        return parse_date(self.extras.get("v2_export_from") or DEFAULT_V2_EXPORT_FROM)

    @cached_property
    def refresh_token(self) -> RotatingRefreshToken:
        """The consent's newest refresh token: Microsoft may return a new one with every access token."""
        return RotatingRefreshToken(self.conn_id, self.extras.get("refresh_token"))

    def get_access_token(self, resource: str = PARTNER_CENTER_RESOURCE) -> str:
        """An app+user token for ``resource`` (secure application model), cached until near expiry; the
        refresh token it returns is kept for the next run (:mod:`plugins.hooks.refresh_token`)."""
        cached = self._tokens.get(resource)
        if cached and cached[1] - TOKEN_REFRESH_MARGIN > time.monotonic():
            return cached[0]
        form = {
            "grant_type": "refresh_token",
            "client_id": self.connection.login,
            "client_secret": self.connection.password,
            "resource": resource,
        }
        reply = self.refresh_token.exchange(
            lambda refresh_token: (
                self.request_json("POST", self.token_url, data={**form, "refresh_token": refresh_token}).data
            )
        )
        try:
            token, lifetime = reply["access_token"], float(reply.get("expires_in", 3600))
        except (KeyError, TypeError, ValueError):
            raise InvalidProviderData("The Microsoft token endpoint answered without an access token.") from None
        mask_secret(token)
        self._tokens[resource] = (token, time.monotonic() + lifetime)
        return token

    def test_connection(self) -> tuple[bool, str]:
        """As the base class; a refresh token the test receives is not stored, since the test runs outside a
        task under a temporary connection id. Microsoft does not revoke the token the test used."""
        self.refresh_token.persist = False
        return super().test_connection()

    def probe(self) -> str:
        """A token for Partner Center, then the first page of the invoice list.

        The API server's test runs under a temporary connection id, so it cannot find the Variable of the
        real one and tries the connection's field, which may be older than the token the syncs keep.
        """
        try:
            listed = _checked_items(self._v1("invoices"), "the invoice list")
        except MissingRefreshToken:
            raise
        except ConsentExpired:
            raise ConsentExpired(
                "the refresh token was refused (invalid_grant: expired, revoked or already used); if the "
                "scheduled syncs still work, the connection's Refresh token field is older than the rotated "
                "token they keep in the Variable <connection id>_refresh_token, otherwise renew the consent "
                "and put its new refresh token into that Variable."
            ) from None
        return f"a token was obtained and the invoice list answered with {len(listed)} invoice(s)"

    def auth_headers(self, resource: str) -> dict[str, str]:
        """The headers of a request to ``resource``: a token for it (fetched when none is cached) and request ids."""
        return {
            "Authorization": f"Bearer {self.get_access_token(resource)}",
            "MS-RequestId": str(uuid.uuid4()),
            "MS-CorrelationId": self._correlation_id,
        }

    def _v1(self, path: str, *, headers: dict | None = None) -> Any:
        """GET a Partner Center v1 path (links from the API are relative to ``/v1``)."""
        url = self.url(path if "://" in path else f"/v1/{path.lstrip('/')}")
        return self.get_json(url, headers={**self.auth_headers(PARTNER_CENTER_RESOURCE), **(headers or {})})

    # -- invoices ---------------------------------------------------------------------------------

    def list_invoices(self) -> list[dict]:
        """Every invoice of the partner, following ``links.next``."""
        invoices: list[dict] = []
        page = self._v1("invoices")
        while True:
            invoices.extend(_checked_items(page, "the invoice list"))
            next_link = (page.get("links") or {}).get("next")
            if not next_link:
                return self.listed(invoices, "id")
            page = self._v1(next_link["uri"])

    def get_invoice(self, invoice_id: str) -> dict:
        try:
            return self._v1(f"invoices/{_segment(self.check_invoice_id(invoice_id))}")
        except requests.HTTPError as exc:
            if exc.response is not None and exc.response.status_code == 404:
                raise InvoiceNotFound(f"Microsoft Partner Center does not know invoice {invoice_id}.") from None
            raise

    # -- line items -------------------------------------------------------------------------------

    def uses_v2_export(self, invoice: dict) -> bool:
        """Billing periods from ``v2_export_from`` on only exist in the v2 reconciliation export."""
        start = parse_date(invoice.get("billingPeriodStartDate") or invoice.get("invoiceDate"))
        return start is not None and start >= self.v2_export_from

    def _line_sets(self, invoice: dict) -> tuple[list[str], list[str], bool]:
        """Billing providers of the invoice's line sets: ``(offset paged, continuation paged, v2 export)``.

        The last is whether the continuation-paged sets come from the v2 export instead. A declared
        billing set we cannot fetch is an error, not a silent gap.
        """
        declared = [
            str(detail.get("billingProvider", "")).lower()
            for detail in invoice.get("invoiceDetails") or ()
            if str(detail.get("invoiceLineItemType", "")).lower() == "billing_line_items"
        ]
        unknown = sorted(set(declared) - OFFSET_PAGED - set(CONTINUATION_PAGED))
        if unknown:
            raise InvalidProviderData(
                f"Invoice {invoice['id']} declares billing line items from {', '.join(unknown)}, "
                "which this importer cannot fetch."
            )
        declared = list(dict.fromkeys(declared))
        modern = [p for p in declared if p in CONTINUATION_PAGED]
        return [p for p in declared if p in OFFSET_PAGED], modern, bool(modern) and self.uses_v2_export(invoice)

    def iter_line_items(self, invoice: dict) -> Iterator[tuple[str, dict]]:
        """``(source, raw_line)`` for every money-carrying line set the invoice declares.

        ``usage_line_items`` are not among them: legacy Azure usage records carry quantities only, and
        daily-rated one-time usage is already rolled up into the one-time billing lines, so neither adds
        to ``totalCharges``. The daily-rated usage is fetched by :meth:`iter_usage_items` for the usage
        checksum instead.
        """
        invoice_id = invoice["id"]
        offset_paged, modern, v2_export = self._line_sets(invoice)
        for provider in offset_paged:
            source = f"{provider}/billing_line_items"
            yield from ((source, line) for line in self.iter_offset_line_items(invoice_id, provider))
        if v2_export:
            for batch in self.iter_export_batches(invoice_id):
                yield from batch.items()
            return
        for provider in modern:
            source = f"{provider}/billing_line_items"
            yield from ((source, line) for line in self.iter_onetime_v1(invoice_id, provider))

    def iter_line_batches(self, invoice: dict) -> Iterator[LineBatch] | None:
        """The export's batches when every line of the invoice comes from the v2 export (see the base class)."""
        offset_paged, _, v2_export = self._line_sets(invoice)
        if offset_paged or not v2_export:
            return None
        return self.iter_export_batches(invoice["id"])

    def iter_offset_line_items(self, invoice_id: str, provider: str) -> Iterator[dict]:
        """Legacy billing lines, ``PAGE_SIZE`` at a time, until a page comes back short."""
        offset = 0
        while True:
            page = self._v1(
                f"invoices/{_segment(invoice_id)}/lineitems?provider={provider}"
                f"&invoicelineitemtype=billinglineitems&size={PAGE_SIZE}&offset={offset}"
            )
            items = _checked_items(page, f"{provider} line items of invoice {invoice_id} at offset {offset}")
            yield from items
            if len(items) < PAGE_SIZE:
                return
            offset += len(items)

    def iter_onetime_v1(
        self, invoice_id: str, provider: str = "one_time", line_type: str = "billing", currency: str | None = None
    ) -> Iterator[dict]:
        """One-time (or ``marketplace``) billing lines, or (``line_type="usage"``) billed daily-rated usage,
        through v1 continuation-token paging."""
        query_name, path_name = CONTINUATION_PAGED[provider]
        type_path = LINE_ITEM_TYPES[line_type]
        what = "daily-rated usage" if line_type == "usage" else "line items"
        page = self._v1(
            f"invoices/{_segment(invoice_id)}/lineitems?provider={query_name}"
            f"&invoicelineitemtype={type_path.lower()}&size={PAGE_SIZE}"
            + (f"&currencycode={currency}" if currency else "")
        )
        number = 1
        while True:
            yield from _checked_items(page, f"page {number} of {provider} {what} of invoice {invoice_id}")
            token = page.get("continuationToken")
            if not token:
                return
            number += 1
            page = self._v1(
                f"invoices/{_segment(invoice_id)}/lineitems/{path_name}/{type_path}"
                f"?seekOperation=Next&size={PAGE_SIZE}",
                headers={"MS-ContinuationToken": token},
            )

    def iter_usage_items(self, invoice: dict) -> Iterator[dict] | None:
        """The billed daily-rated usage of a new-commerce invoice (one DailyRatedUsageLineItem per item), or
        ``None`` for an invoice without one-time lines (legacy Azure usage records carry no money).

        Fetched whenever the invoice has one-time lines, declared or not: the usage checksum decides from the
        reconciliation lines whether it needs them, and an empty answer is what "not published yet" looks like.
        """
        _, modern, _ = self._line_sets(invoice)
        if not modern:
            return None
        batches = self.iter_usage_batches(invoice)
        if batches is not None:
            return (line for batch in batches for _, line in batch.items())
        return self.iter_onetime_v1(invoice["id"], "one_time", "usage", invoice.get("currencyCode"))

    def iter_usage_batches(self, invoice: dict) -> Iterator[LineBatch] | None:
        """The billed daily-rated usage as the export's JSON-lines batches (parsed in worker processes), or
        ``None`` when it does not come from the v2 export (see :meth:`iter_usage_items`)."""
        _, _, v2_export = self._line_sets(invoice)
        return self.iter_export_batches(invoice["id"], USAGE_EXPORT) if v2_export else None

    def iter_export_batches(self, invoice_id: str, export: str = RECONCILIATION_EXPORT) -> Iterator[LineBatch]:
        """All billed reconciliation lines (or, ``export="usage"``, billed daily-rated usage) of the invoice
        from the Graph v2 export, blob by blob, as text.

        One reconciliation export holds all one-time and marketplace lines of the invoice; ``LineBatch.items``
        parses them.
        """
        manifest = self._export_manifest(invoice_id, export)
        blobs = manifest.get("blobs") or []
        if manifest.get("blobCount") != len(blobs):
            raise InvalidProviderData(
                f"The {export} manifest of invoice {invoice_id} announces {manifest.get('blobCount')} "
                f"blobs but lists {len(blobs)}."
            )
        for blob in blobs:
            url = f"{manifest['rootDirectory'].rstrip('/')}/{blob['name']}?{manifest['sasToken']}"
            yield from self._blob_batches(invoice_id, blob["name"], url, export)

    def exports(self, invoice: dict) -> list[str]:
        """Both Graph exports (reconciliation lines, billed daily-rated usage) for an invoice whose one-time and
        marketplace lines come from v2; none for one read from v1 alone."""
        return [RECONCILIATION_EXPORT, USAGE_EXPORT] if self._line_sets(invoice)[2] else []

    def start_export(self, invoice_id: str, export: str) -> str:
        """Ask Graph for the ``export`` of the invoice; returns the location of its operation."""
        started = self.request(
            "POST",
            f"{self.graph_url}/reports/partners/billing/{EXPORT_PATHS[export]}",
            json={"invoiceId": invoice_id, "attributeSet": "full"},
            headers=self.auth_headers(GRAPH_RESOURCE),
            ok=(202,),
        )
        location = started.headers.get("Location")
        if not location:
            raise InvalidProviderData(f"The {export} export of invoice {invoice_id} returned no Location.")
        return self._graph(location)

    @cached_property
    def export_timeout(self) -> float:
        """Seconds Microsoft may take to prepare an export (extra ``export_timeout``, default 30 minutes)."""
        return float(self.extras.get("export_timeout", DEFAULT_EXPORT_TIMEOUT))

    def export_trigger(self, invoice_id: str, operations: dict[str, str]):
        """What the fetch defers to while Microsoft prepares ``operations`` (only the conn id travels, no secret)."""
        from plugins.triggers.partner_center import PartnerCenterExportTrigger

        return PartnerCenterExportTrigger(conn_id=self.conn_id, invoice_id=invoice_id, operations=operations)

    def read_operation(self, data: Any, retry_after: str | None, invoice_id: str, export: str) -> ExportState:
        """What an operation's answer says: ready (its manifest link), failed (one sentence), or poll again when."""
        status = str(data.get("status", "")).lower() if isinstance(data, dict) else ""
        if status == "succeeded":
            link = data.get("resourceLocation@odata.navigationLink")
            if not link:
                raise InvalidProviderData(f"The {export} export of invoice {invoice_id} succeeded without a manifest.")
            return ExportState(manifest_link=self._graph(link))
        if status == "failed":
            error = data.get("error") or {}
            raise InvalidProviderData(
                f"The {export} export of invoice {invoice_id} failed: "
                f"{error.get('code', '?')} {error.get('message', 'no reason given')}."
            )
        wait = parse_retry_after(retry_after)
        return ExportState(wait=min(DEFAULT_EXPORT_POLL if wait is None else wait, self.max_retry_wait))

    @staticmethod
    def expired(invoice_id: str, export: str) -> InvalidProviderData:
        """An operation Graph no longer knows (404): it expired, the next run starts a new export."""
        return InvalidProviderData(
            f"Microsoft no longer knows the {export} export operation of invoice {invoice_id} (expired); "
            "the next run starts a new export."
        )

    def _export_manifest(self, invoice_id: str, export: str = RECONCILIATION_EXPORT) -> dict:
        """The export's manifest once it is ready: the operation in :attr:`export_operations` (started earlier, e.g.
        before the fetch deferred), or a new one, waited for here (honouring ``Retry-After``, bounded)."""
        location = self.export_operations.get(export) or self.start_export(invoice_id, export)
        deadline = time.monotonic() + self.export_timeout
        while True:
            try:
                reply = self.request_json("GET", location, headers=self.auth_headers(GRAPH_RESOURCE))
            except requests.HTTPError as exc:
                if exc.response is not None and exc.response.status_code == 404:
                    raise self.expired(invoice_id, export) from None
                raise
            state = self.read_operation(reply.data, reply.headers.get("Retry-After"), invoice_id, export)
            if state.manifest_link:
                return self.get_json(state.manifest_link, headers=self.auth_headers(GRAPH_RESOURCE))
            if time.monotonic() + state.wait > deadline:
                raise TimeoutError(f"The {export} export of invoice {invoice_id} did not finish in time.")
            self.sleep(state.wait)

    def _graph(self, link: str) -> str:
        return link if "://" in link else f"{self.graph_url}/{link.lstrip('/')}"

    def _blob_batches(
        self, invoice_id: str, name: str, url: str, export: str = RECONCILIATION_EXPORT
    ) -> Iterator[LineBatch]:
        """Stream one gzip JSON-lines blob as batches of ``BATCH_LINES`` lines (the last one shorter);
        see :func:`include.exact_json.gzip_line_batches`. A blob that cannot be read to its end fails."""
        response = self.request("GET", url, stream=True)
        try:
            yield from gzip_line_batches(
                response.raw,
                source=EXPORT_SOURCE,
                origin=f"Blob {name} of the {export} export of invoice {invoice_id}",
                batch_lines=BATCH_LINES,
                read_errors=(requests.RequestException, HTTPError),
            )
        finally:
            response.close()


def _segment(invoice_id: str) -> str:
    """The id as one URL path segment: whatever it holds, it cannot reach another path or the query."""
    return quote(str(invoice_id), safe="")


def _checked_items(page: Any, what: str) -> list[dict]:
    """The page's items, refusing a page that carries fewer (or more) items than its ``totalCount``."""
    if not isinstance(page, dict) or not isinstance(page.get("items"), list):
        raise InvalidProviderData(f"Partner Center returned {what} without an items list.")
    items, total = page["items"], page.get("totalCount")
    if total is not None and total != len(items):
        raise InvalidProviderData(
            f"Partner Center returned {len(items)} items for {what} but its totalCount says {total}."
        )
    return items
