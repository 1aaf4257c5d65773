"""The HTTP server: socket handling, faults, auth, framing, logging.

Technology: stdlib :class:`http.server.ThreadingHTTPServer`. It starts in milliseconds (tests
start dozens of servers), needs no dependency, and gives direct access to the socket, which
the lost-response fault needs: a committed mutation's connection is shut down before a single
response byte is written, something an ASGI server does not let an application do. Requests
are served over HTTP/1.1 keep-alive (``Content-Length`` always set, TCP_NODELAY, head and body
written in one send) so a client's pooled connection is reused, which is what makes 200
requests/s from one process effortless. Bodies are parsed by python-multipart (streaming) and
pydantic (validation) in the layers above.

Per request, in order: count it (:class:`Stats`), sleep ``latency_ms``, apply the rate limit
(429), inject 500/503, authenticate (401), route (404/405), check ``OpenAI-Beta`` (400), run
the handler, and possibly drop the response of a committed mutation. Any exception becomes an
error envelope; nothing a client sends can produce a hung connection.

Every connection is served on its own thread, so a handler that waits (a long poll) holds only
its own connection. :func:`start_http` runs a server on a background thread and returns a
:class:`HttpServer` to stop it.
"""

from __future__ import annotations

import contextlib
import email.parser
import email.utils
import hmac
import http.client
import re
import secrets
import selectors
import socket
import socketserver
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
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
        self.log = log
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
    betas = [part.strip() for part in (value or "").split(",") if part.strip()]
    if not betas:
        raise bad_request(MISSING_BETA)
    if "assistants=v1" not in betas:
        raise bad_request(
            f"This server implements the Assistants API v1 only, but the request asked for "
            f"'OpenAI-Beta: {value}'. Set the header 'OpenAI-Beta: assistants=v1'."
        )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: App[Any]) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.app = app
        # The stdlib loop notices shutdown() only at its next poll; a wake-up socket pair lets
        # stop() end the accept loop at once (tests start and stop a server per test).
        self._wake_recv, self._wake_send = socket.socketpair()
        self._stopping = False
        try:
            super().__init__(address, _Handler)
        except BaseException:
            self._close_wake()
            raise

    def accept_loop(self) -> None:
        """Accept connections (each served on its own thread) until :meth:`stop_accepting`."""
        with selectors.DefaultSelector() as selector:
            selector.register(self.socket, selectors.EVENT_READ)
            selector.register(self._wake_recv, selectors.EVENT_READ)
            while not self._stopping:
                for key, _ in selector.select():
                    if key.fileobj is self.socket and not self._stopping:
                        self._accept_one()

    def _accept_one(self) -> None:
        try:
            conn, peer = self.get_request()
        except OSError:
            return  # the peer gave up between select() and accept()
        try:
            self.process_request(conn, peer)  # starts the connection's thread
        except Exception:
            self.handle_error(conn, peer)
            self.shutdown_request(conn)

    def stop_accepting(self) -> None:
        """Make :meth:`accept_loop` return promptly."""
        self._stopping = True
        with contextlib.suppress(OSError):
            self._wake_send.send(b"x")

    def _close_wake(self) -> None:
        self._wake_recv.close()
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


class _Handler(socketserver.StreamRequestHandler):
    """One connection: read a request, serve it, repeat while the connection is kept alive.

    The request line and header limits, the HTTP version rules, ``Connection`` and
    ``Expect: 100-continue`` follow the standard library's ``BaseHTTPRequestHandler``; the
    per-request work is ours so that it costs little (no e-mail message per request).
    """

    disable_nagle_algorithm = True
    timeout = 300  # an idle keep-alive connection releases its thread after five minutes
    server: _Server

    def setup(self) -> None:
        super().setup()
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
        headers: dict[str, str] = {}
        connection = expect = None
        for name, value in parse_header_lines(lines):
            key = name.lower()
            if key in headers:
                headers[key] = f"{headers[key]}, {value}"
            else:
                headers[key] = value
                if key == "connection":
                    connection = value.lower()
                elif key == "expect":
                    expect = value.lower()
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
        headers = {"x-request-id": "req_" + secrets.token_hex(16)}
        self._send(_error_response(error), headers, head_only=False)

    def _dispatch(self) -> None:
        app = self.server.app
        started = time.perf_counter()
        method = self.command
        target = self.path
        if "?" in target or "#" in target or not target.startswith("/"):
            url = urlsplit(target)
            path, query = url.path, url.query
        else:  # a plain path, as clients send: nothing to split
            path, query = target, ""
        match = app.router.match(method, path)
        app.stats.count(match.route.key if match.route else f"{method} (no route)")
        headers = {"x-request-id": "req_" + secrets.token_hex(16)}
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
            response = self._serve(app, method, path, query, match, body, request_headers, headers)
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
            app.log(
                f"unexpected error in {method} {self.path} ({headers['x-request-id']}):\n"
                + traceback.format_exc().rstrip()
            )
            response = _error_response(
                ApiError(
                    500,
                    "The server had an error while processing your request; its log has the "
                    f"details under request id {headers['x-request-id']}.",
                    type=SERVER_ERROR,
                )
            )
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
        if response.chunks is not None and method != "HEAD":
            # A stream is logged when it starts: it may last long after this line.
            app.log(f"{method} {self.path} {response.status} {elapsed:.1f}ms (streaming)")
            self._send(response, headers, head_only=False)
            return
        self._send(response, headers, head_only=method == "HEAD")
        app.log(f"{method} {self.path} {response.status} {elapsed:.1f}ms")

    def _serve(
        self,
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

    def _send(self, response: Response, headers: dict[str, str], *, head_only: bool) -> None:
        stream, chunks = response.stream, response.chunks
        try:
            lines = [
                f"HTTP/1.1 {response.status} {_PHRASES[response.status]}",
                f"content-type: {response.content_type}",
            ]
            payload = b""
            # HTTP/1.0 has no chunked encoding: the body then ends when the connection does.
            framed = self.request_version != "HTTP/1.0"
            if chunks is not None and framed:
                lines.append("transfer-encoding: chunked")
            elif chunks is not None:
                self.close_connection = True
            else:
                payload = b"" if stream is not None else response.body()
                length = response.length if stream is not None else len(payload)
                lines.append(f"content-length: {length}")
            lines.append(f"date: {_http_date()}")
            lines.extend(f"{name}: {value}" for name, value in headers.items())
            lines.extend(f"{name}: {value}" for name, value in response.headers.items())
            if self.close_connection:
                lines.append("connection: close")
            head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
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
