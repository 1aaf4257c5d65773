"""The connection loop: quick requests served on one thread, everything else handed to a thread.

Each test drives a raw socket so that it controls how the bytes arrive (pipelined, split, read
late) and checks what a client sees: every response, in order, on the one connection, whether
the loop served it or the connection's own thread did after a hand-off.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest
from server_testkit import AUTH, BETA, checked_client

from assistsync.server import ServerHandle, start_server
from assistsync.server.framework.http import LOOP_YIELDS_AT

WAIT = 10  # seconds: only ever reached when a test is about to fail
H = b"Host: x\r\nAuthorization: Bearer k\r\nOpenAI-Beta: assistants=v1\r\n"


@pytest.fixture
def sock(server: ServerHandle) -> Iterator[socket.socket]:
    with socket.create_connection((server.host, server.port), timeout=WAIT) as s:
        yield s


def _responses(sock: socket.socket, count: int) -> list[tuple[int, dict[str, str], bytes]]:
    """Read ``count`` Content-Length-framed responses (status, headers, body) in order."""
    data = b""
    out: list[tuple[int, dict[str, str], bytes]] = []
    while len(out) < count:
        end = data.find(b"\r\n\r\n")
        if end >= 0:
            head = data[:end].decode("latin-1").split("\r\n")
            headers = dict(line.split(": ", 1) for line in head[1:])
            total = end + 4 + int(headers.get("content-length", "0"))
            if len(data) >= total:
                out.append((int(head[0].split(" ")[1]), headers, data[end + 4 : total]))
                data = data[total:]
                continue
        chunk = sock.recv(1 << 20)
        assert chunk, f"the server closed after {len(out)} responses"
        data += chunk
    return out


def _post(path: bytes, body: bytes, extra: bytes = b"") -> bytes:
    return (
        b"POST " + path + b" HTTP/1.1\r\n" + H + b"Content-Type: application/json\r\n" + extra
        + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
    )  # fmt: skip


def test_pipelined_quick_and_other_requests_are_answered_in_order(
    sock: socket.socket,
) -> None:
    sock.sendall(
        _post(b"/v1/assistants", b'{"model": "m", "name": "one"}')
        + b"GET /v1/assistants HTTP/1.1\r\n" + H + b"\r\n"
        + b"GET /v1/threads/thread_x HTTP/1.1\r\n" + H + b"\r\n"  # not quick: a hand-off
        + _post(b"/v1/assistants", b'{"model": "m", "name": "two"}')
    )  # fmt: skip
    (s1, _, b1), (s2, _, b2), (s3, _, _), (s4, _, b4) = _responses(sock, 4)
    assert (s1, s2, s3, s4) == (200, 200, 404, 200)
    assert b'"name":"one"' in b1
    assert b'"name":"one"' in b2
    assert b'"name":"two"' in b4


def test_a_body_that_arrives_after_its_head_is_waited_for(sock: socket.socket) -> None:
    request = _post(b"/v1/assistants", b'{"model": "m", "name": "late"}')
    head, body = request.split(b"\r\n\r\n", 1)
    sock.sendall(head + b"\r\n\r\n")
    sock.sendall(body[:5])
    sock.sendall(body[5:])
    [(status, _, answer)] = _responses(sock, 1)
    assert status == 200
    assert b'"name":"late"' in answer


def test_a_large_response_to_a_late_reader_is_sent_whole(
    server: ServerHandle, sock: socket.socket
) -> None:
    big = "x" * 200_000
    with checked_client(server) as c:
        for n in range(30):
            c.post("/assistants", json={"model": "m", "name": str(n), "instructions": big})
    # Two requests at once; the first answer (~6 MB) is larger than the socket buffers, so
    # the server must keep the rest until the client reads, and only then answer the second.
    sock.sendall(
        b"GET /v1/assistants?limit=30 HTTP/1.1\r\n" + H + b"\r\n"
        + b"GET /v1/files HTTP/1.1\r\n" + H + b"\r\n"
    )  # fmt: skip
    (s1, h1, b1), (s2, _, _) = _responses(sock, 2)
    assert (s1, s2) == (200, 200)
    assert int(h1["content-length"]) == len(b1) > 30 * 200_000
    assert len(httpx.Response(200, content=b1).json()["data"]) == 30


def test_a_file_response_is_sent_by_a_thread_and_the_connection_goes_on(
    server: ServerHandle, sock: socket.socket
) -> None:
    content = bytes(range(256)) * 1000
    with checked_client(server) as c:
        uploaded = c.post(
            "/files", files={"file": ("a.zip", content)}, data={"purpose": "assistants"}
        ).json()
    file_id = uploaded["id"].encode()
    sock.sendall(
        b"GET /v1/files/" + file_id + b"/content HTTP/1.1\r\n" + H + b"\r\n"
        + b"GET /v1/files/" + file_id + b" HTTP/1.1\r\n" + H + b"\r\n"
    )  # fmt: skip
    (s1, _, b1), (s2, _, b2) = _responses(sock, 2)
    assert (s1, s2) == (200, 200)
    assert b1 == content
    assert file_id in b2


def test_head_and_connection_close_after_a_quick_request(sock: socket.socket) -> None:
    empty = b'{"object":"list","data":[],"first_id":null,"last_id":null,"has_more":false}'
    sock.sendall(
        b"GET /v1/assistants HTTP/1.1\r\n" + H + b"\r\n"
        + b"HEAD /v1/assistants HTTP/1.1\r\n" + H + b"\r\n"  # no such route: 405, no body
        + b"GET /v1/assistants HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n"
    )  # fmt: skip
    data = b""
    while chunk := sock.recv(65536):  # the server closes after the last answer
        data += chunk
    heads = re.findall(rb"HTTP/1\.1 (\d{3}) [^\r]*\r\n((?:[^\r]+\r\n)*)\r\n", data)
    assert [status for status, _ in heads] == [b"200", b"405", b"200"]
    assert [b"connection: close" in head for _, head in heads] == [False, False, True]
    # The HEAD answer has no body: the next response follows its head at once.
    assert re.search(rb"\r\n\r\nHTTP/1\.1 200 ", data)
    assert data.endswith(empty)


def test_many_connections_at_once(server: ServerHandle) -> None:
    conns = [socket.create_connection((server.host, server.port), timeout=WAIT) for _ in range(64)]
    try:
        for n, c in enumerate(conns):
            c.sendall(_post(b"/v1/assistants", f'{{"model": "m", "name": "{n}"}}'.encode()))
        for n, c in enumerate(conns):
            [(status, _, body)] = _responses(c, 1)
            assert status == 200
            assert f'"name":"{n}"'.encode() in body
    finally:
        for c in conns:
            c.close()
    with httpx.Client(base_url=server.base_url, headers={**AUTH, **BETA}) as client:
        assert len(client.get("/assistants", params={"limit": 100}).json()["data"]) == 64


def _served_by_threads() -> int:
    """Connections on threads of their own, in this process (the server runs in it)."""
    return sum("serve_thread" in t.name for t in threading.enumerate())


def test_beside_many_threaded_connections_quick_requests_go_to_threads_too(
    server: ServerHandle,
) -> None:
    # The loop is one thread: beside many busy connection threads its clients waited seconds
    # for the interpreter lock. From LOOP_YIELDS_AT threaded connections on, it hands off.
    def connect() -> socket.socket:
        return socket.create_connection((server.host, server.port), timeout=WAIT)

    with connect() as first:  # with no threaded connection, a quick request stays on the loop
        first.sendall(b"GET /v1/assistants HTTP/1.1\r\n" + H + b"\r\n")
        assert _responses(first, 1)[0][0] == 200
        assert _served_by_threads() == 0
    threaded = []
    try:
        for _ in range(LOOP_YIELDS_AT):
            s = connect()
            threaded.append(s)
            s.sendall(b"GET /v1/threads/thread_nope HTTP/1.1\r\n" + H + b"\r\n")  # not quick
            assert _responses(s, 1)[0][0] == 404
        assert _served_by_threads() == LOOP_YIELDS_AT
        with connect() as quick:
            quick.sendall(b"GET /v1/assistants HTTP/1.1\r\n" + H + b"\r\n")
            assert _responses(quick, 1)[0][0] == 200
            assert _served_by_threads() == LOOP_YIELDS_AT + 1
    finally:
        for s in threaded:
            s.close()


def test_a_log_that_cannot_be_written_does_not_stop_the_server() -> None:
    lines: list[str] = []

    def broken(line: str) -> None:  # the reader of the server's log went away
        lines.append(line)
        raise BrokenPipeError(32, "Broken pipe")

    with start_server(log=broken) as handle, checked_client(handle) as client:
        for _ in range(3):
            assert client.get("/assistants").status_code == 200
        with socket.create_connection((handle.host, handle.port), timeout=WAIT) as s:
            s.sendall(b"GET /v1/threads/thread_nope HTTP/1.1\r\n" + H + b"\r\n")  # a thread's
            assert _responses(s, 1)[0][0] == 404
    assert sum("GET /v1/assistants 200" in line for line in lines) == 3


@pytest.mark.parametrize("path", [b"/v1/assistants", b"/v1/threads/thread_nope"])  # loop, thread
@pytest.mark.parametrize(
    "connection",
    [b"Connection: keep-alive, close\r\n", b"Connection: keep-alive\r\nConnection: close\r\n"],
)
def test_a_close_anywhere_in_the_connection_list_closes(
    server: ServerHandle, path: bytes, connection: bytes
) -> None:
    # Connection is a list (RFC 9110 7.6.1): "close" among its values ends the connection.
    with socket.create_connection((server.host, server.port), timeout=WAIT) as s:
        s.sendall(b"GET " + path + b" HTTP/1.1\r\n" + H + connection + b"\r\n")
        [(status, headers, _)] = _responses(s, 1)
        assert status in (200, 404)
        assert headers.get("Connection", headers.get("connection", "")).lower() == "close"
        assert s.recv(1) == b""  # closed after the response
