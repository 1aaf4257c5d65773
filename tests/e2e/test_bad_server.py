"""A server that answers nonsense gets one clear error from the CLI, never a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import ClassVar

import pytest
from e2ekit import Project, StubServer, stub_server

BODIES = {
    "not json": (200, "text/html", b"<html>bad gateway</html>"),
    "wrong shape": (200, "application/json", b'{"object": "list", "data": [{"id": 1}]}'),
    "a list": (200, "application/json", b"[1, 2, 3]"),
    "html error": (502, "text/html", b"<html><h1>502 Bad Gateway</h1></html>"),
    "truncated": (200, "application/json", b'{"object": "list", "data": [{"id": "asst_'),
}


class Nonsense(BaseHTTPRequestHandler):
    answer: ClassVar[tuple[int, str, bytes]] = BODIES["not json"]

    def do_GET(self) -> None:
        status, kind, body = Nonsense.answer
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def nonsense() -> Iterator[StubServer]:
    with stub_server(Nonsense) as server:
        yield server


@pytest.mark.parametrize("case", sorted(BODIES))
def test_nonsense_is_one_clear_error(tmp_path: Path, nonsense: StubServer, case: str) -> None:
    Nonsense.answer = BODIES[case]
    p = Project(tmp_path / "p", nonsense)
    p.write("assistsync.yaml", "manifests: [a.yaml]\n")
    p.write("a.yaml", "assistants:\n  x:\n    model: gpt-4\n")
    result = p.run("plan")  # Project.run fails the test on any traceback
    assert result.code == 1, result.all
    (line,) = [x for x in result.err.splitlines() if x.startswith("Error:")]
    assert "/v1/" in line  # says which call
    assert nonsense.base_url.removesuffix("/v1") in line or "HTTP 502" in line


def test_a_base_url_without_v1_gets_a_did_you_mean(tmp_path: Path) -> None:
    from assistsync.server import start_server

    with start_server(port=0) as server:
        root_url = server.base_url.removesuffix("/v1")
        p = Project(tmp_path / "p", server)
        p.write("assistsync.yaml", "manifests: [a.yaml]\n")
        p.write("a.yaml", "assistants:\n  x:\n    model: gpt-4\n")
        result = p.run("plan", env={"OPENAI_BASE_URL": root_url})
        assert result.code == 1, result.all
        (line,) = [x for x in result.err.splitlines() if x.startswith("Error:")]
        assert "HTTP 404" in line
        assert f"Did you mean OPENAI_BASE_URL={root_url}/v1?" in line
        # with /v1 the same server plans fine, and a 404 there gets no such hint
        assert p.run("plan").code == 0
