"""Quick routes (``Route(quick=True)``): handlers that take turns, with their bodies read first.

A test group with its own quick routes runs next to the real ones, over loopback. What must
hold: a quick handler sees its whole body (read before it runs, so its reads never wait for
the client) and the same errors as before when the body is short or too large to read first;
two quick handlers never run at the same time; on connections with threads of their own, a
quick handler that breaks its promise and waits holds the others up only for
:data:`QUICK_WAIT_S`, never for good, and an ordinary route is never held up by a quick one.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import httpx
import pytest
from server_testkit import AUTH, ServerFactory

from assistsync.server import ServerHandle
from assistsync.server.framework.http import QUICK_BODY_LIMIT
from assistsync.server.framework.routing import Request, Response, Route
from assistsync.server.group import Context, Group
from assistsync.server.routes import GROUPS

WAIT = 10  # seconds: only ever reached when a test is about to fail


class Probe:
    """What the test group's handlers saw."""

    def __init__(self) -> None:
        self.inside = 0
        self.most_inside = 0
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.blocking = threading.Event()

    def enter(self) -> None:
        with self.lock:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)

    def leave(self) -> None:
        with self.lock:
            self.inside -= 1


def _group(probe: Probe) -> Group:
    def echo(request: Request[Context]) -> Response:
        probe.enter()
        try:
            data = request.body.read_all(QUICK_BODY_LIMIT * 4)
            # Some work between two reads of shared state, so overlapping turns would show.
            total = sum(range(2000))
            return Response({"length": len(data), "sum": total})
        finally:
            probe.leave()

    def block(request: Request[Context]) -> Response:
        probe.blocking.set()
        return Response({"released": probe.release.wait(WAIT)})

    def ordinary(request: Request[Context]) -> Response:
        return Response({"ok": True})

    return Group(
        title="test",
        routes=(
            Route("POST", "/v1/test/echo", echo, quick=True),
            Route("GET", "/v1/test/block", block, quick=True),
            Route("GET", "/v1/test/ordinary", ordinary),
        ),
    )


@pytest.fixture
def probe() -> Iterator[Probe]:
    probe = Probe()
    yield probe
    probe.release.set()


@pytest.fixture
def handle(make_server: ServerFactory, probe: Probe) -> ServerHandle:
    return make_server(groups=(*GROUPS, _group(probe)))


@pytest.fixture
def base_url(handle: ServerHandle) -> str:
    return handle.base_url


@pytest.mark.parametrize("latency_ms", [0, 1], ids=["loop", "threads"])
def test_quick_handlers_see_whole_bodies_and_never_overlap(
    handle: ServerHandle, base_url: str, probe: Probe, latency_ms: int
) -> None:
    # Without latency the loop serves these; with it every connection has its own thread.
    handle.faults.latency_ms = latency_ms
    sizes = [0, 1, 1000, QUICK_BODY_LIMIT]
    failures: list[str] = []

    def client(worker: int) -> None:
        with httpx.Client(base_url=base_url, headers=AUTH, timeout=WAIT) as c:
            for n in range(20):
                size = sizes[(worker + n) % len(sizes)]
                got = c.post("/test/echo", content=b"x" * size)
                if got.status_code != 200 or got.json()["length"] != size:
                    failures.append(f"{size}: {got.status_code} {got.text[:100]}")

    threads = [threading.Thread(target=client, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert probe.most_inside == 1  # the turns never overlapped


def test_a_body_too_large_to_read_first_still_reaches_a_quick_handler(base_url: str) -> None:
    with httpx.Client(base_url=base_url, headers=AUTH, timeout=WAIT) as c:
        got = c.post("/test/echo", content=b"x" * (QUICK_BODY_LIMIT + 1))
        assert got.status_code == 200
        assert got.json()["length"] == QUICK_BODY_LIMIT + 1


def test_a_short_body_is_still_a_400_on_a_quick_route(base_url: str) -> None:
    host, port = base_url.removeprefix("http://").removesuffix("/v1").split(":")
    raw = (
        b"POST /v1/test/echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n"
        b"Content-Length: 100\r\n\r\n" + b"x" * 10
    )
    with socket.create_connection((host, int(port)), timeout=WAIT) as sock:
        sock.sendall(raw)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert b"The request body ended before its Content-Length." in answer


def test_a_chunked_body_on_a_quick_route_is_read_as_it_comes(base_url: str) -> None:
    with httpx.Client(base_url=base_url, headers=AUTH, timeout=WAIT) as c:
        got = c.post("/test/echo", content=iter([b"ab", b"cde"]))  # no length: chunked
        assert got.status_code == 200
        assert got.json()["length"] == 5


def test_a_quick_handler_that_waits_holds_the_others_only_for_a_while(
    handle: ServerHandle, base_url: str, probe: Probe
) -> None:
    # With injected latency every connection has a thread of its own, and quick handlers
    # take turns (on the connection loop a handler that waits holds the loop: see Route).
    handle.faults.latency_ms = 1
    results: list[int] = []

    def blocked() -> None:
        with httpx.Client(base_url=base_url, headers=AUTH, timeout=WAIT) as c:
            results.append(c.get("/test/block").status_code)

    holder = threading.Thread(target=blocked)
    holder.start()
    try:
        assert probe.blocking.wait(WAIT)
        with httpx.Client(base_url=base_url, headers=AUTH, timeout=WAIT) as c:
            # An ordinary route does not take turns; a quick one runs after its wait.
            assert c.get("/test/ordinary").status_code == 200
            assert c.post("/test/echo", content=b"abc").json()["length"] == 3
    finally:
        probe.release.set()
        holder.join()
    assert results == [200]
