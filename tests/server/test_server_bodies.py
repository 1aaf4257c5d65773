"""Request bodies a client gets wrong in ways no schema describes: nesting and stalling.

Nested too deeply, every JSON endpoint answers a 400 (which the SDK does not retry), never a
500. A client that sends less than its Content-Length loses its connection after the body
idle timeout, not the five-minute keep-alive one (the test starts its server with a short one;
the wait is the server's, with the client's socket timeout only as a safety net).
"""

from __future__ import annotations

import socket

import httpx
import pytest
from server_testkit import AUTH, BETA, ServerFactory, checked_client, create_assistant

from assistsync.server import ServerHandle

DEEP = 100_000

JSON_ENDPOINTS = [
    "/assistants",
    "/assistants/{assistant}",
    "/assistants/{assistant}/files",
    "/threads",
    "/threads/{thread}",
    "/threads/{thread}/messages",
    "/threads/{thread}/messages/{message}",
    "/threads/{thread}/runs",
    "/threads/runs",
    "/threads/{thread}/runs/{run}",
    "/threads/{thread}/runs/{run}/submit_tool_outputs",
]


@pytest.mark.parametrize("path", JSON_ENDPOINTS)
def test_deeply_nested_json_is_a_400_everywhere(server: ServerHandle, path: str) -> None:
    with checked_client(server) as client:
        assistant = create_assistant(client)["id"]
        thread = client.post(
            "/threads", json={"messages": [{"role": "user", "content": "hi"}]}
        ).json()["id"]
        message = client.get(f"/threads/{thread}/messages").json()["data"][0]["id"]
        run = client.post(f"/threads/{thread}/runs", json={"assistant_id": assistant})
        assert run.status_code == 200, run.text
        url = path.format(assistant=assistant, thread=thread, message=message, run=run.json()["id"])
        body = b'{"metadata": ' + b"[" * DEEP + b"]" * DEEP + b"}"
        response = client.post(url, content=body, headers={"content-type": "application/json"})
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error"
        assert "nested too deeply" in error["message"]
        # The connection and the server are fine afterwards.
        assert client.get(f"/threads/{thread}").status_code == 200


def _connect(server: ServerHandle) -> socket.socket:
    host, port = server.base_url.split("//")[1].split("/")[0].split(":")
    return socket.create_connection((host, int(port)), timeout=30)


def _request(body: bytes, length: int) -> bytes:
    headers = {**AUTH, **BETA, "Content-Type": "application/json", "Host": "x"}
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return f"POST /v1/threads HTTP/1.1\r\n{head}Content-Length: {length}\r\n\r\n".encode() + body


def _read_until_closed(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_a_stalled_body_is_dropped_after_the_body_idle_timeout(
    make_server: ServerFactory,
) -> None:
    lines: list[str] = []
    server = make_server(body_idle_timeout_s=0.2, log=lines.append)
    with _connect(server) as sock:
        # 2 bytes of the 100 promised, then nothing (the socket stays open).
        sock.sendall(_request(b"{}", 100))
        # The server closes the connection (recv sees the end) long before the client's
        # 30 s safety net; with the keep-alive timeout it would hold it for 300 s.
        assert _read_until_closed(sock) == b""
    server.stop()
    assert any("POST /v1/threads" in line and "client disconnected" in line for line in lines)


def test_a_whole_body_still_gets_its_answer_and_the_connection_stays(
    make_server: ServerFactory,
) -> None:
    server = make_server(body_idle_timeout_s=0.2)
    with _connect(server) as sock:
        for _ in range(2):  # the same keep-alive connection serves both
            sock.sendall(_request(b"{}", 2))
            head = b""
            while b"\r\n\r\n" not in head:
                head += sock.recv(65536)
            assert head.startswith(b"HTTP/1.1 200 ")
            assert b"connection: close" not in head.lower()
    with httpx.Client(base_url=server.base_url, headers={**AUTH, **BETA}) as client:
        assert client.get("/threads/thread_x").status_code == 404
