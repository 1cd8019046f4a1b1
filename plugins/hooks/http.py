"""A provider-neutral base for the REST hooks of invoice providers.

Provider APIs throttle (429 + ``Retry-After``), fail transiently (5xx, dropped connections) and
sometimes send bodies that are cut off. An invoice import must neither give up on the first hiccup
nor accept a half-read page, so every request here is bounded in time, retried a bounded number of
times, and JSON is parsed exactly (``Decimal``, never ``float``) or rejected loudly.

Connection extras read here (all optional):

- ``timeout``: seconds, ``[connect, read]`` or ``{"connect": s, "read": s}``; default 10 / 120.
- ``max_retries``: further attempts after the first one; default 5.
- ``max_retry_wait``: upper bound of any single wait in seconds, ``Retry-After`` included; default 120.
- ``retry_backoff``: first back-off in seconds when the server names no ``Retry-After``; default 1.

Only the method and the URL path are ever logged: query strings may carry SAS signatures and
headers carry tokens. A request that carries credentials (an ``Authorization`` header or ``auth``)
goes only to the hosts the connection configures (:attr:`ProviderHttpHook.trusted_origins`): a next
link, an operation location or a manifest pointing anywhere else is refused before it is sent.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Collection, Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import cached_property
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import requests
from airflow.sdk import BaseHook
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_exponential_jitter

from include.exact_json import LineBatch, loads_exact
from include.model import InvalidProviderData
from include.providers import get_provider

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
DEFAULT_TIMEOUT = (10.0, 120.0)
DEFAULT_MAX_RETRIES = 5
DEFAULT_MAX_RETRY_WAIT = 120.0
DEFAULT_RETRY_BACKOFF = 1.0


_QUERY = re.compile(r"\?[^\s'\")]*")
_REASON = re.compile(r"\[Errno -?\d+\] [^\"')]+|timed out")
"""The operating system's reason in a requests connection error (refused, unknown host, timed out)."""


class JsonReply(NamedTuple):
    data: Any
    headers: requests.structures.CaseInsensitiveDict


class _Transient(Exception):
    """One failed attempt worth repeating; ``final`` is raised once the attempts run out."""

    def __init__(self, final: Exception, retry_after: float | None = None):
        super().__init__(str(final))
        self.final = final
        self.retry_after = retry_after


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date, counted from ``now``,
    default the current time); None if absent/bad."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


class UntrustedUrl(InvalidProviderData):
    """A provider answer pointed a credentialed request at a host the connection does not configure."""


def origin(url: str) -> str:
    """``scheme://host:port`` of ``url``, lower-case, with the scheme's default port spelt out."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or {"https": 443, "http": 80}.get(scheme)
    return f"{scheme}://{(parts.hostname or '').lower()}:{port}"


def url_path(url: str) -> str:
    """The part of a URL that is safe to log (no host credentials, no query string)."""
    return urlsplit(url).path or "/"


def http_error(method: str, url: str, response: requests.Response) -> requests.HTTPError:
    """An HTTPError whose message names method, path and status but never the query string."""
    snippet = " ".join(response.text[:300].split())
    detail = f": {snippet}" if snippet else ""
    return requests.HTTPError(
        f"{method} {url_path(url)} failed with HTTP {response.status_code} {response.reason}{detail}",
        response=response,
    )


class ProviderHttpHook(BaseHook):
    """Session, timeouts, bounded retries and exact JSON for one provider REST API."""

    default_host = ""
    """Base URL used when the connection has no host."""
    provider = ""
    """The provider name in :mod:`include.providers`, whose invoice-id rule the hook applies."""
    sleep: Callable[[float], None] = staticmethod(time.sleep)
    """How the hook waits between retries and polls; tests replace it to record the waits instead."""

    def __init__(self, conn_id: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.conn_id = conn_id

    @cached_property
    def connection(self):
        return self.get_connection(self.conn_id)

    @cached_property
    def extras(self) -> dict:
        return self.connection.extra_dejson or {}

    @cached_property
    def base_url(self) -> str:
        host = (self.connection.host or self.default_host).rstrip("/")
        if "://" not in host:
            port = f":{self.connection.port}" if self.connection.port else ""
            host = f"{self.connection.schema or 'https'}://{host}{port}"
        return host

    @cached_property
    def session(self) -> requests.Session:
        session = requests.Session()
        session.headers.update({"Accept": "application/json", "User-Agent": "provider-invoice-sync"})
        return session

    def get_conn(self) -> requests.Session:
        return self.session

    @cached_property
    def timeout(self) -> tuple[float, float]:
        raw = self.extras.get("timeout")
        if raw is None:
            return DEFAULT_TIMEOUT
        if isinstance(raw, dict):
            return (float(raw.get("connect", DEFAULT_TIMEOUT[0])), float(raw.get("read", DEFAULT_TIMEOUT[1])))
        if isinstance(raw, list | tuple):
            connect, read = raw
            return (float(connect), float(read))
        return (float(raw), float(raw))

    @cached_property
    def max_retries(self) -> int:
        return int(self.extras.get("max_retries", DEFAULT_MAX_RETRIES))

    @cached_property
    def max_retry_wait(self) -> float:
        return float(self.extras.get("max_retry_wait", DEFAULT_MAX_RETRY_WAIT))

    @cached_property
    def retry_backoff(self) -> float:
        """The first back-off in seconds when the server names no ``Retry-After``; doubled for each further try."""
        return float(self.extras.get("retry_backoff", DEFAULT_RETRY_BACKOFF))

    @cached_property
    def _backoff(self) -> wait_exponential_jitter:
        first = self.retry_backoff
        return wait_exponential_jitter(initial=first, max=self.max_retry_wait, jitter=first)

    @property
    def trusted_origins(self) -> set[str]:
        """Origins that may receive the connection's credentials; hooks add their token and Graph hosts."""
        return {origin(self.base_url)}

    def probe(self) -> str:
        """Obtain what the provider's invoice list needs and read its first page; says what answered."""
        raise NotImplementedError

    def test_connection(self) -> tuple[bool, str]:
        """The UI's *Test* button: credentials accepted and the invoice list reachable, one sentence either
        way; no retries, so that a wrong host answers at once. The sentence never carries a secret: errors
        name method, path and status only (:func:`http_error`)."""
        self.max_retries = 0
        try:
            what = self.probe()
        except requests.HTTPError as exc:
            return False, f"{self.hook_name} refused the test: {exc}"
        except (requests.ConnectionError, requests.Timeout) as exc:
            request, _, detail = str(exc).partition(": ")
            reason = _REASON.search(detail)
            cause = reason[0].strip() if reason else type(exc).__name__
            return False, (
                f"{self.hook_name} could not be reached: {request} ({cause}); check the connection's host and URLs."
            )
        except Exception as exc:
            return False, f"{self.hook_name} test failed: {exc}"
        return True, f"Connected to {self.hook_name}: {what}."

    def check_trusted(self, url: str) -> None:
        """Refuse (:class:`UntrustedUrl`) to send the connection's credentials to ``url`` outside its hosts."""
        if origin(url) not in self.trusted_origins:
            raise UntrustedUrl(
                f"{self.hook_name} pointed a request at {origin(url)}, which is not a host of connection "
                f"{self.conn_id}; it was refused so that no credential leaves the configured hosts."
            )

    def exports(self, invoice: dict) -> list[str]:
        """The asynchronous exports the provider prepares before the invoice's lines can be read (none here).

        A hook that has some also offers ``start_export(invoice_id, export) -> operation location``,
        ``export_trigger(invoice_id, operations)`` (what the fetch defers to while they are prepared),
        ``export_timeout`` (seconds) and ``export_operations`` (started exports its downloads use).
        """
        return []

    def check_invoice_id(self, invoice_id: object) -> str:
        """The provider's one invoice-id rule (:meth:`include.providers.ProviderSpec.check_invoice_id`)."""
        return get_provider(self.provider).check_invoice_id(invoice_id)

    def listed(self, invoices: list[dict], id_key: str) -> list[dict]:
        """The listed invoices whose id keeps the rule; any other is reported in the log, never fetched."""
        kept = []
        for invoice in invoices:
            try:
                self.check_invoice_id(invoice.get(id_key))
            except ValueError as err:
                self.log.error("The invoice list of %s holds an id that is not fetched: %s", self.hook_name, err)
                continue
            kept.append(invoice)
        return kept

    def url(self, path_or_url: str) -> str:
        """An absolute URL as is, otherwise ``path_or_url`` below the connection's base URL."""
        if "://" in path_or_url:
            return path_or_url
        return f"{self.base_url}/{path_or_url.lstrip('/')}"

    def request(
        self, method: str, url: str, *, ok: Collection[int] = (200,), stream: bool = False, **kwargs: Any
    ) -> requests.Response:
        """One HTTP exchange with retries; statuses outside ``ok`` raise ``requests.HTTPError``."""
        return self._with_retries(lambda: self._send(method, url, ok, stream, kwargs))

    def request_json(self, method: str, url: str, *, ok: Collection[int] = (200,), **kwargs: Any) -> JsonReply:
        """Like :meth:`request`, and a malformed or cut-off body is retried, then ``InvalidProviderData``."""

        def attempt() -> JsonReply:
            response = self._send(method, url, ok, False, kwargs)
            return JsonReply(self._parse(method, url, response), response.headers)

        return self._with_retries(attempt)

    def get_json(self, url: str, **kwargs: Any) -> Any:
        return self.request_json("GET", url, **kwargs).data

    def iter_line_batches(self, invoice: dict) -> Iterator[LineBatch] | None:
        """The invoice's lines as unparsed JSON-lines batches, or ``None`` when they do not arrive that way.

        A provider whose invoices come as JSON-lines files overrides this, and a large invoice is then
        parsed and staged by several processes (:mod:`include.staging`); otherwise every line comes
        from ``iter_line_items``, in this process.
        """
        return None

    def _send(self, method: str, url: str, ok: Collection[int], stream: bool, kwargs: dict) -> requests.Response:
        self.log.debug("%s %s", method, url_path(url))
        if kwargs.get("auth") is not None or "Authorization" in (kwargs.get("headers") or {}):
            self.check_trusted(url)
        try:
            response = self.session.request(method, url, timeout=self.timeout, stream=stream, **kwargs)
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
            # requests puts the full URL (SAS signature included) into the message: rebuild it without.
            detail = _QUERY.sub("?...", str(exc))
            raise _Transient(type(exc)(f"{method} {url_path(url)} failed: {detail}")) from None
        if response.status_code in RETRYABLE_STATUS:
            error = http_error(method, url, response)
            response.close()
            raise _Transient(error, parse_retry_after(response.headers.get("Retry-After")))
        if response.status_code not in ok:
            raise http_error(method, url, response)
        return response

    @staticmethod
    def _parse(method: str, url: str, response: requests.Response) -> Any:
        try:
            return loads_exact(response.content.decode("utf-8"))
        except InvalidProviderData as exc:  # complete and parsed, but not numbers (NaN): asking again will not help
            raise InvalidProviderData(f"{method} {url_path(url)} returned {exc}") from None
        except (ValueError, requests.RequestException) as exc:
            # ValueError covers JSONDecodeError and UnicodeDecodeError; RequestException a cut connection.
            raise _Transient(
                InvalidProviderData(
                    f"{method} {url_path(url)} returned a body that is not valid JSON or was cut off ({exc})."
                )
            ) from exc

    def _with_retries(self, attempt: Any) -> Any:
        retrying = Retrying(
            retry=retry_if_exception_type(_Transient),
            stop=stop_after_attempt(self.max_retries + 1),
            wait=self._wait,
            before_sleep=self._log_retry,
            sleep=self.sleep,
            reraise=True,
        )
        try:
            return retrying(attempt)
        except _Transient as exc:
            raise exc.final from None

    def _wait(self, state: RetryCallState) -> float:
        retry_after = state.outcome.exception().retry_after
        if retry_after is not None:
            return min(retry_after, self.max_retry_wait)
        return self._backoff(state)

    def _log_retry(self, state: RetryCallState) -> None:
        self.log.warning(
            "Attempt %d of %d failed (%s); retrying in %.1f s",
            state.attempt_number,
            self.max_retries + 1,
            state.outcome.exception().final,
            state.upcoming_sleep,
        )
