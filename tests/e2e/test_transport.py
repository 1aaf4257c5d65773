"""How calls reach the server: straight to httpx's transport when no proxy is configured (the
same request ``httpx.Client`` would send, logged as it logged it), through ``httpx.Client``
and the proxy it picks when one is, over real sockets."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import ClassVar

import pytest
from e2ekit import stub_server

from assistsync.api import ApiClient
from assistsync.server import start_server

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


class _Proxy(BaseHTTPRequestHandler):
    """A plain HTTP proxy that answers every request itself with an empty file list and
    records the request line it got (a proxy is sent the absolute URL)."""

    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.seen.append(self.requestline)
        body = json.dumps({"object": "list", "data": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY"])
def test_a_proxy_from_the_environment_is_used(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    _no_proxies(monkeypatch)
    _Proxy.seen = []
    with stub_server(_Proxy) as proxy:
        monkeypatch.setenv(variable, proxy.base_url.removesuffix("/v1"))
        with ApiClient("http://api.example.invalid/v1", "sk-test") as client:
            assert client.list_files() == []
    assert _Proxy.seen == ["GET http://api.example.invalid/v1/files?purpose=assistants HTTP/1.1"]


def test_without_a_proxy_calls_go_to_the_server_and_are_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _no_proxies(monkeypatch)
    with (
        start_server(port=0) as server,
        ApiClient(server.base_url, "sk-test") as client,
        caplog.at_level("INFO"),
    ):
        created = client.create_assistant({"model": "gpt-4", "name": "x"})
        assert client.get_assistant(created.id).name == "x"
        assert [a.id for a in client.list_assistants()] == [created.id]
        client.delete_assistant(created.id)
        client.delete_assistant(created.id)  # a 404: already gone
        assert server.stats.requests == 5
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("HTTP Request")]
    assert len(lines) == 5  # --debug shows every call, as httpx's own line did
    assert lines[0] == f'HTTP Request: POST {server.base_url}/assistants "HTTP/1.1 200 OK"'
    assert lines[-1].endswith('"HTTP/1.1 404 Not Found"')
