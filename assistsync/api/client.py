"""The one HTTP client for the Assistants API v1: typed calls, pagination, retries, errors.

:class:`ApiClient` is synchronous and thread-safe (the applier calls it from a bounded thread
pool): its only shared state is the httpx connection pool, which is thread-safe, and
:class:`ApiStats`, which is guarded by a lock.

Retry safety is decided per call. Reads, ``modify_assistant`` (it sets absolute values) and
deletes (a repeated delete answers 404, which they treat as "already gone") may be re-sent
whatever happened. Creates and uploads may not: the API has no idempotency key, so once a request
may have reached the server (a 5xx, 408/409, a timeout or a broken connection after sending) they
raise :class:`ResponseLostError` and leave it to the applier to look for the tagged object before
sending again. They are still retried when the failure proves nothing was carried out: a 429,
or a connection that could not be opened.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import httpx
import pydantic

from assistsync import __version__
from assistsync.api.errors import (
    ResponseLostError,
    display_url,
    error_fields,
    response_error,
    transport_error,
)
from assistsync.api.retry import RetryPolicy
from assistsync.api.secrets import Redactor, header_problem
from assistsync.errors import ApiError, ConfigError
from assistsync.model.live import LiveAssistant, LiveFile

__all__ = ["DEFAULT_TIMEOUT", "POOL_SIZE", "ApiClient", "ApiStats"]

log = logging.getLogger("assistsync.api")
# A library never prints: without this, Python's last-resort handler would write our warnings
# to stderr when the application has not configured logging (the CLI decides what is shown).
log.addHandler(logging.NullHandler())

T = TypeVar("T")
M = TypeVar("M", bound=pydantic.BaseModel)

DEFAULT_TIMEOUT = httpx.Timeout(600.0, connect=5.0)
"""5 s to connect, 600 s for everything else (the SDK's values; uploads of 512 MB need it)."""

POOL_SIZE = 16
"""Connections kept open: the applier's thread pool runs about this many calls at once."""

PAGE_LIMIT = 100
"""The API's maximum page size for GET /assistants: fewest pages, the plan's request floor."""

_MAX_ERROR_BODY = 64 * 1024
_DOWNLOAD_CHUNK = 1024 * 1024

# Transport errors raised before a single byte of the request left: safe to retry any call.
_NOTHING_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class ApiStats:
    """HTTP requests this client attempted (every retry counts) and how many were retries.

    Benchmarks and tests read these to prove a plan costs only its request floor.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.retries = 0

    def __repr__(self) -> str:
        return f"ApiStats(requests={self.requests}, retries={self.retries})"

    def _count(self, *, retry: bool = False) -> None:
        with self._lock:
            if retry:
                self.retries += 1
            else:
                self.requests += 1

    def reset(self) -> None:
        """Start counting from zero."""
        with self._lock:
            self.requests = 0
            self.retries = 0


@dataclass(frozen=True)
class _Retry:
    """The outcome of one attempt that should be tried again after ``delay`` seconds."""

    delay: float
    rate_limited: bool
    why: str


def _quote(object_id: str) -> str:
    """An id as one path segment: an id can never reach another route."""
    return urllib.parse.quote(object_id, safe="")


def _beta_header(path: str) -> dict[str, str]:
    """``OpenAI-Beta: assistants=v1`` where the hosted API required it (it answered 400)."""
    if path.startswith(("/assistants", "/threads")):
        return {"OpenAI-Beta": "assistants=v1"}
    return {}


class ApiClient:
    """A client for one Assistants-compatible server at ``base_url`` (e.g. ``.../v1``).

    ``max_retries`` bounds retries of timeouts, connection errors, 408/409 and 5xx; 429s are
    retried until ``rate_limit_patience`` seconds of waiting (see :mod:`assistsync.api.retry`).
    ``transport`` replaces the network (tests only); ``sleep`` replaces ``time.sleep`` between
    retries. Every failure is raised as :class:`~assistsync.errors.ApiError`, or
    :class:`ResponseLostError` when a create/upload may have happened without an answer. The key
    never appears in a message, a repr or a log line.

    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        organization: str | None = None,
        project: str | None = None,
        max_retries: int = 2,
        rate_limit_patience: float = 120.0,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        _check_headers(api_key, organization, project)
        try:
            url = httpx.URL(base_url)
        except (httpx.InvalidURL, UnicodeError) as exc:
            raise ConfigError(
                f"the API base URL is not a valid URL ({exc}). Check OPENAI_BASE_URL."
            ) from None
        if url.scheme not in ("http", "https") or not url.host:
            raise ConfigError(
                f"the API base URL must be an http(s) URL such as http://127.0.0.1:8080/v1, "
                f"got {base_url!r}. Check OPENAI_BASE_URL."
            )
        self._base = display_url(url).rstrip("/")
        self._prefix = url.path.rstrip("/")
        self._redact = Redactor(api_key)
        self._timeout = timeout
        self._sleep = sleep
        self._organization = organization
        self._project = project
        self.policy = RetryPolicy(max_retries=max_retries, rate_limit_patience=rate_limit_patience)
        """The retry policy in force (read-only)."""
        self.stats = ApiStats()
        """Requests attempted and retries made by this client, across threads."""
        headers = {
            "Authorization": f"Bearer {api_key}",
            "User-Agent": f"assistsync/{__version__}",
            "Accept": "application/json",
        }
        if organization:
            headers["OpenAI-Organization"] = organization
        if project:
            headers["OpenAI-Project"] = project
        limits = httpx.Limits(max_connections=POOL_SIZE, max_keepalive_connections=POOL_SIZE)
        plain = not (url.userinfo or url.query or url.fragment)
        if transport is None and plain and not _proxies_in_environment():
            # The transport httpx.Client would make for itself, held here so that calls go to
            # it directly (see _send); with a proxy configured, httpx.Client picks the route.
            transport = httpx.HTTPTransport(limits=limits, trust_env=True, verify=_tls(url))
        # httpx joins "/assistants" onto the base path only when the base ends with "/".
        self._http = httpx.Client(
            base_url=str(url).rstrip("/") + "/",
            headers=headers,
            timeout=timeout,
            transport=transport,
            limits=limits,
        )
        self._direct = transport if plain else None
        """The transport calls are handed to directly, or None to go through ``self._http``."""
        self._root = str(self._http.base_url)
        self._headers = self._http.headers
        self._beta_headers = self._http.headers.copy()
        self._beta_headers.update(_beta_header("/assistants"))
        self._extensions = {"timeout": timeout.as_dict()}

    @property
    def base_url(self) -> str:
        """The base URL, safe to show (no credentials, no query)."""
        return self._base

    def __repr__(self) -> str:
        extra = "".join(
            f", {name}={value!r}"
            for name, value in (("organization", self._organization), ("project", self._project))
            if value
        )
        return f"ApiClient(base_url={self._base!r}{extra})"

    def close(self) -> None:
        """Close every pooled connection. The client cannot be used afterwards."""
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---------------------------------------------------------------- assistants

    def list_assistants(self) -> list[LiveAssistant]:
        """Every assistant on the account, oldest first (``order=asc``), all pages.

        Pages of ``limit=100`` (the maximum) follow ``after=<last id>`` while ``has_more`` is
        true, so N assistants cost ``ceil(N/100)`` requests (at least 1). An empty page ends the
        listing even if a server claims ``has_more``; a cursor that does not move is an error
        rather than an endless loop.
        """
        assistants: list[LiveAssistant] = []
        after: str | None = None
        while True:
            params: dict[str, str | int] = {"limit": PAGE_LIMIT, "order": "asc"}
            if after is not None:
                params["after"] = after
            page = self._json("GET", "/assistants", params=params)
            items = page.get("data") if isinstance(page, dict) else None
            if not isinstance(items, list):
                raise self._shape_error("GET", "/assistants", "a list object with 'data'")
            assistants.extend(
                self._model(LiveAssistant, item, "GET", "/assistants") for item in items
            )
            if not items or not page.get("has_more"):
                return assistants
            cursor = page.get("last_id") or assistants[-1].id
            if cursor == after:
                raise ApiError(
                    f"the server at {self._base} returned the same page twice "
                    f"(after={cursor}); its pagination is broken",
                    method="GET",
                    path=self._prefix + "/assistants",
                )
            after = str(cursor)

    def get_assistant(self, assistant_id: str) -> LiveAssistant:
        """One assistant by id (404 raises ApiError with ``status == 404``)."""
        path = f"/assistants/{_quote(assistant_id)}"
        return self._model(LiveAssistant, self._json("GET", path), "GET", path)

    def create_assistant(self, body: Mapping[str, Any]) -> LiveAssistant:
        """Create an assistant from a CreateAssistantRequest body.

        Never re-sent once it may have reached the server: raises :class:`ResponseLostError`
        when the outcome is unknown (see the module docs).
        """
        data = self._json("POST", "/assistants", json=dict(body), idempotent=False)
        return self._model(LiveAssistant, data, "POST", "/assistants", lost=True)

    def modify_assistant(self, assistant_id: str, body: Mapping[str, Any]) -> LiveAssistant:
        """Set the given fields (``file_ids`` replaces the attached set).

        Retried like a read: every field is an absolute value, so sending it twice is harmless.
        """
        path = f"/assistants/{_quote(assistant_id)}"
        return self._model(LiveAssistant, self._json("POST", path, json=dict(body)), "POST", path)

    def delete_assistant(self, assistant_id: str) -> None:
        """Delete an assistant. A 404 means it is already gone and returns normally.

        That also makes a retry after a lost response safe: the first attempt did the work.
        """
        self._call("DELETE", f"/assistants/{_quote(assistant_id)}", consume=_drain, on_404=_none)

    # ---------------------------------------------------------------------- files

    def list_files(self, purpose: str = "assistants") -> list[LiveFile]:
        """Every file with ``purpose``, in one request (v1 has no cursor on /files)."""
        page = self._json("GET", "/files", params={"purpose": purpose})
        items = page.get("data") if isinstance(page, dict) else None
        if not isinstance(items, list):
            raise self._shape_error("GET", "/files", "a list object with 'data'")
        return [self._model(LiveFile, item, "GET", "/files") for item in items]

    def upload_file(self, path: Path, filename: str, purpose: str = "assistants") -> LiveFile:
        """Upload ``path`` as ``filename``, streamed from disk in 64 KiB chunks.

        httpx renders a multipart field holding an open file by reading it chunk by chunk and
        sets Content-Length from the file's size, so memory stays constant whatever the size
        (``tests/api`` proves it with tracemalloc). Never re-sent once it may have reached the
        server: raises :class:`ResponseLostError` when the outcome is unknown.
        """
        with path.open("rb") as fh:
            data = self._json(
                "POST",
                "/files",
                files={"file": (filename, fh, "application/octet-stream")},
                data={"purpose": purpose},
                idempotent=False,
            )
        return self._model(LiveFile, data, "POST", "/files", lost=True)

    def delete_file(self, file_id: str) -> None:
        """Delete a file. A 404 means it is already gone and returns normally."""
        self._call("DELETE", f"/files/{_quote(file_id)}", consume=_drain, on_404=_none)

    def file_sha256(self, file_id: str) -> str:
        """The sha256 (hex) of a file's content, streamed through the hash in constant memory."""

        def digest(response: httpx.Response) -> str:
            # A fresh hash per attempt: a retry after a cut-off body starts from byte 0.
            sha = hashlib.sha256()
            for chunk in response.iter_bytes(_DOWNLOAD_CHUNK):
                sha.update(chunk)
            return sha.hexdigest()

        return self._call("GET", f"/files/{_quote(file_id)}/content", consume=digest)

    # ------------------------------------------------------- for sibling API modules

    def send(
        self,
        method: str,
        path: str,
        *,
        consume: Callable[[httpx.Response], T],
        json: Any = None,
        params: Mapping[str, str | int] | None = None,
        idempotent: bool = True,
        on_404: Callable[[], T] | None = None,
    ) -> T:
        """One call with this client's retries and error mapping, for the API modules beside
        this one (:mod:`assistsync.api.runs`): ``consume`` reads the 2xx response (streamed)."""
        return self._call(
            method,
            path,
            consume=consume,
            json=json,
            params=params,
            idempotent=idempotent,
            on_404=on_404,
        )

    # ------------------------------------------------------------------ machinery

    def _json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
        files: Mapping[str, Any] | None = None,
        data: Mapping[str, str] | None = None,
        idempotent: bool = True,
    ) -> Any:
        """Send a request and decode its JSON body."""
        raw = self._call(
            method,
            path,
            params=params,
            json=json,
            files=files,
            data=data,
            idempotent=idempotent,
            consume=_read,
        )
        try:
            return _loads(raw)
        except ValueError as exc:
            raise self._shape_error(method, path, "JSON", lost=not idempotent) from exc

    def _model(self, model: type[M], data: Any, method: str, path: str, *, lost: bool = False) -> M:
        """Validate one object of a response; ``lost`` when the call has already taken effect."""
        try:
            return model.model_validate(data)
        except pydantic.ValidationError as exc:
            raise self._shape_error(
                method,
                path,
                f"a valid {_NOUNS.get(model.__name__, model.__name__)} "
                f"({exc.error_count()} problems)",
                lost=lost,
            ) from exc

    def _shape_error(
        self, method: str, path: str, expected: str, *, lost: bool = False
    ) -> ApiError:
        """The error for a 2xx whose body is not what the API documents."""
        message = f"the server at {self._base} answered with something other than {expected}"
        if lost:
            # The call succeeded on the server, but we cannot tell what it created.
            return ResponseLostError(
                message + "; the request was carried out but its result is unreadable",
                method=method,
                path=self._prefix + path,
            )
        return ApiError(message, method=method, path=self._prefix + path)

    def _call(
        self,
        method: str,
        path: str,
        *,
        consume: Callable[[httpx.Response], T],
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
        files: Mapping[str, Any] | None = None,
        data: Mapping[str, str] | None = None,
        idempotent: bool = True,
        on_404: Callable[[], T] | None = None,
    ) -> T:
        """Send one call with retries; ``consume`` reads a successful (2xx) streamed response.

        ``idempotent`` says whether the request may be re-sent after it may have reached the
        server; ``on_404`` turns a 404 into a result (deletes: already gone).
        """
        rate_retries = other_retries = 0
        rate_limit_waited = 0.0
        while True:
            request = self._request(method, path, params=params, json=json, files=files, data=data)
            outcome = self._attempt(
                request,
                consume,
                idempotent=idempotent,
                on_404=on_404,
                rate_retries=rate_retries,
                rate_limit_waited=rate_limit_waited,
                other_retries=other_retries,
            )
            if not isinstance(outcome, _Retry):
                return outcome.value
            if outcome.rate_limited:
                rate_retries += 1
                rate_limit_waited += outcome.delay
            else:
                other_retries += 1
            self.stats._count(retry=True)
            log.info(
                "retrying %s %s in %.2f s: %s",
                request.method,
                request.url.path,
                outcome.delay,
                outcome.why,
            )
            self._sleep(outcome.delay)

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None,
        json: Any,
        files: Mapping[str, Any] | None,
        data: Mapping[str, str] | None,
    ) -> httpx.Request:
        """The request for one attempt: what ``httpx.Client.build_request`` makes (the client's
        headers, the base URL joined with ``path``, the timeout), built from values prepared
        once instead of merged again for every call."""
        if self._direct is None:
            return self._http.build_request(
                method,
                path.lstrip("/"),
                params=params,
                json=json,
                files=files,
                data=data,
                headers=_beta_header(path),
            )
        return httpx.Request(
            method,
            self._root + path.lstrip("/"),
            params=params,
            json=json,
            files=files,
            data=data,
            headers=self._beta_headers if _beta_header(path) else self._headers,
            extensions=self._extensions,
        )

    def _send(self, request: httpx.Request) -> httpx.Response:
        """Send ``request``, the response streamed (the caller reads and closes it).

        Straight to the transport when there is no proxy: ``httpx.Client.send`` adds what this
        client does not use (auth flows, redirects, cookies, event hooks), about a third of a
        call's CPU, and every call of an apply pays it. httpx's log line is kept (``--debug``).
        """
        if self._direct is None:
            return self._http.send(request, stream=True)
        response = self._direct.handle_request(request)
        response.request = request
        if log.isEnabledFor(logging.INFO):
            log.info(
                'HTTP Request: %s %s "%s %d %s"',
                request.method,
                request.url,
                response.http_version,
                response.status_code,
                response.reason_phrase,
            )
        return response

    def _attempt(
        self,
        request: httpx.Request,
        consume: Callable[[httpx.Response], T],
        *,
        idempotent: bool,
        on_404: Callable[[], T] | None,
        rate_retries: int,
        rate_limit_waited: float,
        other_retries: int,
    ) -> _Done[T] | _Retry:
        """One attempt: its result, a decision to retry, or a raised ApiError."""
        retries = rate_retries + other_retries
        self.stats._count()
        try:
            response = self._send(request)
        except httpx.HTTPError as exc:
            nothing_sent = isinstance(exc, _NOTHING_SENT)
            return self._after_transport_error(
                exc,
                request,
                idempotent or nothing_sent,
                other_retries,
                retries,
                lost=not (idempotent or nothing_sent),
            )
        try:
            if response.is_success:
                try:
                    return _Done(consume(response))
                except httpx.HTTPError as exc:
                    # The call took effect; only its answer was cut off or unreadable.
                    return self._after_transport_error(
                        exc, request, idempotent, other_retries, retries, lost=not idempotent
                    )
            body = _read_error_body(response)
        finally:
            response.close()
        status = response.status_code
        if status == 404 and on_404 is not None:
            return _Done(on_404())
        rate_limited = status == 429
        # A non-idempotent call answered 5xx/408/409 may or may not have been carried out.
        unknown = not idempotent and not rate_limited and (status >= 500 or status in (408, 409))
        request_id = response.headers.get("x-request-id")
        code = error_fields(response, body)[1]
        if (
            not unknown
            and self.policy.status_is_retryable(status, response.headers, code)
            and self.policy.budget_left(
                rate_limited=rate_limited,
                rate_limit_waited=rate_limit_waited,
                other_retries=other_retries,
            )
        ):
            delay = self.policy.delay(
                rate_retries if rate_limited else retries,
                response.headers,
                now=time.time(),
                random_value=random.random(),
                rate_limited=rate_limited,
            )
            return _Retry(delay, rate_limited, f"HTTP {status} (request id {request_id})")
        error = response_error(
            response, body, base=self._base, redact=self._redact, retries=retries, lost=unknown
        )
        log.warning("%s", error)
        raise error

    def _after_transport_error(
        self,
        exc: httpx.HTTPError,
        request: httpx.Request,
        may_resend: bool,
        other_retries: int,
        retries: int,
        *,
        lost: bool,
    ) -> _Retry:
        """Retry a request that got no complete response, or raise the mapped error."""
        # Only network failures are worth another try; a malformed URL or body never heals.
        transient = isinstance(exc, httpx.TransportError) and not isinstance(
            exc, httpx.UnsupportedProtocol
        )
        if (
            transient
            and may_resend
            and self.policy.budget_left(
                rate_limited=False, rate_limit_waited=0.0, other_retries=other_retries
            )
        ):
            delay = self.policy.delay(retries, None, now=time.time(), random_value=random.random())
            return _Retry(delay, False, type(exc).__name__)
        error = transport_error(
            exc,
            request,
            base=self._base,
            timeout=self._timeout,
            redact=self._redact,
            retries=retries,
            lost=lost,
        )
        log.warning("%s", error)
        raise error from exc


def _tls(url: httpx.URL) -> ssl.SSLContext | bool:
    """The TLS setting of the direct transport, which only ever talks to ``url``.

    For https, httpx's default (verify against certifi's roots). For a plain http endpoint
    (the sandbox, a local server) no byte goes over TLS, and building the default context
    (reading the whole CA bundle) costs ~35 ms of every command's start; such a client gets a
    context that trusts no root instead, so a TLS connection, were one ever made, would fail
    verification rather than pass unchecked."""
    if url.scheme == "https":
        return True
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def _proxies_in_environment() -> bool:
    """Whether HTTP(S)_PROXY or ALL_PROXY is set (any case): httpx.Client then routes calls
    through the proxy its rules pick for the URL."""
    import urllib.request

    proxies = urllib.request.getproxies()
    return any(scheme in proxies for scheme in ("http", "https", "all"))


def _check_headers(api_key: str, organization: str | None, project: str | None) -> None:
    """Refuse values that cannot be sent as headers before any request, without showing them.

    Callers that know where a value came from (``OPENAI_API_KEY``) check it first and name it;
    this is the backstop for every other caller.
    """
    problem = header_problem(api_key)
    if problem:
        raise ConfigError(f"the API key {problem}, so it cannot be sent; check how it was set.")
    for label, value in (("organization", organization), ("project", project)):
        problem = header_problem(value) if value else None
        if problem:
            raise ConfigError(f"the {label} id {problem}, so it cannot be sent.")


@dataclass(frozen=True)
class _Done(Generic[T]):
    """A finished call's value (wrapped so a None result is not mistaken for "retry")."""

    value: T


_NOUNS = {"LiveAssistant": "assistant object", "LiveFile": "file object"}
"""How error messages name the objects a response should hold."""


def _read(response: httpx.Response) -> bytes:
    return response.read()


def _drain(response: httpx.Response) -> None:
    response.read()


def _none() -> None:
    return None


def _loads(raw: bytes) -> Any:
    return json.loads(raw)


def _read_error_body(response: httpx.Response) -> bytes:
    """At most 64 KiB of an error body: enough for any envelope, bounded for a proxy's page."""
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size >= _MAX_ERROR_BODY:
                break
    except httpx.HTTPError:
        # The status already says what happened; a cut-off body only loses the detail.
        pass
    return b"".join(chunks)[:_MAX_ERROR_BODY]
