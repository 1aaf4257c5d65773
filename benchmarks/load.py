"""A load generator for the server rows: ``python -m benchmarks.load URL METHOD PATH C N``.

``C`` keep-alive connections send ``N`` requests between them, each connection one request at
a time: ``GET PATH`` or ``POST PATH`` with a small assistant body. It prints one JSON line:
requests sent, errors (a status other than 200, a response it cannot read, or a connection
failure, each followed by a new connection), and its wall time. Its CPU time is measured from
outside (``benchmarks/launch.py``) and shown apart from the server's.

Why one thread and raw sockets: the generator shares the machine's cores with the server it
measures, so the less CPU it spends per request, the more the rows measure the server. Each
request is the same prepared bytes; one ``selectors`` loop reads whichever connections have
answered (a response is framed by its ``Content-Length``, which the server always sends for
these routes) and sends each its next request. An ``http.client`` thread per connection cost
about twice as much per request, most of it in switching threads.
"""

from __future__ import annotations

import json
import selectors
import socket
import sys
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

KEY = "sk-bench-0123456789abcdef"
BODY = json.dumps(
    {
        "model": "gpt-4-turbo",
        "name": "load",
        "instructions": "Answer briefly. " * 20,
        "tools": [{"type": "code_interpreter"}],
        "metadata": {"team": "bench"},
    }
).encode()
TIMEOUT_S = 60.0
"""The longest wait for any response: past it, the requests still out count as errors."""


def request_bytes(method: str, host: str, port: int, path: str) -> bytes:
    """One complete request, as any HTTP/1.1 client would send it."""
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: {host}:{port}",
        f"Authorization: Bearer {KEY}",
        "OpenAI-Beta: assistants=v1",
        "Accept: application/json",
    ]
    body = b""
    if method == "POST":
        body = BODY
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@dataclass
class _Conn:
    sock: socket.socket
    buffer: bytearray = field(default_factory=bytearray)


def parse_response(buffer: bytearray) -> tuple[int, int, bool] | None:
    """``(status, bytes used, connection closes)`` of the first whole response in ``buffer``,
    or None while it is incomplete. Raises ValueError when it cannot be framed."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buffer[:end]).lower()
    status = int(head.split(b" ", 2)[1])
    length = -1
    closes = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name == b"content-length":
            length = int(value)
        elif name == b"connection":
            closes = value.strip() == b"close"
    if length < 0:
        raise ValueError("a response without Content-Length")
    used = end + 4 + length
    if len(buffer) < used:
        return None
    return status, used, closes


def run(url: str, method: str, path: str, concurrency: int, total: int) -> dict[str, object]:
    """Send ``total`` requests over ``concurrency`` connections; the JSON line's fields."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = request_bytes(method, host, port, parts.path.rstrip("/") + path)
    selector = selectors.DefaultSelector()
    to_send = total
    outstanding = 0
    errors = 0
    first_error = ""

    def fail(detail: str) -> None:
        nonlocal errors, first_error
        errors += 1
        first_error = first_error or detail

    def send(conn: _Conn) -> None:
        nonlocal to_send, outstanding
        to_send -= 1
        outstanding += 1
        try:
            conn.sock.sendall(request)
        except OSError as exc:
            outstanding -= 1
            fail(f"{type(exc).__name__}: {exc}")
            reopen(conn)

    def open_one() -> None:
        try:
            sock = socket.create_connection((host, port), timeout=TIMEOUT_S)
        except OSError as exc:
            nonlocal to_send
            to_send -= 1
            fail(f"{type(exc).__name__}: {exc}")
            return
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = _Conn(sock)
        selector.register(sock, selectors.EVENT_READ, conn)
        send(conn)

    def reopen(conn: _Conn) -> None:
        selector.unregister(conn.sock)
        conn.sock.close()
        if to_send > 0:
            open_one()

    started = time.perf_counter()
    for _ in range(min(concurrency, total)):
        if to_send > 0:
            open_one()
    while outstanding > 0 or to_send > 0:
        events = selector.select(TIMEOUT_S)
        if not events:
            if outstanding == 0 and to_send > 0:
                open_one()  # every connection failed: try again
                continue
            errors += outstanding + to_send
            first_error = first_error or f"no response within {TIMEOUT_S:.0f} s"
            break
        for key, _ in events:
            conn: _Conn = key.data
            try:
                data = conn.sock.recv(1 << 18)
            except OSError as exc:
                data = b""
                fail(f"{type(exc).__name__}: {exc}")
            else:
                if not data:
                    fail("the server closed the connection")
            if not data:
                outstanding -= 1
                reopen(conn)
                continue
            conn.buffer += data
            try:
                parsed = parse_response(conn.buffer)
            except (ValueError, IndexError):
                fail("a response that cannot be read")
                outstanding -= 1
                reopen(conn)
                continue
            if parsed is None:
                continue
            status, used, closes = parsed
            del conn.buffer[:used]
            outstanding -= 1
            if status != 200:
                fail(f"HTTP {status}")
            if closes or status != 200:
                reopen(conn)
            elif to_send > 0:
                send(conn)
    wall = time.perf_counter() - started
    for key in list(selector.get_map().values()):
        key.fileobj.close()  # type: ignore[union-attr]
    selector.close()
    return {"requests": total, "errors": errors, "wall_s": wall, "first_error": first_error}


def main(argv: list[str]) -> int:
    url, method, path, concurrency, total = argv[0], argv[1], argv[2], int(argv[3]), int(argv[4])
    print(json.dumps(run(url, method, path, concurrency, total)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
