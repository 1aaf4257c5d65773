"""The framework-sized core: request and response values, request bodies, and the route table.

Handlers are plain functions ``(Request) -> Response`` registered in a :class:`Router`; they
never touch the socket. The HTTP handler in :mod:`assistsync.server.app` owns everything
between the socket and these values (faults, auth, framing, logging).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Protocol
from urllib.parse import unquote

from python_multipart.multipart import parse_options_header

from assistsync.server.errors import ApiError, bad_request
from assistsync.server.schemas import parse_json_object
from assistsync.server.store import Store

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
class Request:
    """What a handler sees of one request (``headers`` keys are lower-case)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Mapping[str, str]
    params: dict[str, str]
    body: BodyReader
    store: Store
    max_upload_bytes: int

    def json(self) -> dict[str, Any]:
        """The body as a JSON object; 400 unless it is ``application/json`` and parses."""
        media, _ = parse_options_header(self.headers.get("content-type"))
        if media != b"application/json":
            shown = self.headers.get("content-type") or "none"
            raise bad_request(
                f"Invalid Content-Type header ({shown}): this endpoint expects a JSON body "
                "sent with 'Content-Type: application/json'."
            )
        return parse_json_object(self.body.read_all(JSON_BODY_LIMIT))


@dataclass
class Response:
    """A JSON ``payload`` or an open binary ``stream`` of ``length`` bytes (closed after)."""

    payload: Any = None
    status: int = 200
    stream: IO[bytes] | None = None
    length: int = 0
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    def body(self) -> bytes:
        """The JSON payload serialised compactly (the stream, if any, is sent separately)."""
        return json.dumps(self.payload, ensure_ascii=False, separators=(",", ":")).encode()


Handler = Callable[[Request], Response]


@dataclass(frozen=True)
class Route:
    """One operation: ``template`` uses ``{name}`` for one path segment.

    ``beta`` marks the Assistants API operations that require ``OpenAI-Beta: assistants=v1``.
    """

    method: str
    template: str
    handler: Handler
    beta: bool = False

    @property
    def key(self) -> str:
        """The name requests are counted under, e.g. ``"GET /v1/assistants/{assistant_id}"``."""
        return f"{self.method} {self.template}"


@dataclass(frozen=True)
class Match:
    """The route for a request, or why there is none (``allowed`` non-empty: wrong method)."""

    route: Route | None
    params: dict[str, str]
    allowed: tuple[str, ...] = ()


class Router:
    """Maps (method, path) to a route; distinguishes unknown paths (404) from methods (405)."""

    def __init__(self, routes: Sequence[Route]) -> None:
        self._routes: list[tuple[re.Pattern[str], Route]] = []
        for route in routes:
            pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", route.template)
            self._routes.append((re.compile(pattern), route))

    def match(self, method: str, path: str) -> Match:
        """The route serving ``method path``."""
        allowed: list[str] = []
        for pattern, route in self._routes:
            found = pattern.fullmatch(path)
            if found is None:
                continue
            if route.method == method:
                return Match(route, {k: unquote(v) for k, v in found.groupdict().items()})
            allowed.append(route.method)
        return Match(None, {}, tuple(allowed))
