"""What goes on the wire from the CLI's environment: the key, the optional organization and
project headers, and the beta header only where the API wants it.

A recording stand-in answers the two listing calls a plan makes; the embedded server does not
expose request headers, and this test is about what the CLI sends, not what a server does.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import ClassVar

import pytest
from e2ekit import API_KEY, Project, StubServer, stub_server

from assistsync.server import ServerHandle

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


# ------------------------------------------------------------------------ odd keys

ODD = "sk-odd-key-0123456789abcdefXYZ"
ODD_KEYS = {
    "a line break": ODD[:14] + "\n" + ODD[14:],
    "a non-ASCII character": ODD[:14] + "é" + ODD[14:],
    "a control character": ODD[:14] + "\x01" + ODD[14:],
    "whitespace": ODD[:14] + " " + ODD[14:],
    "bytes that are not valid UTF-8": ODD[:14] + "\udcff" + ODD[14:],  # b"\xff" in the env
}


def key_forms(key: str) -> set[str]:
    """Every way a key could show up in text: raw, escaped, repr'd, its start, its parts."""
    raw = key.encode("utf-8", "surrogateescape")
    forms = {
        key,
        repr(key)[1:-1],
        ascii(key)[1:-1],
        repr(raw)[2:-1],
        json.dumps(key)[1:-1],
        raw.decode("utf-8", "replace"),
        key[:12],
    }
    forms |= {part for part in re.split(r"[\s\x00-\x1f\x7f\x80-\U0010ffff]", key) if len(part) >= 8}
    return forms


def run_cli(root: Path, base_url: str, key: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI with ``key`` in its environment; tracebacks allowed (``--debug``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env.update({"OPENAI_BASE_URL": base_url, "OPENAI_API_KEY": key, "NO_COLOR": "1"})
    return subprocess.run(
        [sys.executable, "-m", "assistsync", "-C", str(root), *args],
        capture_output=True,
        text=True,
        errors="backslashreplace",
        env=env,
        timeout=120,
        check=False,
    )


def assert_never_shown(key: str, text: str) -> None:
    for form in key_forms(key):
        assert form not in text, f"the key leaked as {form!r}"


@pytest.mark.parametrize("what", sorted(ODD_KEYS))
def test_an_odd_key_is_refused_before_any_request_and_never_shown(
    tmp_path: Path, server: ServerHandle, what: str
) -> None:
    key = ODD_KEYS[what]
    p = Project(tmp_path / "p", server)
    p.write("assistsync.yaml", "manifests: [a.yaml]\n")
    p.write("a.yaml", "assistants:\n  x:\n    model: gpt-4\n")
    for args in (["plan"], ["--debug", "plan"], ["apply", "--auto-approve", "--debug"]):
        result = run_cli(p.root, server.base_url, key, *args)
        assert result.returncode == 1, result.stderr
        assert f"OPENAI_API_KEY is not a usable API key: it contains {what}" in result.stderr
        assert "internal error" not in result.stderr
        assert_never_shown(key, result.stdout + result.stderr)
    assert server.stats.requests == 0, "a request was sent with a key that cannot be sent"


class Echo(BaseHTTPRequestHandler):
    """A misbehaving proxy: rejects the key and quotes it back, whole, cut short and repr'd."""

    def do_GET(self) -> None:
        token = self.headers.get("Authorization", "").removeprefix("Bearer ")
        message = f"invalid key {token}; key starts {token[:16]}…; got {token.encode()!r}"
        body = json.dumps({"error": {"message": message, "type": "invalid_request_error"}})
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_key_quoted_back_by_the_server_is_redacted_in_every_form(tmp_path: Path) -> None:
    with stub_server(Echo) as echo:
        p = Project(tmp_path / "p", echo)
        p.write("assistsync.yaml", "manifests: [a.yaml]\n")
        p.write("a.yaml", "assistants:\n  x:\n    model: gpt-4\n")
        for args in (["plan"], ["--debug", "plan"]):
            result = run_cli(p.root, echo.base_url, API_KEY, *args)
            assert result.returncode == 1, result.stderr
            assert "the API rejected the key" in result.stderr
            assert "<api key>" in result.stderr
            assert_never_shown(API_KEY, result.stdout + result.stderr)


def test_an_organization_id_that_cannot_be_sent_is_named(
    tmp_path: Path, recorder: StubServer
) -> None:
    p = Project(tmp_path / "p", recorder)
    p.write("assistsync.yaml", "manifests: [a.yaml]\n")
    p.write("a.yaml", "assistants:\n  x:\n    model: gpt-4\n")
    result = p.run("plan", env={"OPENAI_ORG_ID": "org-é"})
    assert result.code == 1, result.all
    assert "OPENAI_ORG_ID is not a usable id: it contains a non-ASCII character" in result.err
    assert Recorder.seen == []


def test_debug_logging_scrubs_the_key_from_every_record() -> None:
    """The last line of defence: whatever a library logs under ``--debug`` is scrubbed."""
    script = (
        "import logging, os\n"
        "from assistsync.cli.context import enable_debug\n"
        "enable_debug(); enable_debug()\n"
        "key = os.environ['OPENAI_API_KEY']\n"
        "logging.getLogger('httpx').info('sent %s and %r', key, key.encode())\n"
        "try:\n"
        "    raise ValueError(key[:20])\n"
        "except ValueError:\n"
        "    logging.getLogger('x').exception('failed')\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**env, "OPENAI_API_KEY": API_KEY},
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("debug: sent <api key> and b'<api key>'") == 1  # one handler
    assert "ValueError: <api key>" in proc.stderr
    assert_never_shown(API_KEY, proc.stdout + proc.stderr)
