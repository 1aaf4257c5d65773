"""What goes on the wire from the CLI's environment: the key, the optional organization and
project headers, and the beta header only where the API wants it.

A recording stand-in answers the two listing calls a plan makes; the embedded server does not
expose request headers, and this test is about what the CLI sends, not what a server does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import ClassVar

import pytest
from e2ekit import API_KEY, Project, StubServer, stub_server

EMPTY_LIST = {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}


class Recorder(BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, dict[str, str]]]] = []

    def do_GET(self) -> None:
        Recorder.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
        body = json.dumps(EMPTY_LIST).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[StubServer]:
    Recorder.seen = []
    with stub_server(Recorder) as server:
        yield server


def plan_with(
    tmp_path: Path, recorder: StubServer, env: dict[str, str]
) -> dict[str, dict[str, str]]:
    p = Project(tmp_path / "p", recorder)
    p.write("assistsync.yaml", "manifests: [a.yaml]\n")
    p.write("a.yaml", "assistants:\n  x:\n    model: gpt-4\n")
    result = p.run("plan", env=env)
    assert result.code == 0, result.all
    return {path.split("?")[0]: headers for path, headers in Recorder.seen}


def test_key_org_project_and_beta_headers(tmp_path: Path, recorder: StubServer) -> None:
    seen = plan_with(tmp_path, recorder, {"OPENAI_ORG_ID": "org-42", "OPENAI_PROJECT_ID": "proj-7"})
    assert set(seen) == {"/v1/assistants", "/v1/files"}
    for headers in seen.values():
        assert headers["authorization"] == f"Bearer {API_KEY}"
        assert headers["openai-organization"] == "org-42"
        assert headers["openai-project"] == "proj-7"
    assert seen["/v1/assistants"]["openai-beta"] == "assistants=v1"
    assert "openai-beta" not in seen["/v1/files"]


def test_org_and_project_only_when_set(tmp_path: Path, recorder: StubServer) -> None:
    seen = plan_with(tmp_path, recorder, {})
    for headers in seen.values():
        assert "openai-organization" not in headers
        assert "openai-project" not in headers
