"""End-to-end kit: the real CLI (a subprocess) against the real embedded server on loopback.

Results are read back through the API with a plain httpx client, never through assistsync's
own client, so a misunderstanding shared by our client and our CLI cannot hide.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol

import httpx

API_KEY = "sk-e2e-secret-0123456789abcdef"


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def all(self) -> str:
        return self.out + self.err


def cli_env(base_url: str | None = None) -> dict[str, str]:
    """The environment the CLI runs in: none of the developer's ``OPENAI_*``, no colour; with
    ``base_url``, the endpoint and the test key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env["NO_COLOR"] = "1"
    if base_url is not None:
        env.update({"OPENAI_BASE_URL": base_url, "OPENAI_API_KEY": API_KEY})
    return env


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m assistsync ARGS`` in ``cwd`` as a user types it (no endpoint configured)."""
    return subprocess.run(
        [sys.executable, "-m", "assistsync", *args],
        capture_output=True,
        text=True,
        env=cli_env(),
        cwd=cwd,
        timeout=120,
        check=False,
    )


class Api:
    """Reads (and, to simulate other people, writes) the server directly over HTTP."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {API_KEY}", "OpenAI-Beta": "assistants=v1"},
        )

    def assistants(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        after = None
        while True:
            params: dict[str, Any] = {"limit": 100, "order": "asc"}
            if after:
                params["after"] = after
            page = self.http.get("/assistants", params=params).raise_for_status().json()
            out += page["data"]
            if not page["has_more"]:
                return out
            after = page["last_id"]

    def by_key(self) -> dict[str, dict[str, Any]]:
        return {
            a["metadata"]["assistsync_key"]: a
            for a in self.assistants()
            if "assistsync_key" in a["metadata"]
        }

    def files(self) -> list[dict[str, Any]]:
        return list(
            self.http.get("/files", params={"purpose": "assistants"})
            .raise_for_status()
            .json()["data"]
        )

    def content(self, file_id: str) -> bytes:
        return self.http.get(f"/files/{file_id}/content").raise_for_status().content

    def modify(self, assistant_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return dict(
            self.http.post(f"/assistants/{assistant_id}", json=body).raise_for_status().json()
        )

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self.http.post("/assistants", json=body).raise_for_status().json())


class Endpoint(Protocol):
    """Anything with a base URL the CLI can be pointed at (the embedded server, a stub)."""

    @property
    def base_url(self) -> str: ...


class StubServer:
    """A tiny stdlib server on loopback answering with ``handler``: for what the embedded server
    cannot do on purpose (record request headers, answer nonsense)."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def stub_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[StubServer]:
    """A ``StubServer`` for the duration of a ``with`` block."""
    server = StubServer(handler)
    try:
        yield server
    finally:
        server.close()


class Project:
    """A project directory and the CLI pointed at one server."""

    def __init__(self, root: Path, server: Endpoint) -> None:
        self.root = root
        self.server = server

    def write(self, rel: str, text: str) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    def run(
        self, *args: str, env: dict[str, str] | None = None, stdin: str | None = None
    ) -> Result:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
        full_env.update(
            {
                "OPENAI_BASE_URL": self.server.base_url,
                "OPENAI_API_KEY": API_KEY,
                "NO_COLOR": "1",
            }
        )
        full_env.update(env or {})
        proc = subprocess.run(
            [sys.executable, "-m", "assistsync", "-C", str(self.root), *args],
            input=stdin or "",
            capture_output=True,
            text=True,
            env=full_env,
            timeout=120,
            check=False,
        )
        for text in (proc.stdout, proc.stderr):
            assert API_KEY not in text, "the API key leaked into output"
            assert "Traceback" not in text, text
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def lock(self) -> dict[str, Any]:
        text = (self.root / "assistsync.lock").read_text(encoding="utf-8")
        assert API_KEY not in text
        return dict(json.loads(text))
