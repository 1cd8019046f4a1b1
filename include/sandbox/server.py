"""The sandbox HTTP server core: routing, request log, fault injection, exact JSON.

Provider behaviour lives in each registered provider's ``sandbox`` module
(:class:`include.providers.SandboxEndpoints`): its ``ROUTES`` (``(method, path_regex, handler)``
triples; ``handler(request: Request) -> Response``) and ``connection(base_url)``, the Airflow
connection pointing here (its conn_id comes from the provider's spec). Adding a provider to the
registry adds it here; the core does not change. Only 127.0.0.1 is ever bound.
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from include.providers import PROVIDERS, SandboxEndpoints

HOST = "127.0.0.1"
FAULT_KINDS = ("status", "delay", "truncate", "drop_items", "break_chain")
LIST_KEYS = ("items", "blobs")
"""Lists that ``drop_items`` shortens, whichever a payload has first."""


def dumps(value: Any) -> str:
    """Compact JSON that writes ``Decimal`` exactly as it was read (the stdlib would need a float)."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} cannot be written as JSON")
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    return json.dumps(value)


def loads(text: str | bytes) -> Any:
    return json.loads(text, parse_float=Decimal)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: Message
    body: bytes
    match: re.Match
    server: SandboxServer
    break_chain: bool = False
    """Set by a ``break_chain`` fault: a handler must reject the request's continuation token."""

    def json(self) -> Any:
        return loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode()))


@dataclass
class Response:
    status: int = 200
    payload: Any = None
    """JSON payload, serialised after faults had their say; ignored when ``body`` is set."""
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    def encoded(self) -> bytes:
        if self.body is not None:
            return self.body
        return b"" if self.payload is None else dumps(self.payload).encode()


def error(status: int, code: str, message: str, headers: dict | None = None) -> Response:
    return Response(status, {"error": {"code": code, "message": message}}, headers=headers or {})


@dataclass
class Fault:
    """A misbehaviour applied to the next ``times`` requests whose path matches ``path`` (regex)."""

    kind: str
    path: str
    times: int = 1
    method: str | None = None
    status: int = 503
    retry_after: str | None = None
    delay: float = 0.0
    id: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind {self.kind!r} is not one of {', '.join(FAULT_KINDS)}")
        if self.times < 1:
            raise ValueError("a fault applies at least once (times >= 1)")
        re.compile(self.path)

    def matches(self, method: str, path: str) -> bool:
        return self.times > 0 and (self.method in (None, method)) and re.search(self.path, path) is not None


Route = tuple[str, str, Callable[[Request], Response]]


class SandboxServer:
    """A threaded HTTP server on 127.0.0.1 serving every provider of the registry.

    Use as a context manager (``with SandboxServer(dir) as sandbox:``); it stops on exit.
    ``blob_lines`` sizes the v2 export blobs; ``export_retry_after`` is the Retry-After of a
    running export operation, and ``export_polls`` how many polls find it running (a slow export);
    ``rotate_refresh_tokens``: see :meth:`refresh_token_grant`.
    """

    def __init__(
        self,
        data_dir: str | Path,
        port: int = 0,
        *,
        blob_lines: int = 1000,
        export_retry_after: int = 1,
        rotate_refresh_tokens: bool = False,
        export_polls: int = 1,
    ):
        self.data_dir = Path(data_dir)
        self.blob_lines = blob_lines
        self.export_retry_after = export_retry_after
        self.rotate_refresh_tokens = rotate_refresh_tokens
        self.issued_refresh_tokens: list[str] = []
        """Every refresh token a rotating token endpoint handed out, oldest first."""
        self._refresh_tokens: dict[str, str] = {}
        self.export_polls = export_polls
        self.endpoints: dict[str, SandboxEndpoints] = {spec.conn_id: spec.sandbox() for spec in PROVIDERS.values()}
        """conn_id -> the provider's sandbox module."""
        self._routes = [
            (method, re.compile(pattern), handler)
            for method, pattern, handler in itertools.chain(
                CONTROL_ROUTES, *(m.ROUTES for m in self.endpoints.values())
            )
        ]
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._fault_ids = itertools.count(1)
        self._log: list[dict] = []
        self._state: dict[str, dict] = {}
        self._thread: threading.Thread | None = None
        self._httpd = ThreadingHTTPServer((HOST, port), _handler_class(self))
        self._httpd.daemon_threads = True

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> SandboxServer:
        self._thread = threading.Thread(target=self._serve, name="sandbox", daemon=True)
        self._thread.start()
        return self

    def _serve(self) -> None:
        self._httpd.serve_forever(poll_interval=0.05)  # a short poll makes stop() quick

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def state(self, name: str) -> dict:
        """Mutable state of one provider module (tokens, export operations...)."""
        with self._lock:
            return self._state.setdefault(name, {})

    def refresh_token_grant(self, initial: str, presented: str | None) -> str | None:
        """The refresh token a token endpoint whose consent started with ``initial`` returns for a grant
        presenting ``presented``, or None when it must refuse the grant (``invalid_grant``).

        By default the endpoint accepts ``initial`` and returns it unchanged. With ``rotate_refresh_tokens``
        every grant returns a new token and spends the one presented, which is refused from then on, as
        single-use refresh tokens are.
        """
        with self._lock:
            current = self._refresh_tokens.get(initial, initial)
            if presented != current:
                return None
            if not self.rotate_refresh_tokens:
                return current
            issued = f"sbx-rt-{secrets.token_urlsafe(24)}"
            self._refresh_tokens[initial] = issued
            self.issued_refresh_tokens.append(issued)
            return issued

    # -- connections -------------------------------------------------------------------------------

    def connections(self) -> dict[str, dict]:
        return {conn_id: module.connection(self.url) for conn_id, module in self.endpoints.items()}

    def env(self, extra: dict | None = None) -> dict[str, str]:
        """``AIRFLOW_CONN_*`` -> JSON; ``extra`` is merged into every connection's extra."""
        return {
            f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps({**conn, "extra": {**conn["extra"], **(extra or {})}})
            for conn_id, conn in self.connections().items()
        }

    # -- request log and faults --------------------------------------------------------------------

    @property
    def requests(self) -> list[dict]:
        """Every provider request so far: method, path, query, status, fault, time (monotonic)."""
        with self._lock:
            return list(self._log)

    def clear_requests(self) -> None:
        with self._lock:
            self._log.clear()

    def add_fault(self, kind: str, path: str, times: int = 1, **options: Any) -> dict:
        """Inject ``kind`` into the next ``times`` requests matching ``path``; see :class:`Fault`."""
        fault = Fault(kind, path, times, **options, id=next(self._fault_ids))
        with self._lock:
            self._faults.append(fault)
        return vars(fault).copy()

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def faults(self) -> list[dict]:
        with self._lock:
            return [vars(f).copy() for f in self._faults if f.times > 0]

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.times -= 1
                    return fault
        return None

    # -- dispatch ----------------------------------------------------------------------------------

    def dispatch(self, method: str, target: str, headers: Message, body: bytes) -> Response:
        split = urlsplit(target)
        path, query = split.path, dict(parse_qsl(split.query))
        control = path.startswith("/_sandbox/")
        fault = None if control else self._take_fault(method, path)
        if fault and fault.kind == "delay":
            time.sleep(fault.delay)
        if fault and fault.kind == "status":
            retry = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            response = error(fault.status, "SandboxFault", f"Injected HTTP {fault.status}.", retry)
        else:
            response = self._route(method, path, query, headers, body, fault)
        response = _apply_fault(fault, response)
        if not control:
            entry = {"method": method, "path": path, "query": split.query, "status": response.status}
            entry |= {"fault": fault.kind if fault else None, "time": time.monotonic()}
            with self._lock:
                self._log.append(entry)
        return response

    def _route(
        self, method: str, path: str, query: dict, headers: Message, body: bytes, fault: Fault | None
    ) -> Response:
        allowed = False
        for route_method, pattern, handler in self._routes:
            match = pattern.fullmatch(path)
            if match and route_method == method:
                request = Request(method, path, query, headers, body, match, self)
                request.break_chain = bool(fault and fault.kind == "break_chain")
                return handler(request)
            allowed = allowed or bool(match)
        if allowed:
            return error(405, "MethodNotAllowed", f"{method} is not allowed on {path}.")
        return error(404, "NotFound", f"The sandbox serves nothing at {path}.")


def _apply_fault(fault: Fault | None, response: Response) -> Response:
    """Shorten a list (``drop_items``) or cut the body half-way (``truncate``), keeping the rest intact."""
    if fault and fault.kind == "drop_items" and isinstance(response.payload, dict):
        key = next((k for k in LIST_KEYS if isinstance(response.payload.get(k), list)), None)
        if key and response.payload[key]:
            kept = response.payload[key][: len(response.payload[key]) // 2]
            response.payload = {**response.payload, key: kept}
    if fault and fault.kind == "truncate":
        body = response.encoded()
        response.body = body[: len(body) // 2]
    return response


def _handler_class(sandbox: SandboxServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 60

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            try:
                response = sandbox.dispatch(self.command, self.path, self.headers, body)
            except Exception as exc:  # a sandbox bug must answer, not hang the client
                response = error(500, "SandboxError", f"{type(exc).__name__}: {exc}")
            payload = response.encoded()
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_POST = do_DELETE = do_PUT = do_HEAD = _serve

        def log_message(self, format: str, *args: Any) -> None:
            """Silent: the request log is kept in memory (``GET /_sandbox/requests``)."""

    return Handler


def _add_fault(request: Request) -> Response:
    try:
        return Response(201, request.server.add_fault(**request.json()))
    except (TypeError, ValueError) as exc:
        return error(400, "BadFault", str(exc))


def _clear_faults(request: Request) -> Response:
    request.server.clear_faults()
    return Response(204)


def _clear_requests(request: Request) -> Response:
    request.server.clear_requests()
    return Response(204)


CONTROL_ROUTES: list[Route] = [
    ("GET", r"/_sandbox/faults", lambda request: Response(200, request.server.faults)),
    ("POST", r"/_sandbox/faults", _add_fault),
    ("DELETE", r"/_sandbox/faults", _clear_faults),
    ("GET", r"/_sandbox/requests", lambda request: Response(200, request.server.requests)),
    ("DELETE", r"/_sandbox/requests", _clear_requests),
]
"""Test control over HTTP; never logged and never faulted."""
