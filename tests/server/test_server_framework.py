"""The framework layer on its own: streamed responses, handlers that wait, the route table.

A test group with its own routes runs next to the real ones (``start_server(groups=...)``),
so these exercise the real HTTP server over loopback.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import httpx
import pytest
from click.testing import CliRunner
from server_testkit import AUTH, ServerFactory

from assistsync.server.command import server_command
from assistsync.server.framework.routing import (
    Request,
    Response,
    Route,
    Router,
    event_stream,
    sse_event,
)
from assistsync.server.group import Context, Group
from assistsync.server.routes import GROUPS, ROUTES

WAIT = 10  # seconds: only ever reached when a test is about to fail


class Probe:
    """Events the test group's handlers and the test share."""

    def __init__(self) -> None:
        self.go_on = threading.Event()
        self.closed_early = threading.Event()
        self.finished = threading.Event()
        self.waiting = threading.Event()

    def events(self) -> Iterator[bytes]:
        yield b"event: first\ndata: 1\n\n"
        # The client has read the first event before this one is produced: each chunk is
        # flushed as it is yielded, not buffered until the end.
        assert self.go_on.wait(WAIT)
        yield b"event: second\ndata: 2\n\n"
        yield b"data: [DONE]\n\n"

    def endless(self) -> Iterator[bytes]:
        try:
            yield b"data: 0\n\n"
            assert self.go_on.wait(WAIT)
            for n in range(100_000):
                yield f"data: {n}\n\n".encode()
        except GeneratorExit:
            self.closed_early.set()
            raise
        finally:
            self.finished.set()

    def broken(self) -> Iterator[bytes]:
        yield b"data: 0\n\n"
        raise RuntimeError("the producer broke")


def _group(probe: Probe) -> Group:
    def stream(request: Request[Context]) -> Response:
        return event_stream(probe.events())

    def endless(request: Request[Context]) -> Response:
        return event_stream(probe.endless())

    def broken(request: Request[Context]) -> Response:
        return event_stream(probe.broken())

    def wait(request: Request[Context]) -> Response:
        probe.waiting.set()
        return Response({"released": probe.go_on.wait(WAIT)})

    return Group(
        title="test",
        routes=(
            Route("GET", "/v1/test/stream", stream),
            Route("GET", "/v1/test/endless", endless),
            Route("GET", "/v1/test/broken", broken),
            Route("GET", "/v1/test/wait", wait),
        ),
    )


@pytest.fixture
def probe() -> Probe:
    return Probe()


@pytest.fixture
def lines() -> list[str]:
    return []


@pytest.fixture
def base_url(make_server: ServerFactory, probe: Probe, lines: list[str]) -> str:
    return make_server(groups=(*GROUPS, _group(probe)), log=lines.append).base_url


def test_a_stream_is_flushed_chunk_by_chunk_and_keeps_the_connection(
    base_url: str, probe: Probe
) -> None:
    with httpx.Client(base_url=base_url, headers=AUTH, timeout=WAIT) as c:
        with c.stream("GET", "/test/stream") as response:
            assert response.status_code == 200
            assert response.headers["content-type"] == "text/event-stream"
            assert response.headers["transfer-encoding"] == "chunked"
            assert "content-length" not in response.headers
            chunks = response.iter_raw()
            assert next(chunks) == b"event: first\ndata: 1\n\n"
            probe.go_on.set()
            rest = b"".join(chunks)
        assert rest == b"event: second\ndata: 2\n\ndata: [DONE]\n\n"
        # The same pooled connection serves the next request.
        assert c.get("/files").status_code == 200


def test_keep_alive_after_a_stream_on_one_socket(base_url: str, probe: Probe) -> None:
    probe.go_on.set()
    host, port = base_url.removeprefix("http://").removesuffix("/v1").split(":")
    request = b"GET /v1/test/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n\r\n"
    with socket.create_connection((host, int(port)), timeout=WAIT) as sock:
        sock.sendall(request)
        received = b""
        while not received.endswith(b"0\r\n\r\n"):
            chunk = sock.recv(65536)
            assert chunk, received  # the server must not close the connection
            received += chunk
        assert received.startswith(b"HTTP/1.1 200 ")
        sock.sendall(b"GET /v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")


def test_a_client_that_goes_away_closes_the_stream(base_url: str, probe: Probe) -> None:
    with (
        httpx.Client(base_url=base_url, headers=AUTH, timeout=WAIT) as c,
        c.stream("GET", "/test/endless") as response,
    ):
        assert next(response.iter_raw()) == b"data: 0\n\n"
    # Leaving the block closed the connection mid-stream.
    probe.go_on.set()
    assert probe.finished.wait(WAIT)
    assert probe.closed_early.is_set()


def test_a_producer_that_fails_truncates_the_stream_and_is_logged(
    base_url: str, lines: list[str]
) -> None:
    with httpx.Client(base_url=base_url, headers=AUTH, timeout=WAIT) as c:
        with pytest.raises(httpx.RemoteProtocolError):
            c.get("/test/broken")
        assert c.get("/files").status_code == 200  # the server carries on
    assert any("RuntimeError: the producer broke" in line for line in lines)


def test_a_waiting_handler_does_not_block_other_requests(base_url: str, probe: Probe) -> None:
    answers: list[httpx.Response] = []

    def wait() -> None:
        with httpx.Client(base_url=base_url, headers=AUTH, timeout=WAIT) as c:
            answers.append(c.get("/test/wait"))

    waiter = threading.Thread(target=wait)
    waiter.start()
    assert probe.waiting.wait(WAIT)
    with httpx.Client(base_url=base_url, headers=AUTH, timeout=WAIT) as c:
        for _ in range(5):
            assert c.get("/files").status_code == 200
    assert not answers  # still waiting while the others were served
    probe.go_on.set()
    waiter.join(WAIT)
    assert answers[0].json() == {"released": True}


def test_two_routes_for_one_operation_are_refused() -> None:
    route = ROUTES[0]
    with pytest.raises(ValueError, match="two routes"):
        Router([route, route])


def test_help_lists_every_group_and_route_of_the_table() -> None:
    output = CliRunner().invoke(server_command, ["--help"]).output
    for group in GROUPS:
        assert f"  {group.title} " in output, group.title
    for route in ROUTES:
        assert route.template in output, route.key


def test_a_literal_segment_beats_a_parameter_whatever_the_order() -> None:
    def handler(request: Request[Context]) -> Response:
        return Response()

    by_id = Route("POST", "/v1/things/{thing_id}", handler)
    literal = Route("POST", "/v1/things/runs", handler)
    for table in ([by_id, literal], [literal, by_id]):
        router = Router(table)
        assert router.match("POST", "/v1/things/runs").route is literal
        match = router.match("POST", "/v1/things/t1")
        assert (match.route, match.params) == (by_id, {"thing_id": "t1"})


def test_an_http_1_0_client_gets_the_stream_until_the_connection_closes(
    base_url: str, probe: Probe
) -> None:
    probe.go_on.set()
    host, port = base_url.removeprefix("http://").removesuffix("/v1").split(":")
    with socket.create_connection((host, int(port)), timeout=WAIT) as sock:
        sock.sendall(b"GET /v1/test/stream HTTP/1.0\r\nAuthorization: Bearer k\r\n\r\n")
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"transfer-encoding" not in head.lower()
    assert b"connection: close" in head.lower()
    assert body == b"event: first\ndata: 1\n\nevent: second\ndata: 2\n\ndata: [DONE]\n\n"


def test_sse_event_framing() -> None:
    assert sse_event("thread.run.created", '{"id":"run_1"}') == (
        b'event: thread.run.created\ndata: {"id":"run_1"}\n\n'
    )
    assert sse_event("done", "[DONE]") == b"event: done\ndata: [DONE]\n\n"
    assert sse_event("x", "a\nb") == b"event: x\ndata: a\ndata: b\n\n"
