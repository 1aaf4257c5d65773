"""Helpers for the embedded server's tests: spec validation, checked clients, small actions.

Every response a :func:`checked_client` receives is checked on the way in:

- it carries an ``x-request-id`` and the right content type;
- an error (4xx/5xx) is exactly the ``{"error": {message, type, param, code}}`` envelope;
- with the published spec present (``../shared/spec`` beside the repo), a 2xx response body is
  validated against it by openapi-core, and so is the request that produced it (a 2xx to a
  request the spec rejects would mean the server accepts what the contract forbids).

Without the spec the behavioural checks still run; the spec-only tests skip with a reason.
(Test modules are named ``test_server_*`` and this one ``server_testkit`` so that they cannot
collide with other test directories' modules under pytest's default import mode.)
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_core import OpenAPI
from openapi_core.configurations import Config
from openapi_core.datatypes import RequestParameters
from openapi_core.validation.request.exceptions import RequestValidationError
from werkzeug.datastructures import Headers, ImmutableMultiDict

from assistsync.server import ServerHandle

SPEC_DIR = (Path(__file__).parents[2] / ".." / "shared" / "spec").resolve()
SPEC_FILE = SPEC_DIR / "assistants-v1.openapi.json"
SPEC_MISSING = f"the published spec is not available at {SPEC_FILE} (contract checks skipped)"
# The spec's only server is the hosted one; requests are matched against it by path.
SPEC_HOST = "https://api.openai.com"
AUTH = {"Authorization": "Bearer sk-test-key"}
BETA = {"OpenAI-Beta": "assistants=v1"}
REQUEST_ID = re.compile(r"req_[0-9a-f]{16,}")
REPO = Path(__file__).resolve().parents[2]
_LAUNCH = "from assistsync.server.command import server_command; server_command()"


def free_port() -> int:
    """A loopback port that was free a moment ago (for a server process started by a test)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_process(
    port: int, *options: str, env: dict[str, str] | None = None
) -> tuple[list[str], dict[str, str]]:
    """The argv and environment (this process's, with ``env`` on top) of ``assistsync server
    --port PORT OPTIONS`` from this checkout, in a process of its own (start it with
    ``cwd=REPO``)."""
    argv = [sys.executable, "-c", _LAUNCH, "--port", str(port), *options]
    return argv, {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}


def load_spec() -> OpenAPI | None:
    """The spec as an openapi-core validator, or None when it is absent."""
    if not SPEC_FILE.is_file():
        return None
    # The published spec fails its own self-check (a default beside minItems, a $ref with a
    # sibling nullable); the schemas themselves validate fine.
    return OpenAPI.from_dict(
        json.loads(SPEC_FILE.read_text()), config=Config(spec_validator_cls=None)
    )


SPEC = load_spec()


class SpecRequest:
    """An httpx request seen through openapi-core's ``Request`` protocol."""

    def __init__(self, request: httpx.Request) -> None:
        self.host_url = SPEC_HOST
        self.path = request.url.path
        self.method = request.method.lower()
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(list(request.url.params.multi_items())),
            header=Headers(list(request.headers.items())),
        )
        self.replayable = True
        try:
            self.body: bytes | None = request.read() or None
        except httpx.StreamConsumed:
            # A generator body was sent once and cannot be read again.
            self.replayable = False
            self.body = None
        self.content_type = request.headers.get("content-type", "")


class SpecResponse:
    """An httpx response seen through openapi-core's ``Response`` protocol."""

    def __init__(self, response: httpx.Response) -> None:
        self.status_code = response.status_code
        self.content_type = response.headers.get("content-type", "")
        self.headers = Headers(list(response.headers.items()))
        self.data: bytes | None = response.content


def assert_error_envelope(response: httpx.Response) -> dict[str, Any]:
    """The error object of an error response, after checking the envelope's exact shape."""
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str)
    assert error["message"]
    assert isinstance(error["type"], str)
    assert error["param"] is None or isinstance(error["param"], str)
    assert error["code"] is None or isinstance(error["code"], str)
    return dict(error)


def is_content_download(response: httpx.Response) -> bool:
    return response.request.method == "GET" and response.request.url.path.endswith("/content")


def check_response(response: httpx.Response) -> None:
    """The checks every response from the server must pass (see the module docstring)."""
    response.read()
    assert REQUEST_ID.fullmatch(response.headers.get("x-request-id", "")), response.headers
    if response.is_success and is_content_download(response):
        # The spec declares application/json for file content; the hosted API (and this
        # server) sent the raw bytes as application/octet-stream, so there is nothing to
        # validate against the spec here.
        assert response.headers["content-type"] == "application/octet-stream"
        return
    assert response.headers["content-type"] == "application/json"
    if response.request.method == "HEAD":
        return  # headers only, by definition
    if response.status_code >= 400:
        assert_error_envelope(response)
        return
    if SPEC is not None:
        request = SpecRequest(response.request)
        if request.replayable:
            SPEC.validate_request(request)
        SPEC.validate_response(request, SpecResponse(response))


ServerFactory = Callable[..., ServerHandle]
"""The ``make_server`` fixture: ``start_server(port=0, **kwargs)``, stopped after the test."""


def checked_client(handle: ServerHandle, **kwargs: Any) -> httpx.Client:
    """An httpx client for ``handle`` sending auth and beta headers, checking every response."""
    headers = {**AUTH, **BETA, **kwargs.pop("headers", {})}
    return httpx.Client(
        base_url=handle.base_url,
        headers=headers,
        event_hooks={"response": [check_response]},
        timeout=30,
        **kwargs,
    )


def plain_client(handle: ServerHandle, **kwargs: Any) -> httpx.Client:
    """An unchecked client (for bulk setup, concurrency and deliberately odd requests)."""
    headers = {**AUTH, **BETA, **kwargs.pop("headers", {})}
    return httpx.Client(base_url=handle.base_url, headers=headers, timeout=30, **kwargs)


def upload(
    client: httpx.Client,
    content: bytes = b"hello",
    purpose: str = "assistants",
    filename: str = "notes.txt",
) -> dict[str, Any]:
    """Upload a file and return the file object (asserting success)."""
    response = client.post("/files", files={"file": (filename, content)}, data={"purpose": purpose})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def create_assistant(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    """Create an assistant (``model`` defaults to gpt-4) and return it (asserting success)."""
    response = client.post("/assistants", json={"model": "gpt-4", **fields})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


@dataclass(frozen=True)
class Case:
    """An invalid request: the server must answer 400 naming ``param``; the spec's request
    validation must reject it too where ``spec_rejects`` (else the rule is API.md's only)."""

    id: str
    method: str
    path: str
    param: str | None
    spec_rejects: bool
    json: Any = None
    content: bytes | None = None
    params: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    files: dict[str, Any] | None = None
    data: dict[str, Any] | None = None

    def request(self, base_url: str, ids: dict[str, str]) -> httpx.Request:
        kwargs: dict[str, Any] = {}
        if self.json is not None:
            kwargs["json"] = self.json
        if self.content is not None:
            kwargs["content"] = self.content
        if self.files is not None:
            kwargs["files"] = self.files
        if self.data is not None:
            kwargs["data"] = self.data
        return httpx.Request(
            self.method,
            base_url + self.path.format(**ids),
            params={
                k: (v.format(**ids) if isinstance(v, str) else v) for k, v in self.params.items()
            },
            headers={**AUTH, **BETA, **self.headers},
            **_fill(kwargs, ids),
        )


def _fill(value: Any, ids: dict[str, str]) -> Any:
    """Substitute ``{asst}``/``{file}``/... placeholders (keys of ``ids``) inside JSON bodies."""
    if isinstance(value, str):
        return value.format(**ids) if "{" in value and value.strip("{}") in ids else value
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


def assert_rejected(client: httpx.Client, base_url: str, case: Case, ids: dict[str, str]) -> None:
    """The server answers ``case`` with a 400 ``invalid_request_error`` naming its ``param``."""
    response = client.send(case.request(base_url, ids))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == case.param, error


def assert_spec_verdict(spec: OpenAPI, case: Case, ids: dict[str, str]) -> None:
    """The spec rejects ``case`` where ``spec_rejects``, and accepts it otherwise."""
    request = SpecRequest(case.request(SPEC_HOST + "/v1", ids))
    if case.spec_rejects:
        with pytest.raises(RequestValidationError):
            spec.validate_request(request)
    else:
        spec.validate_request(request)
