"""The HTTP server: socket handling, faults, auth, framing, logging.

Technology: the standard library's sockets, selectors and ``socketserver`` threads, with the
request line and headers read here (:class:`_Handler`) under the rules and limits of
``http.server.BaseHTTPRequestHandler``. It starts in milliseconds (tests start dozens of
servers), needs no dependency, and gives direct access to the socket, which the lost-response
fault needs: a committed mutation's connection is shut down before a single response byte is
written, something an ASGI server does not let an application do. Requests are served over
HTTP/1.1 keep-alive (``Content-Length`` always set, TCP_NODELAY, head and body written in one
send) so a client's pooled connection is reused. Bodies are parsed by python-multipart
(streaming) and pydantic (validation) in the layers above.

Per request, in order: count it (:class:`Stats`), sleep ``latency_ms``, apply the rate limit
(429), inject 500/503, authenticate (401), route (404/405), check ``OpenAI-Beta`` (400), run
the handler, and possibly drop the response of a committed mutation. Any exception becomes an
error envelope; nothing a client sends can produce a hung connection.

Two ways a connection is served. One loop thread (:class:`_Loop`) accepts every connection
and serves its plain requests to quick routes itself, one after the other, as their bytes
arrive: no thread switch per request, which was most of a request's cost. The first request
it does not serve that way (a route that may wait, a large or chunked body, injected latency,
anything unusual in the request, a streamed or file response) moves the connection to a thread
of its own for the rest of its life, so a handler that waits (a long poll) holds only its own
connection. :func:`start_http` runs a server on a background thread and returns a
:class:`HttpServer` to stop it.
"""

from __future__ import annotations

import contextlib
import email.parser
import email.utils
import hmac
import http.client
import io
import os
import re
import selectors
import socket
import socketserver
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from http.server import ThreadingHTTPServer
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qs, urlsplit

from assistsync.server.framework.errors import SERVER_ERROR, ApiError, bad_request
from assistsync.server.framework.faults import FaultInjector, Faults, Stats, retry_headers
from assistsync.server.framework.routing import BodyReader, Match, Request, Response, Route, Router

C = TypeVar("C")

DRAIN_LIMIT = 64 * 1024 * 1024
"""An unread request body up to this size is read and discarded so the error response reaches
the client and the connection stays usable; a larger one gets the response and a closed
connection instead (reading half a gigabyte to say "no" is not worth it)."""
MUTATING = frozenset({"POST", "DELETE"})
BODY_IDLE_TIMEOUT_S = 30.0
"""While a request's body is read, the longest wait for its next bytes: a client that sends
less than its Content-Length loses its connection after this, instead of holding a handler
thread for the connection's five-minute keep-alive timeout."""

QUICK_BODY_LIMIT = 1024 * 1024
"""A quick route's request body up to this size is read before its handler runs (see
:attr:`~.routing.Route.quick`); a larger or chunked one makes the request an ordinary one."""
QUICK_WAIT_S = 1.0
"""The longest a quick handler waits for its turn before it runs beside the others."""

MISSING_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header "
    "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY). This server accepts any non-empty "
    "key unless it was started with an API key, in which case send that one."
)
MISSING_BETA = (
    "You must provide the 'OpenAI-Beta' header to access the Assistants API. Please try again "
    "by setting the header 'OpenAI-Beta: assistants=v1'."
)


def mask_key(key: str) -> str:
    """The key as the hosted API echoed it: a short prefix and the last 4 characters."""
    if len(key) < 12:
        return "*" * len(key)
    return key[:3] + "*" * (len(key) - 7) + key[-4:]


def _error_response(error: ApiError) -> Response:
    return Response(error.envelope(), status=error.status, headers=dict(error.headers))


def _never_raising(log: Callable[[str], None]) -> Callable[[str], None]:
    """``log``, dropping the line when writing it fails: a log nobody reads any more (a closed
    pipe, ``2>&1 | head`` that ended) must not stop the server answering."""

    def safe(line: str) -> None:
        with contextlib.suppress(Exception):  # there is nowhere left to say it
            log(line)

    return safe


class App(Generic[C]):
    """Everything a request needs: context, routes, faults, stats, settings, open connections."""

    def __init__(
        self,
        context: C,
        routes: Sequence[Route[C]],
        faults: Faults,
        api_key: str | None,
        log: Callable[[str], None],
        api_prefix: str = "",
        body_idle_timeout_s: float = BODY_IDLE_TIMEOUT_S,
    ) -> None:
        """``api_prefix`` (e.g. ``/v1``): a 404 for a path outside it that exists inside it
        says so, for clients configured with a base URL that lacks the prefix.
        ``body_idle_timeout_s``: see :data:`BODY_IDLE_TIMEOUT_S`."""
        self.context = context
        self.body_idle_timeout_s = body_idle_timeout_s
        self.api_prefix = api_prefix
        self.faults = faults
        self.injector = FaultInjector(faults)
        self.stats = Stats()
        self.router = Router(routes)
        self.api_key = api_key
        self.log = _never_raising(log)
        self.turn = threading.Lock()
        """Held while a quick handler runs (see :attr:`~.routing.Route.quick`)."""
        self._conn_lock = threading.Lock()
        self._conns: dict[socket.socket, threading.Thread] = {}
        self._closing = False

    def authenticate(self, header: str | None) -> None:
        """401 unless ``Authorization: Bearer <key>`` carries an acceptable key."""
        scheme, _, token = (header or "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise ApiError(401, MISSING_KEY)
        if self.api_key is not None and not hmac.compare_digest(
            token.encode(), self.api_key.encode()
        ):
            raise ApiError(
                401,
                f"Incorrect API key provided: {mask_key(token)}. Send the key this server was "
                "started with (--api-key).",
                code="invalid_api_key",
            )

    # Connection tracking lets stop() unblock handler threads parked on idle keep-alive
    # connections instead of waiting for every client to hang up.
    def track(self, conn: socket.socket) -> None:
        with self._conn_lock:
            self._conns[conn] = threading.current_thread()
            closing = self._closing
        if closing:
            _shutdown(conn)

    @property
    def threaded(self) -> int:
        """How many connections are served by threads of their own right now."""
        return len(self._conns)

    def untrack(self, conn: socket.socket) -> None:
        with self._conn_lock:
            self._conns.pop(conn, None)

    def close_connections(self, timeout: float) -> None:
        """Shut down every open connection and wait (up to ``timeout``) for their threads."""
        with self._conn_lock:
            self._closing = True
            conns = list(self._conns.items())
        for conn, _ in conns:
            _shutdown(conn)
        deadline = time.monotonic() + timeout
        for _, thread in conns:
            thread.join(max(0.0, deadline - time.monotonic()))


def _shutdown(conn: socket.socket) -> None:
    # OSError: already closed by the peer or by the handler.
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_RDWR)


def _prefix_hint(app: App[Any], method: str, path: str) -> str:
    """``: did you mean /v1/...?`` when the path exists under the API prefix."""
    prefix = app.api_prefix
    if not prefix or path == prefix or path.startswith(prefix + "/"):
        return ""
    inside = app.router.match(method, prefix + path)
    if inside.route is None and not inside.allowed:
        return ""
    return (
        f". This server serves its API under {prefix}: did you mean {prefix}{path}? "
        f"Point the client's base URL at http://HOST:PORT{prefix}."
    )


def _check_beta(value: str | None) -> None:
    if value == "assistants=v1":  # what every v1 client sends
        return
    betas = [part.strip() for part in (value or "").split(",") if part.strip()]
    if not betas:
        raise bad_request(MISSING_BETA)
    if "assistants=v1" not in betas:
        raise bad_request(
            f"This server implements the Assistants API v1 only, but the request asked for "
            f"'OpenAI-Beta: {value}'. Set the header 'OpenAI-Beta: assistants=v1'."
        )


def plain_head(head: bytes | bytearray) -> tuple[list[str], list[tuple[str, str]]] | None:
    """The request line's three words and the header pairs of a request head (without its
    blank line) in its plain form, or None for anything else.

    Plain: ``METHOD /target HTTP/1.1`` with a known method and an origin-form target, at most
    :data:`MAX_HEADERS` lines, each ending in CRLF (no bare CR or LF), every header line a
    name of visible ASCII characters, a colon and a value. For such a head the pairs are
    exactly what :func:`parse_header_lines` (and so the standard library) gives.
    """
    text = head.decode("iso-8859-1")
    lines = text.split("\r\n")
    breaks = len(lines) - 1
    words = lines[0].split()
    if not (
        len(lines) <= MAX_HEADERS
        and text.count("\n") == breaks
        and text.count("\r") == breaks
        and len(words) == 3
        and words[2] == "HTTP/1.1"
        and words[0] in METHODS
        and words[1].startswith("/")
        and not words[1].startswith("//")
    ):
        return None
    pairs: list[tuple[str, str]] = []
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not (colon and name and name.isascii() and name.isprintable() and " " not in name):
            return None
        pairs.append((name, value.lstrip(" \t")))
    return words, pairs


class _Prefixed(io.RawIOBase):
    """A connection's reader that first gives back bytes read from it earlier (by the loop)."""

    def __init__(self, prefix: bytes, rest: io.BufferedIOBase) -> None:
        self._prefix = prefix
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._prefix:
            n = min(len(buffer), len(self._prefix))
            buffer[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        return self._rest.readinto1(buffer)

    def close(self) -> None:
        self._rest.close()
        super().close()


@dataclass(frozen=True)
class _Pending:
    """A response the loop computed and a connection thread sends (a stream or a file)."""

    method: str
    target: str
    response: Response
    headers: dict[str, str]
    elapsed: float
    close: bool


class _LoopConn:
    """A connection the loop serves: its unparsed bytes and its unsent ones."""

    __slots__ = ("buf", "closing", "out", "peer", "since", "sock", "waiting")

    def __init__(self, sock: socket.socket, peer: Any, now: float) -> None:
        self.sock = sock
        self.peer = peer
        self.buf = bytearray()
        self.out: memoryview | None = None
        self.since = now  # the last bytes received or sent
        self.waiting: tuple[str, str, float] | None = None  # a body still arriving
        self.closing = False  # close once ``out`` is sent


LOOP_TICK_S = 0.25
"""How often the loop looks for idle connections and stalled bodies."""

LOOP_YIELDS_AT = 8
"""With this many connections on threads of their own, the loop hands each connection it
would serve to a thread as well. The loop is one thread: beside many busy connection threads
it waits its turn for the interpreter lock at every socket call, and the clients it serves
queued for seconds while the threads' clients were answered in milliseconds (64 + 64 clients
of big pages and small ones). Handed off, they share the interpreter as every connection did
before the loop existed."""


class _Loop:
    """Serves the quick requests of every connection on one thread, without a thread each.

    Most requests a client makes on a keep-alive connection are plain and quick (see
    :attr:`~.routing.Route.quick`): a whole head, a small body, a handler that does not wait,
    a JSON answer. Served here, one after the other as their bytes arrive, they cost no
    thread switch and no contention for the interpreter lock, which is most of what a
    request cost when every connection had its own thread. Anything else — a route that is
    not quick, a large or chunked body, ``Expect``, injected latency, a request line or header
    that is not in its plain form, a streamed or file response — moves the connection to a
    thread of its own for good (:class:`_Handler`, with the bytes read so far), which serves
    it exactly as before. So the loop only needs the plain case right; the thread keeps every
    rule and limit of the protocol.
    """

    def __init__(self, server: _Server) -> None:
        self.server = server
        self.app = server.app
        self.selector = selectors.DefaultSelector()
        self.conns: dict[socket.socket, _LoopConn] = {}

    def run(self) -> None:
        server, selector = self.server, self.selector
        server.socket.setblocking(False)
        selector.register(server.socket, selectors.EVENT_READ, None)
        selector.register(server.wake_recv, selectors.EVENT_READ, None)
        next_tick = time.monotonic() + LOOP_TICK_S
        try:
            while not server.stopping:
                for key, mask in selector.select(LOOP_TICK_S):
                    conn = key.data
                    if conn is None:
                        if key.fileobj is server.socket and not server.stopping:
                            self._accept()
                        continue
                    try:
                        if mask & selectors.EVENT_WRITE:
                            self._flush(conn)
                        else:
                            self._read(conn)
                    except Exception:
                        self._unexpected()
                        self._drop(conn)
                now = time.monotonic()
                if now >= next_tick:
                    next_tick = now + LOOP_TICK_S
                    try:
                        self._tick(now)
                    except Exception:
                        self._unexpected()
        finally:
            for conn in list(self.conns.values()):
                self._drop(conn)
            selector.close()

    def _unexpected(self) -> None:
        """Log the exception being handled; the loop goes on (a bug must not stop the server)."""
        self.app.log(
            "unexpected error in the server's connection loop:\n" + traceback.format_exc().rstrip()
        )

    def _accept(self) -> None:
        for _ in range(64):
            try:
                sock, peer = self.server.socket.accept()
            except OSError:
                return  # none left (or the peer gave up between select() and accept())
            sock.setblocking(False)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _LoopConn(sock, peer, time.monotonic())
            self.conns[sock] = conn
            self.selector.register(sock, selectors.EVENT_READ, conn)

    def _tick(self, now: float) -> None:
        """Close connections idle past the keep-alive timeout, and those whose body stalled."""
        for conn in list(self.conns.values()):
            idle = now - conn.since
            if conn.waiting is not None and idle > self.app.body_idle_timeout_s:
                method, target, started = conn.waiting
                elapsed = (time.perf_counter() - started) * 1000
                self.app.log(f"{method} {target} --- {elapsed:.1f}ms (client disconnected)")
                self._drop(conn)
            elif idle > _Handler.timeout:
                self._drop(conn)

    def _read(self, conn: _LoopConn) -> None:
        try:
            data = conn.sock.recv(1 << 18)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            if conn.buf:  # the client ended inside a request: the thread answers as ever
                self._handoff(conn)
            else:
                self._drop(conn)
            return
        conn.buf += data
        conn.since = time.monotonic()
        self._serve_buffered(conn)

    def _serve_buffered(self, conn: _LoopConn) -> None:
        while conn.buf and conn.out is None and conn.sock in self.conns:
            if not self._serve_one(conn):
                return

    def _serve_one(self, conn: _LoopConn) -> bool:
        """Serve the first request in ``conn.buf``; False when it is not all there yet or the
        connection has left the loop."""
        buf = conn.buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > MAX_LINE:  # a head this long: the thread applies the limits
                self._handoff(conn)
            return False
        if end + 4 > MAX_LINE or (plain := plain_head(buf[:end])) is None:
            self._handoff(conn)
            return False
        words, pairs = plain
        method, target = words[0], words[1]
        headers, connection, expect = _combine(pairs)
        app = self.app
        path, query = _split_target(target)
        match = app.router.match(method, path)
        length_text = headers.get("content-length", "0").strip()
        if (
            expect is not None
            or app.faults.latency_ms > 0
            or app.threaded >= LOOP_YIELDS_AT
            or match.route is None
            or not match.route.quick
            or "transfer-encoding" in headers
            or not (length_text.isascii() and length_text.isdigit())
            or int(length_text) > QUICK_BODY_LIMIT
        ):
            self._handoff(conn)
            return False
        total = end + 4 + int(length_text)
        if len(buf) < total:
            if conn.waiting is None:
                conn.waiting = (method, target, time.perf_counter())
            return False
        conn.waiting = None
        body = bytes(buf[end + 4 : total])
        del buf[:total]
        if connection == "close":
            conn.closing = True  # before the answer, whose head then says so
        self._respond(conn, method, target, path, query, match, headers, body)
        if conn.closing and conn.out is None and conn.sock in self.conns:
            self._drop(conn, graceful=True)
        return True

    def _respond(
        self,
        conn: _LoopConn,
        method: str,
        target: str,
        path: str,
        query: str,
        match: Match[Any],
        request_headers: dict[str, str],
        body: bytes,
    ) -> None:
        """What :meth:`_Handler._dispatch` does, for a request whose body is in memory."""
        app = self.app
        started = time.perf_counter()
        assert match.route is not None
        app.stats.count(match.route.key)
        headers = {"x-request-id": "req_" + os.urandom(16).hex()}
        reader = BodyReader(io.BytesIO(body), request_headers)
        lost = False
        try:
            response = _serve(app, method, path, query, match, reader, request_headers, headers)
            lost = (
                method in MUTATING and response.status < 300 and app.injector.lose_this_response()
            )
        except ApiError as exc:
            response = _error_response(exc)
        except Exception:
            response = _unexpected(app, method, target, headers["x-request-id"])
        reader.finish(DRAIN_LIMIT)  # in memory: the connection stays in sync
        elapsed = (time.perf_counter() - started) * 1000
        if lost:
            response.close()
            app.log(f"{method} {target} {response.status} {elapsed:.1f}ms (response dropped)")
            self._drop(conn)
            return
        if response.chunks is not None or response.stream is not None:
            pending = _Pending(method, target, response, headers, elapsed, conn.closing)
            self._handoff(conn, pending)
            return
        payload = response.body()
        head = _head(response, headers, f"content-length: {len(payload)}", close=conn.closing)
        self._write(conn, head if method == "HEAD" else head + payload)
        app.log(f"{method} {target} {response.status} {elapsed:.1f}ms")

    def _write(self, conn: _LoopConn, data: bytes) -> None:
        try:
            sent = conn.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._drop(conn)
            return
        if sent < len(data):
            conn.out = memoryview(data)[sent:]
            self.selector.modify(conn.sock, selectors.EVENT_WRITE, conn)

    def _flush(self, conn: _LoopConn) -> None:
        assert conn.out is not None
        try:
            sent = conn.sock.send(conn.out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(conn)
            return
        conn.since = time.monotonic()
        conn.out = conn.out[sent:] or None
        if conn.out is not None:
            return
        if conn.closing:
            self._drop(conn, graceful=True)
            return
        self.selector.modify(conn.sock, selectors.EVENT_READ, conn)
        self._serve_buffered(conn)

    def _drop(self, conn: _LoopConn, *, graceful: bool = False) -> None:
        """Close the connection (``graceful``: after the response, as a thread would)."""
        if self.conns.pop(conn.sock, None) is None:
            return
        self.selector.unregister(conn.sock)
        with contextlib.suppress(OSError):
            conn.sock.shutdown(socket.SHUT_WR if graceful else socket.SHUT_RDWR)
        conn.sock.close()

    def _handoff(self, conn: _LoopConn, pending: _Pending | None = None) -> None:
        """Move the connection to a thread of its own, with every byte read so far."""
        del self.conns[conn.sock]
        self.selector.unregister(conn.sock)
        conn.sock.setblocking(True)
        thread = threading.Thread(
            target=self.server.serve_thread,
            args=(conn.sock, conn.peer, bytes(conn.buf), pending),
            daemon=True,
        )
        thread.start()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: App[Any]) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.app = app
        # The stdlib loop notices shutdown() only at its next poll; a wake-up socket pair lets
        # stop() end the accept loop at once (tests start and stop a server per test).
        self.wake_recv, self._wake_send = socket.socketpair()
        self.stopping = False
        try:
            super().__init__(address, _Handler)
        except BaseException:
            self._close_wake()
            raise

    def accept_loop(self) -> None:
        """Accept connections and serve them (:class:`_Loop`) until :meth:`stop_accepting`;
        then close the connections the loop still holds."""
        _Loop(self).run()

    def serve_thread(
        self, conn: socket.socket, peer: Any, leftover: bytes, pending: _Pending | None
    ) -> None:
        """A connection's own thread, from the loop's hand-off to the connection's end."""
        try:
            _Handler(conn, peer, self, leftover, pending)
        except Exception:
            self.handle_error(conn, peer)
        finally:
            self.shutdown_request(conn)

    def stop_accepting(self) -> None:
        """Make :meth:`accept_loop` return promptly."""
        self.stopping = True
        with contextlib.suppress(OSError):
            self._wake_send.send(b"x")

    def _close_wake(self) -> None:
        self.wake_recv.close()
        self._wake_send.close()

    def server_close(self) -> None:
        super().server_close()
        self._close_wake()

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, a reverse-DNS lookup that can take
        # seconds; the name is never used here.
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])


_DATE: tuple[int, str] = (-1, "")


def _http_date() -> str:
    """The Date header for now (RFC 7231's IMF-fixdate), formatted once per second: the header
    has a resolution of one second, and formatting it per response cost ~3 % of a request."""
    global _DATE
    now = int(time.time())
    second, text = _DATE
    if second != now:
        text = email.utils.formatdate(now, usegmt=True)
        _DATE = (now, text)
    return text


MAX_LINE = 65536
"""Longest request line or header line read (as the standard library's HTTP server)."""
MAX_HEADERS = 100
"""Most header lines read, the blank line that ends them included (as the standard library)."""
METHODS = frozenset({"GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS"})
"""Methods a request may use; any other is a 501 (routes then decide 404/405)."""

# One header line in its plain form: a token name, a colon, the value, CRLF or LF. Anything
# else (folded lines, a bare CR, a line without a colon) goes to the e-mail parser.
_HEADER_LINE = re.compile(rb"([\x21-\x39\x3b-\x7e]+):[ \t]*([^\r\n]*)\r?\n")
_PHRASES = {status.value: status.phrase for status in HTTPStatus}


def parse_header_lines(lines: Sequence[bytes]) -> list[tuple[str, str]]:
    """The (name, value) pairs of a request's header lines (the blank line excluded).

    Exactly what the standard library's HTTP server sees (``http.client.parse_headers``, i.e.
    the e-mail parser with its ``compat32`` policy), without its cost in the common case:
    plain ``Name: value`` lines are split here; a block with any other line (a folded
    continuation, a line without a colon, a bare CR) is handed to the e-mail parser whole.
    """
    pairs: list[tuple[str, str]] = []
    match = _HEADER_LINE.fullmatch
    for line in lines:
        found = match(line)
        if found is None:
            text = b"".join(lines).decode("iso-8859-1")
            message = email.parser.Parser(_class=http.client.HTTPMessage).parsestr(text)
            return [(name, str(value)) for name, value in message.items()]
        name, value = found.groups()
        pairs.append((name.decode("ascii"), value.decode("iso-8859-1")))
    return pairs


def _combine(pairs: Sequence[tuple[str, str]]) -> tuple[dict[str, str], str | None, str | None]:
    """Request headers by lower-case name (repeats joined with ", "), what ``Connection``
    asks for in lower case, and the first ``Expect`` value in lower case (None when absent).

    ``Connection`` is a list (RFC 9110 7.6.1), possibly over several lines: a ``close``
    anywhere in it closes the connection, else ``keep-alive`` anywhere keeps it open (the
    standard library's server only looks at the whole first value)."""
    headers: dict[str, str] = {}
    connection = expect = None
    for name, value in pairs:
        key = name.lower()
        if key in headers:
            headers[key] = f"{headers[key]}, {value}"
        else:
            headers[key] = value
            if key == "expect":
                expect = value.lower()
        if key == "connection" and connection != "close":
            tokens = {token.strip().lower() for token in value.split(",")}
            if "close" in tokens:
                connection = "close"
            elif "keep-alive" in tokens:
                connection = "keep-alive"
            elif connection is None:
                connection = value.lower()
    return headers, connection, expect


def _split_target(target: str) -> tuple[str, str]:
    """The request target's path and query (``urlsplit`` only when there is more to it)."""
    if "?" in target or "#" in target or not target.startswith("/"):
        url = urlsplit(target)
        return url.path, url.query
    return target, ""  # a plain path, as clients send: nothing to split


def _unexpected(app: App[Any], method: str, target: str, request_id: str) -> Response:
    """A handler's bug: the traceback goes to the log, the client gets a 500 naming the id."""
    app.log(
        f"unexpected error in {method} {target} ({request_id}):\n" + traceback.format_exc().rstrip()
    )
    return _error_response(
        ApiError(
            500,
            "The server had an error while processing your request; its log has the "
            f"details under request id {request_id}.",
            type=SERVER_ERROR,
        )
    )


def _head(response: Response, headers: dict[str, str], framing: str, *, close: bool) -> bytes:
    """The status line and headers of ``response``; ``framing`` is its Content-Length or
    Transfer-Encoding header line ("" for a body that ends with the connection)."""
    lines = [f"HTTP/1.1 {response.status} {_PHRASES[response.status]}"]
    lines.append(f"content-type: {response.content_type}")
    if framing:
        lines.append(framing)
    lines.append(f"date: {_http_date()}")
    lines.extend(f"{name}: {value}" for name, value in headers.items())
    lines.extend(f"{name}: {value}" for name, value in response.headers.items())
    if close:
        lines.append("connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _serve(
    app: App[Any],
    method: str,
    path: str,
    query: str,
    match: Match[Any],
    body: BodyReader,
    request_headers: dict[str, str],
    headers: dict[str, str],
) -> Response:
    faults = app.faults
    if faults.latency_ms > 0:
        time.sleep(faults.latency_ms / 1000)
    if faults.take("rate_limit_next"):
        raise ApiError(
            429,
            "Rate limit reached for requests (injected by the rate_limit_next fault). "
            "Retry after the delay in the retry-after-ms header.",
            type="requests",
            code="rate_limit_exceeded",
            headers=retry_headers(faults.rate_limit_next_retry_ms / 1000),
        )
    rpm = faults.rate_limit_rpm
    if rpm > 0:
        verdict = app.injector.limiter.check(rpm)
        headers.update(verdict.headers)
        if not verdict.allowed:
            raise ApiError(
                429,
                f"Rate limit reached for requests: limit {rpm} requests per minute. "
                f"Please try again in {verdict.retry_after_s * 1000:.0f}ms.",
                type="requests",
                code="rate_limit_exceeded",
                headers=retry_headers(verdict.retry_after_s),
            )
    status = app.injector.pick_error_status()
    if status == 503:
        raise ApiError(
            503, "The server is overloaded (injected fault); retry later.", type=SERVER_ERROR
        )
    if status is not None:
        raise ApiError(
            500,
            "The server had an error while processing your request (injected fault); "
            "retry your request.",
            type=SERVER_ERROR,
        )
    route = match.route
    if route is None or not route.public:
        app.authenticate(request_headers.get("authorization"))
    if route is None:
        if match.allowed:
            allowed = ", ".join(match.allowed)
            raise ApiError(
                405,
                f"Method {method} is not allowed on {path}; allowed: {allowed}.",
                headers={"allow": allowed},
            )
        raise ApiError(404, f"Invalid URL ({method} {path}){_prefix_hint(app, method, path)}")
    if route.beta:
        _check_beta(request_headers.get("openai-beta"))
    request = Request(
        method=method,
        path=path,
        query=parse_qs(query, keep_blank_values=True) if query else {},
        headers=request_headers,
        params=match.params,
        body=body,
        context=app.context,
    )
    if route.quick and body.prefetch(QUICK_BODY_LIMIT):
        turn = app.turn.acquire(timeout=QUICK_WAIT_S)
        try:
            return route.handler(request)
        finally:
            if turn:
                app.turn.release()
    return route.handler(request)


class _Handler(socketserver.StreamRequestHandler):
    """One connection: read a request, serve it, repeat while the connection is kept alive.

    The request line and header limits, the HTTP version rules, ``Connection`` and
    ``Expect: 100-continue`` follow the standard library's ``BaseHTTPRequestHandler``; the
    per-request work is ours so that it costs little (no e-mail message per request).
    """

    disable_nagle_algorithm = True
    timeout = 300  # an idle keep-alive connection releases its thread after five minutes
    server: _Server

    def __init__(
        self,
        request: socket.socket,
        client_address: Any,
        server: _Server,
        leftover: bytes = b"",
        pending: _Pending | None = None,
    ) -> None:
        """``leftover``: bytes the loop had read beyond what it served; ``pending``: a
        response the loop computed and leaves to this thread to send (see :class:`_Loop`)."""
        self._leftover = leftover
        self._pending = pending
        super().__init__(request, client_address, server)

    def setup(self) -> None:
        super().setup()
        if self._leftover:
            self.rfile = io.BufferedReader(_Prefixed(self._leftover, self.rfile))
        self.close_connection = True
        self.requestline = ""
        self.request_version = "HTTP/0.9"
        self.command = ""
        self.path = ""
        self.server.app.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass  # the peer went away while the last bytes were flushed
        finally:
            self.server.app.untrack(self.connection)

    def handle(self) -> None:
        self.close_connection = True
        pending = self._pending
        if pending is not None:
            self.command, self.path = pending.method, pending.target
            self.request_version = "HTTP/1.1"
            self.close_connection = pending.close
            self._deliver(
                pending.method, pending.target, pending.response, pending.headers, pending.elapsed
            )
        else:
            self._one_request()
        while not self.close_connection:
            self._one_request()

    def _one_request(self) -> None:
        self.close_connection = True
        try:
            raw = self.rfile.readline(MAX_LINE + 1)
            if not raw:
                return  # the client closed the connection
            self.requestline = ""
            self.request_version = "HTTP/0.9"
            self.command = ""
            if len(raw) > MAX_LINE:
                self.send_error(414)
                return
            if self._parse(raw):
                self._dispatch()
        except (TimeoutError, ConnectionError):
            return  # idle past the timeout, or the client vanished: close

    def _parse(self, raw: bytes) -> bool:
        """Read the request line and headers; False (after any error response) to stop."""
        requestline = str(raw, "iso-8859-1").rstrip("\r\n")
        self.requestline = requestline
        words = requestline.split()
        if not words:
            return False
        if len(words) == 3 and words[2] == "HTTP/1.1":  # nearly every request
            self.close_connection = False
            self.request_version = "HTTP/1.1"
        elif len(words) >= 3:
            version = words[-1]
            try:
                if not version.startswith("HTTP/"):
                    raise ValueError
                numbers = version.split("/", 1)[1].split(".")
                if len(numbers) != 2 or any(
                    not part.isdigit() or len(part) > 10 for part in numbers
                ):
                    raise ValueError
                major, minor = int(numbers[0]), int(numbers[1])
            except ValueError:
                self.send_error(400, f"Bad request version ({version!r})")
                return False
            if (major, minor) >= (1, 1):
                self.close_connection = False
            if (major, minor) >= (2, 0):
                self.send_error(505, f"Invalid HTTP version ({version.split('/', 1)[1]})")
                return False
            self.request_version = version
        if not 2 <= len(words) <= 3:
            self.send_error(400, f"Bad request syntax ({requestline!r})")
            return False
        command, path = words[:2]
        if len(words) == 2:
            self.close_connection = True
            if command != "GET":
                self.send_error(400, f"Bad HTTP/0.9 request type ({command!r})")
                return False
        self.command = command
        if path.startswith("//"):
            path = "/" + path.lstrip("/")  # not a scheme-relative URL (as the stdlib)
        self.path = path
        lines: list[bytes] = []
        while True:
            line = self.rfile.readline(MAX_LINE + 1)
            if len(line) > MAX_LINE:
                self.send_error(431, "Line too long")
                return False
            if len(lines) + 1 > MAX_HEADERS:
                self.send_error(431, "Too many headers")
                return False
            if line in (b"\r\n", b"\n", b""):
                break
            lines.append(line)
        headers, connection, expect = _combine(parse_header_lines(lines))
        self.request_headers = headers
        if connection == "close":
            self.close_connection = True
        elif connection == "keep-alive":
            self.close_connection = False
        if expect == "100-continue" and self.request_version >= "HTTP/1.1":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if command not in METHODS:
            self.send_error(501, f"Unsupported method ({command!r})")
            return False
        return True

    def send_error(self, code: int, message: str | None = None) -> None:
        """Protocol-level errors (the request line and headers), in the API's error envelope."""
        self.close_connection = True
        self.server.app.log(f"{self.requestline or '-'} {code} (malformed request)")
        error = ApiError(code, message or HTTPStatus(code).phrase)
        headers = {"x-request-id": "req_" + os.urandom(16).hex()}
        self._send(_error_response(error), headers, head_only=False)

    def _dispatch(self) -> None:
        app = self.server.app
        started = time.perf_counter()
        method = self.command
        path, query = _split_target(self.path)
        match = app.router.match(method, path)
        app.stats.count(match.route.key if match.route else f"{method} (no route)")
        headers = {"x-request-id": "req_" + os.urandom(16).hex()}
        request_headers = self.request_headers
        body: BodyReader | None = None
        lost = False
        timeout_changed = False
        try:
            body = BodyReader(self.rfile, request_headers)
            if not body.exhausted:
                # Reading the body: a stalled client times out sooner (the except below closes).
                self.connection.settimeout(app.body_idle_timeout_s)
                timeout_changed = True
            response = _serve(app, method, path, query, match, body, request_headers, headers)
            lost = (
                method in MUTATING and response.status < 300 and app.injector.lose_this_response()
            )
        except ApiError as exc:
            response = _error_response(exc)
        except (TimeoutError, ConnectionError):
            # The client stalled or vanished mid-request: nobody is left to answer.
            self.close_connection = True
            elapsed = (time.perf_counter() - started) * 1000
            app.log(f"{method} {self.path} --- {elapsed:.1f}ms (client disconnected)")
            return
        except Exception:
            response = _unexpected(app, method, self.path, headers["x-request-id"])
        try:
            in_sync = body is not None and body.finish(DRAIN_LIMIT)
        except (TimeoutError, ConnectionError):
            in_sync = False
        if not in_sync:
            # The rest of this request cannot be skipped cheaply (or its framing is unknown),
            # so the next bytes on the connection are not a request: close after responding.
            self.close_connection = True
        if timeout_changed:
            # Reads are over: the response (a stream may last long) and the keep-alive wait for
            # the next request get the connection's own timeout back.
            self.connection.settimeout(self.timeout)
        elapsed = (time.perf_counter() - started) * 1000
        if lost:
            response.close()
            self.close_connection = True
            _shutdown(self.connection)
            app.log(f"{method} {self.path} {response.status} {elapsed:.1f}ms (response dropped)")
            return
        self._deliver(method, self.path, response, headers, elapsed)

    def _deliver(
        self, method: str, target: str, response: Response, headers: dict[str, str], elapsed: float
    ) -> None:
        """Send the response and log its line (a stream's line first: it may last long)."""
        app = self.server.app
        if response.chunks is not None and method != "HEAD":
            app.log(f"{method} {target} {response.status} {elapsed:.1f}ms (streaming)")
            self._send(response, headers, head_only=False)
            return
        self._send(response, headers, head_only=method == "HEAD")
        app.log(f"{method} {target} {response.status} {elapsed:.1f}ms")

    def _send(self, response: Response, headers: dict[str, str], *, head_only: bool) -> None:
        stream, chunks = response.stream, response.chunks
        try:
            payload = b""
            # HTTP/1.0 has no chunked encoding: the body then ends when the connection does.
            framed = self.request_version != "HTTP/1.0"
            if chunks is not None and framed:
                framing = "transfer-encoding: chunked"
            elif chunks is not None:
                framing = ""
                self.close_connection = True
            else:
                payload = b"" if stream is not None else response.body()
                length = response.length if stream is not None else len(payload)
                framing = f"content-length: {length}"
            head = _head(response, headers, framing, close=self.close_connection)
            if head_only:
                self.wfile.write(head)
            elif chunks is not None:
                self.wfile.write(head)
                self._send_chunks(chunks, framed=framed)
            elif stream is None:
                # One send for head and body: separate small writes on a keep-alive connection
                # meet the peer's delayed ACK and cost ~40 ms per request.
                self.wfile.write(head + payload)
            else:
                self.wfile.write(head)
                self.connection.sendfile(stream)
        except OSError:
            self.close_connection = True  # the client hung up; nothing left to tell it
        finally:
            response.close()

    def _send_chunks(self, chunks: Iterator[bytes], *, framed: bool) -> None:
        """Write each chunk as it comes (``wfile`` is unbuffered: one send per chunk)."""
        try:
            for chunk in chunks:
                if chunk:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if framed else chunk)
        except OSError:
            raise  # the client went away: the caller closes the iterator
        except Exception:
            # The body is already under way: the only honest signal left is a truncated body.
            self.close_connection = True
            self.server.app.log(
                f"unexpected error while streaming {self.command} {self.path}:\n"
                + traceback.format_exc().rstrip()
            )
            return
        if framed:
            self.wfile.write(b"0\r\n\r\n")


class HttpServer:
    """A server running on a background thread; :meth:`stop` ends it (idempotent)."""

    def __init__(self, app: App[Any], host: str, port: int) -> None:
        self.app = app
        self._server = _Server((host, port), app)
        self._stopped = False
        bound_host, bound_port = self._server.server_address[:2]
        self.host = str(bound_host)
        self.port = int(bound_port)
        self._thread = threading.Thread(
            target=self._server.accept_loop, name=f"assistsync-server:{self.port}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        """Stop accepting, shut down open connections and wait (up to ``timeout``) for them."""
        if self._stopped:
            return
        self._stopped = True
        self._server.stop_accepting()
        self._thread.join()
        self._server.server_close()
        self.app.close_connections(timeout=timeout)


def start_http(app: App[Any], host: str, port: int) -> HttpServer:
    """Listen on ``host:port`` (0 picks a free port) and serve ``app`` until stopped."""
    return HttpServer(app, host, port)
