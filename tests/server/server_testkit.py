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
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from openapi_core import OpenAPI
from openapi_core.configurations import Config
from openapi_core.datatypes import RequestParameters
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
