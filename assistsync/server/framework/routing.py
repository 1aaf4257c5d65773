"""Request and response values, request bodies, and the route table.

Handlers are plain functions ``(Request[C]) -> Response`` registered in a :class:`Router`; they
never touch the socket. ``C`` is the context the server was started with (the framework only
carries it). The HTTP handler in :mod:`.http` owns everything between the socket and these
values (faults, auth, framing, logging).
"""

from __future__ import annotations

import functools
import io
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Generic, Protocol, TypeVar
from urllib.parse import unquote

import orjson
from python_multipart.multipart import parse_options_header

from assistsync.server.framework.errors import ApiError, bad_request
from assistsync.server.framework.validation import parse_json_object

C = TypeVar("C")

JSON_BODY_LIMIT = 16 * 1024 * 1024
"""Largest JSON request body read: 256,000-character instructions plus 128 tool schemas fit
with room to spare; anything larger is a client bug, not an assistant."""


class _Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...
    def readline(self, size: int = ..., /) -> bytes: ...


class BodyReader:
    """The request body, read on demand from the connection: Content-Length or chunked.

    Whatever a handler leaves unread must be drained (or the connection closed) before the
    next request on a keep-alive connection can be parsed; :meth:`finish` does that.
    """

    def __init__(self, stream: _Readable, headers: Mapping[str, str]) -> None:
        """``headers`` maps lower-case names to values."""
        self._stream = stream
        self.consumed = 0
        self._chunk_left = 0
        self._done = False
        encoding = (headers.get("transfer-encoding") or "").strip().lower()
        self.chunked = encoding == "chunked"
        self.length: int | None = None
        if encoding and not self.chunked:
            raise ApiError(
                501, f"Transfer-Encoding '{encoding}' is not supported; send Content-Length."
            )
        if not self.chunked:
            raw = (headers.get("content-length") or "0").strip()
            if not raw.isdigit():
                raise bad_request(f"Invalid Content-Length header {raw!r}.")
            self.length = int(raw)
            self._done = self.length == 0

    def prefetch(self, limit: int) -> bool:
        """Read a Content-Length body of at most ``limit`` bytes into memory now, so that the
        handler's reads cannot wait for the client. True when the body is in memory (or
        empty); False for a chunked or larger body, which stays on the connection.

        A body that ends early is kept as far as it came: the handler's read then fails as
        it would have on the connection.
        """
        if self._done:
            return True
        if self.length is None or self.length - self.consumed > limit:
            return False
        self._stream = io.BytesIO(self._stream.read(self.length - self.consumed))
        return True

    @property
    def exhausted(self) -> bool:
        """True once the whole body has been read."""
        return self._done

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes of the body; ``b""`` at its end."""
        if self._done:
            return b""
        if self.length is not None:
            data = self._stream.read(min(size, self.length - self.consumed))
            if not data:
                raise bad_request("The request body ended before its Content-Length.")
            self.consumed += len(data)
            self._done = self.consumed >= self.length
            return data
        if self._chunk_left == 0:
            line = self._stream.readline(1024)
            try:
                self._chunk_left = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise bad_request("Malformed chunked request body.") from None
            if self._chunk_left == 0:
                # Trailers (if any) end with an empty line.
                while self._stream.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                self._done = True
                return b""
        data = self._stream.read(min(size, self._chunk_left))
        if not data:
            raise bad_request("The request body ended inside a chunk.")
        self._chunk_left -= len(data)
        self.consumed += len(data)
        if self._chunk_left == 0:
            self._stream.readline(3)
        return data

    def read_all(self, limit: int) -> bytes:
        """The whole body, or a 400 if it exceeds ``limit`` bytes."""
        if self.length is not None and self.length > limit:
            raise bad_request(f"Request body too large: {self.length} bytes (limit {limit}).")
        parts: list[bytes] = []
        total = 0
        while chunk := self.read(1 << 20):
            total += len(chunk)
            if total > limit:
                raise bad_request(f"Request body too large: over {limit} bytes.")
            parts.append(chunk)
        return b"".join(parts)

    def finish(self, drain_limit: int) -> bool:
        """Discard the unread rest when it is at most ``drain_limit`` bytes.

        Returns whether the connection is still in sync (else it must be closed).
        """
        if self._done:
            return True
        if self.length is not None and self.length - self.consumed > drain_limit:
            return False
        start = self.consumed
        try:
            while self.read(1 << 20):
                if self.consumed - start > drain_limit:
                    return False
        except (ApiError, OSError):
            return False
        return True


@dataclass
class Request(Generic[C]):
    """What a handler sees of one request (``headers`` keys are lower-case).

    ``context`` is the object the server was started with, the same for every request.
    """

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Mapping[str, str]
    params: dict[str, str]
    body: BodyReader
    context: C

    def json(self, *, optional: bool = False) -> dict[str, Any]:
        """The body as a JSON object; 400 unless it is ``application/json`` and parses.

        With ``optional`` (operations whose body the spec does not require), an empty body
        without a content type is ``{}``.
        """
        if optional and self.body.exhausted and not self.headers.get("content-type"):
            return {}
        media, _ = parse_options_header(self.headers.get("content-type"))
        if media != b"application/json":
            shown = self.headers.get("content-type") or "none"
            raise bad_request(
                f"Invalid Content-Type header ({shown}): this endpoint expects a JSON body "
                "sent with 'Content-Type: application/json'."
            )
        return parse_json_object(self.body.read_all(JSON_BODY_LIMIT))


def encode_json(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON, keys in insertion order (as ``json.dumps`` with
    ``ensure_ascii=False`` and compact separators).

    orjson does it an order of magnitude faster; what it refuses (integers beyond 64 bits,
    keys that are not strings) goes to :func:`json.dumps`. Floats are written in their
    shortest round-trip form either way (``1e-05`` may read ``0.00001``: the same number); a
    non-finite float, which JSON cannot hold, is ``null``.
    """
    try:
        return orjson.dumps(value)
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass
class Response:
    """What a handler answers: exactly one of three bodies.

    - ``payload``: a JSON value, sent with ``Content-Length`` (the default);
    - ``stream``: an open binary file of ``length`` bytes, sent with ``sendfile`` and closed;
    - ``chunks``: an iterator of byte strings, sent with ``Transfer-Encoding: chunked``, each
      chunk written and flushed as soon as the iterator yields it (server-sent events: see
      :func:`event_stream`). The connection stays usable afterwards. If the client goes
      away, the iterator is closed (a generator sees ``GeneratorExit``) and nothing else
      happens; if the iterator raises, the error is logged and the connection is closed
      without the final chunk, so the client sees a truncated body rather than a clean end.
    """

    payload: Any = None
    status: int = 200
    stream: IO[bytes] | None = None
    length: int = 0
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    chunks: Iterator[bytes] | None = None

    def body(self) -> bytes:
        """The JSON payload serialised compactly as UTF-8 (a stream or chunks are sent
        separately)."""
        return encode_json(self.payload)

    def close(self) -> None:
        """Release a body that will not be sent (a dropped response, a HEAD request)."""
        if self.stream is not None:
            self.stream.close()
        close = getattr(self.chunks, "close", None)
        if close is not None:
            close()


def event_stream(chunks: Iterator[bytes], status: int = 200) -> Response:
    """A ``text/event-stream`` response whose body is ``chunks`` (already SSE-framed bytes,
    e.g. ``b"event: x\\ndata: {...}\\n\\n"``), each flushed to the client as it is yielded."""
    return Response(
        status=status,
        chunks=chunks,
        content_type="text/event-stream",
        headers={"cache-control": "no-cache"},
    )


def sse_event(event: str, data: str) -> bytes:
    """One server-sent event: ``event: NAME``, one ``data:`` line per line of ``data``, and
    the blank line that ends it (compact JSON has no newline, so it is one ``data:`` line)."""
    lines = "".join(f"data: {line}\n" for line in data.split("\n"))
    return f"event: {event}\n{lines}\n".encode()


Handler = Callable[[Request[C]], Response]


@dataclass(frozen=True)
class Route(Generic[C]):
    """One operation: ``template`` uses ``{name}`` for one path segment.

    ``beta`` marks the Assistants API operations that require ``OpenAI-Beta: assistants=v1``;
    ``public`` ones need no API key (e.g. a page saying where the API is). ``summary`` is a
    few words for ``--help`` (optional).

    ``quick`` promises that the handler never waits for anything but the database's short
    lock: no long poll, no event, no network, no reading of a request body beyond a small one
    the server has already read (a stream it returns is sent afterwards, outside the handler).
    The server runs quick handlers one at a time: on its connection loop (one thread serving
    the plain requests of every connection) or, on a connection that has a thread of its own,
    in turns. On one interpreter they cannot run in parallel anyway, and one at a time costs
    far less CPU than threads contending for the interpreter lock. A handler that breaks the
    promise holds up the connections the loop serves while it waits (those in turns wait at
    most :data:`~.http.QUICK_WAIT_S` before running anyway): mark only what cannot wait.
    """

    method: str
    template: str
    handler: Handler[C]
    beta: bool = False
    summary: str = ""
    public: bool = False
    quick: bool = False

    @functools.cached_property
    def key(self) -> str:
        """The name requests are counted under, e.g. ``"GET /v1/assistants/{assistant_id}"``."""
        return f"{self.method} {self.template}"


@dataclass(frozen=True)
class Match(Generic[C]):
    """The route for a request, or why there is none (``allowed`` non-empty: wrong method)."""

    route: Route[C] | None
    params: dict[str, str]
    allowed: tuple[str, ...] = ()


class Router(Generic[C]):
    """Maps (method, path) to a route; distinguishes unknown paths (404) from methods (405).

    A literal segment beats a ``{name}`` one wherever the rows come from: ``POST
    /v1/threads/runs`` is its own operation, not ``POST /v1/threads/{thread_id}`` with the id
    ``runs``. Two rows with the same method and template are a programming error (two endpoint
    groups claiming one operation) and are refused when the router is built.
    """

    def __init__(self, routes: Sequence[Route[C]]) -> None:
        seen = set()
        for route in routes:
            if route.key in seen:
                raise ValueError(f"two routes for {route.key}")
            seen.add(route.key)
        self._routes: list[tuple[re.Pattern[str], Route[C]]] = []
        # Stable sort: fewer parameters first, otherwise the table's order.
        for route in sorted(routes, key=lambda r: r.template.count("{")):
            pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", route.template)
            self._routes.append((re.compile(pattern), route))
        # The answers for paths without parameters (``/v1/assistants``), found once each: a
        # request for one is a dictionary look-up instead of a walk through every pattern.
        self._fixed_paths = frozenset(r.template for r in routes if "{" not in r.template)
        self._fixed: dict[tuple[str, str], tuple[Route[C] | None, tuple[str, ...]]] = {}

    def match(self, method: str, path: str) -> Match[C]:
        """The route serving ``method path``."""
        if path in self._fixed_paths:
            known = self._fixed.get((method, path))
            if known is None:
                found = self._search(method, path)
                known = (found.route, found.allowed)
                if len(self._fixed) < 4096:  # methods are the client's choice: stay bounded
                    self._fixed[(method, path)] = known
            return Match(known[0], {}, known[1])
        return self._search(method, path)

    def _search(self, method: str, path: str) -> Match[C]:
        allowed: list[str] = []
        for pattern, route in self._routes:
            found = pattern.fullmatch(path)
            if found is None:
                continue
            if route.method == method:
                return Match(route, {k: unquote(v) for k, v in found.groupdict().items()})
            if route.method not in allowed:
                allowed.append(route.method)
        return Match(None, {}, tuple(allowed))
