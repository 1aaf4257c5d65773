"""The HTTP surface: auth, the beta header, routing, framing, keep-alive and robustness."""

from __future__ import annotations

import socket
from dataclasses import replace
from typing import Any

import httpx
import pytest
from server_testkit import (
    AUTH,
    BETA,
    REQUEST_ID,
    ServerFactory,
    assert_error_envelope,
    checked_client,
    create_assistant,
)

from assistsync.server import ServerHandle, start_server
from assistsync.server.framework.routing import Request, Response
from assistsync.server.group import Context
from assistsync.server.routes import GROUPS


def test_base_url_and_port_zero(server: ServerHandle) -> None:
    assert server.base_url.startswith("http://127.0.0.1:")
    assert server.base_url.endswith("/v1")
    assert int(server.base_url.split(":")[2].split("/")[0]) > 0


def test_missing_authorization_is_401(server: ServerHandle) -> None:
    with checked_client(server) as c:
        for headers in (
            {"Authorization": ""},
            {"Authorization": "Bearer"},
            {"Authorization": "Basic abc"},
        ):
            response = c.get("/files", headers=headers)
            assert response.status_code == 401
            message = response.json()["error"]["message"]
            assert message.startswith("You didn't provide an API key.")
            assert "Authorization: Bearer YOUR_KEY" in message


def test_any_non_empty_key_is_accepted_by_default(server: ServerHandle) -> None:
    with checked_client(server, headers={"Authorization": "Bearer whatever"}) as c:
        assert c.get("/assistants").status_code == 200


def test_configured_key_is_required_and_never_echoed(make_server: ServerFactory) -> None:
    key = "sk-proj-correct-key-0000"
    handle = make_server(api_key=key)
    wrong = "sk-wrong-secret-key-abcd"
    with checked_client(handle, headers={"Authorization": f"Bearer {wrong}"}) as c:
        response = c.get("/files")
        assert response.status_code == 401
        error = response.json()["error"]
        assert error["code"] == "invalid_api_key"
        assert error["type"] == "invalid_request_error"
        assert error["message"].startswith("Incorrect API key provided: sk-")
        assert "abcd." in error["message"]
        assert wrong not in error["message"]
        assert "secret" not in error["message"]
        assert key not in error["message"]
    with checked_client(handle, headers={"Authorization": f"Bearer {key}"}) as c:
        assert c.get("/files").status_code == 200


def test_assistants_need_the_beta_header(server: ServerHandle) -> None:
    with checked_client(server, headers={"OpenAI-Beta": ""}) as c:
        for method, path in [("GET", "/assistants"), ("POST", "/assistants"),
                             ("GET", "/assistants/asst_x/files")]:  # fmt: skip
            response = c.request(method, path, json={"model": "m"} if method == "POST" else None)
            assert response.status_code == 400
            assert response.json()["error"]["message"] == (
                "You must provide the 'OpenAI-Beta' header to access the Assistants API. Please "
                "try again by setting the header 'OpenAI-Beta: assistants=v1'."
            )
        assert c.get("/assistants").status_code == 400
    with checked_client(server, headers={"OpenAI-Beta": "assistants=v2"}) as c:
        response = c.get("/assistants")
        assert response.status_code == 400
        assert "assistants=v1" in response.json()["error"]["message"]
    with checked_client(server, headers={"OpenAI-Beta": "other=1, assistants=v1"}) as c:
        assert c.get("/assistants").status_code == 200


@pytest.mark.parametrize(
    "path", ["/nope", "/assistants/asst_1/files/file_1/extra", "/vector_stores", "/assistants/"]
)
def test_unknown_route_is_404(client: httpx.Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.json()["error"]["message"] == f"Invalid URL (GET /v1{path})"


def test_outside_v1_is_404(server: ServerHandle) -> None:
    with checked_client(server) as c:
        response = c.get(server.base_url.removesuffix("/v1") + "/assistants")
        assert response.status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/assistants", "GET, POST"),
        ("DELETE", "/assistants", "GET, POST"),
        ("PATCH", "/assistants/asst_1", "GET, POST, DELETE"),
        ("POST", "/assistants/asst_1/files/file-1", "GET, DELETE"),
        ("POST", "/files/file-1/content", "GET"),
        ("PUT", "/files", "GET, POST"),
    ],
)
def test_wrong_method_is_405(client: httpx.Client, method: str, path: str, allowed: str) -> None:
    response = client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allowed


def test_head_gets_headers_only(client: httpx.Client) -> None:
    response = client.head("/files")
    assert response.status_code == 405
    assert response.content == b""


def test_request_ids_are_unique(client: httpx.Client) -> None:
    ids = {client.get("/files").headers["x-request-id"] for _ in range(20)}
    assert len(ids) == 20


def test_keep_alive_reuses_one_connection(server: ServerHandle) -> None:
    ports: set[int] = set()
    with checked_client(server) as c:
        for _ in range(5):
            response = c.get("/files")
            stream: Any = response.extensions["network_stream"]
            ports.add(stream.get_extra_info("client_addr")[1])
        # Errors too must leave the connection usable.
        assert c.get("/nope").status_code == 404
        assert c.post("/assistants", json={"bad": 1}).status_code == 400
        stream = c.get("/files").extensions["network_stream"]
        ports.add(stream.get_extra_info("client_addr")[1])
    assert len(ports) == 1


def _raw(server: ServerHandle, data: bytes) -> bytes:
    """Send raw bytes, half-close, and read everything the server answers."""
    host, port = server.base_url.split("//")[1].split("/")[0].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _status_and_body(raw: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert REQUEST_ID.search(head.decode("latin-1"))
    wrapped = httpx.Response(status, content=body, headers={"content-type": "application/json"})
    return status, assert_error_envelope(wrapped)


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET /v1/files HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400),
        (b"GET /v1/files HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        (b"BREW /v1/files HTTP/1.1\r\nHost: x\r\n\r\n", 501),
        (
            b"POST /v1/assistants HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n"
            b"OpenAI-Beta: assistants=v1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n{}",
            400,
        ),
    ],
    ids=["request-line", "content-length", "transfer-encoding", "method", "short-body"],
)
def test_malformed_http_gets_an_error_envelope(
    server: ServerHandle, raw: bytes, status: int
) -> None:
    got, _ = _status_and_body(_raw(server, raw))
    assert got == status


def test_chunked_json_body(server: ServerHandle) -> None:
    body = b'{"model": "gpt-4", "name": "chunky"}'
    raw = (
        b"POST /v1/assistants HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n"
        b"OpenAI-Beta: assistants=v1\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        + f"{len(body[:10]):x}\r\n".encode() + body[:10] + b"\r\n"
        + f"{len(body[10:]):x}\r\n".encode() + body[10:] + b"\r\n0\r\n\r\n"
    )  # fmt: skip
    answer = _raw(server, raw)
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert b'"name":"chunky"' in answer


def test_unexpected_exception_is_a_logged_500(make_server: ServerFactory) -> None:
    lines: list[str] = []

    def broken(request: Request[Context]) -> Response:
        raise RuntimeError(f"storage exploded on {request.params['file_id']}")

    # Simulates a server bug (a handler that raises); the point is what the client sees and
    # what gets logged.
    groups = [
        replace(
            group,
            routes=tuple(
                replace(route, handler=broken) if route.key == "GET /v1/files/{file_id}" else route
                for route in group.routes
            ),
        )
        for group in GROUPS
    ]
    handle = make_server(log=lines.append, groups=groups)
    with checked_client(handle) as c:
        response = c.get("/files/file-abc")
        assert response.status_code == 500
        error = response.json()["error"]
        assert error["type"] == "server_error"
        assert response.headers["x-request-id"] in error["message"]
        assert "exploded" not in error["message"]
        assert c.get("/files").status_code == 200  # the server carries on
    assert any("RuntimeError: storage exploded on file-abc" in line for line in lines)


def test_log_has_one_line_per_request(make_server: ServerFactory) -> None:
    lines: list[str] = []
    handle = make_server(log=lines.append)
    with checked_client(handle) as c:
        c.get("/files")
        c.get("/assistants", params={"limit": 0})
    # A line is written once its response is sent, so the client can see the response first;
    # stop() waits for every handler, after which the log is complete.
    handle.stop()
    assert len(lines) == 2
    method, path, status, ms = lines[0].split(" ")
    assert (method, path, status) == ("GET", "/v1/files", "200")
    assert ms.endswith("ms")
    assert float(ms.removesuffix("ms")) >= 0
    assert lines[1].startswith("GET /v1/assistants?limit=0 400 ")


def test_stop_closes_idle_keep_alive_connections_and_is_idempotent() -> None:
    handle = start_server(port=0)
    with checked_client(handle) as c:
        create_assistant(c)
        handle.stop()  # with c's pooled connection still open
        handle.stop()
        with pytest.raises(httpx.TransportError):
            c.get("/assistants")


def test_server_is_a_context_manager() -> None:
    with start_server() as handle, httpx.Client(headers={**AUTH, **BETA}) as c:
        assert c.get(handle.base_url + "/files").status_code == 200
    with pytest.raises(httpx.TransportError), httpx.Client() as c:
        c.get(handle.base_url + "/files")


def test_start_server_rejects_an_empty_api_key() -> None:
    with pytest.raises(ValueError, match="api_key"):
        start_server(api_key="")
