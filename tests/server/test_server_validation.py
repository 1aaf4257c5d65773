"""Every request the spec or API.md forbids gets a 400 naming the offending parameter.

Each case runs twice: against the server (400, error envelope, ``param``), and against the
published spec's request validation (``spec_rejects``): True where the spec can express the
rule, so the spec must reject it too; False where only API.md states the rule (the hosted API
enforced it), so the spec must accept it, which documents that the server is deliberately
stricter than the schema.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from openapi_core import OpenAPI
from server_testkit import Case, assert_rejected, assert_spec_verdict, create_assistant, upload

from assistsync.server import ServerHandle

FILES = "/files"
ASSISTANTS = "/assistants"
ONE = "/assistants/{asst}"
ATTACH = "/assistants/{asst}/files"


def fn(name: str, **extra: Any) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, **extra}}


M = {"model": "gpt-4"}
CASES = [
    # -- create: what the spec says ------------------------------------------------------------
    Case("unknown-field", "POST", ASSISTANTS, "foo", True, json={**M, "foo": 1}),
    Case("missing-model", "POST", ASSISTANTS, "model", True, json={"name": "x"}),
    Case("null-model", "POST", ASSISTANTS, "model", True, json={"model": None}),
    Case("name-type", "POST", ASSISTANTS, "name", True, json={**M, "name": 5}),
    Case("name-257", "POST", ASSISTANTS, "name", True, json={**M, "name": "n" * 257}),
    Case(
        "description-513",
        "POST",
        ASSISTANTS,
        "description",
        True,
        json={**M, "description": "d" * 513},
    ),
    Case(
        "instructions-256001",
        "POST",
        ASSISTANTS,
        "instructions",
        True,
        json={**M, "instructions": "i" * 256_001},
    ),
    Case(
        "tools-129",
        "POST",
        ASSISTANTS,
        "tools",
        True,
        json={**M, "tools": [{"type": "retrieval"}] * 129},
    ),
    Case(
        "tools-not-array",
        "POST",
        ASSISTANTS,
        "tools",
        True,
        json={**M, "tools": {"type": "retrieval"}},
    ),
    Case(
        "tool-type-unknown",
        "POST",
        ASSISTANTS,
        "tools[0].type",
        True,
        json={**M, "tools": [{"type": "browser"}]},
    ),
    Case("tool-type-missing", "POST", ASSISTANTS, "tools[0].type", True, json={**M, "tools": [{}]}),
    Case(
        "function-missing",
        "POST",
        ASSISTANTS,
        "tools[1].function",
        True,
        json={**M, "tools": [{"type": "retrieval"}, {"type": "function"}]},
    ),
    Case(
        "function-name-missing",
        "POST",
        ASSISTANTS,
        "tools[0].function.name",
        True,
        json={**M, "tools": [{"type": "function", "function": {}}]},
    ),
    Case(
        "function-parameters-array",
        "POST",
        ASSISTANTS,
        "tools[0].function.parameters",
        True,
        json={**M, "tools": [fn("f", parameters=[])]},
    ),
    Case(
        "function-description-null",
        "POST",
        ASSISTANTS,
        "tools[0].function.description",
        True,
        json={**M, "tools": [fn("f", description=None)]},
    ),
    Case(
        "function-parameters-string",
        "POST",
        ASSISTANTS,
        "tools[0].function.parameters",
        True,
        json={**M, "tools": [fn("f", parameters="{}")]},
    ),
    Case(
        "file-ids-21",
        "POST",
        ASSISTANTS,
        "file_ids",
        True,
        json={**M, "file_ids": [f"file-{i}" for i in range(21)]},
    ),
    Case(
        "metadata-not-object", "POST", ASSISTANTS, "metadata", True, json={**M, "metadata": ["a"]}
    ),
    Case("temperature-3", "POST", ASSISTANTS, "temperature", True, json={**M, "temperature": 3}),
    Case("top-p-negative", "POST", ASSISTANTS, "top_p", True, json={**M, "top_p": -0.1}),
    Case(
        "response-format-xml",
        "POST",
        ASSISTANTS,
        "response_format",
        True,
        json={**M, "response_format": "xml"},
    ),
    # -- create: what only API.md (the hosted API) says --------------------------------------------
    Case("model-empty", "POST", ASSISTANTS, "model", False, json={"model": ""}),
    Case(
        "function-name-space",
        "POST",
        ASSISTANTS,
        "tools[0].function.name",
        False,
        json={**M, "tools": [fn("get weather")]},
    ),
    Case(
        "function-name-65",
        "POST",
        ASSISTANTS,
        "tools[0].function.name",
        False,
        json={**M, "tools": [fn("f" * 65)]},
    ),
    Case(
        "function-name-empty",
        "POST",
        ASSISTANTS,
        "tools[0].function.name",
        False,
        json={**M, "tools": [fn("")]},
    ),
    Case(
        "function-name-duplicate",
        "POST",
        ASSISTANTS,
        "tools[2].function.name",
        False,
        json={**M, "tools": [fn("a"), fn("b"), fn("a")]},
    ),
    Case(
        "file-ids-duplicate",
        "POST",
        ASSISTANTS,
        "file_ids[1]",
        False,
        json={**M, "file_ids": ["{file}", "{file}"]},
    ),
    Case(
        "file-ids-unknown",
        "POST",
        ASSISTANTS,
        "file_ids[1]",
        False,
        json={**M, "file_ids": ["{file}", "file-nope"]},
    ),
    Case(
        "file-ids-fine-tune",
        "POST",
        ASSISTANTS,
        "file_ids[0]",
        False,
        json={**M, "file_ids": ["{ft_file}"]},
    ),
    Case(
        "metadata-17-pairs",
        "POST",
        ASSISTANTS,
        "metadata",
        False,
        json={**M, "metadata": {str(i): "v" for i in range(17)}},
    ),
    Case(
        "metadata-key-65",
        "POST",
        ASSISTANTS,
        "metadata",
        False,
        json={**M, "metadata": {"k" * 65: "v"}},
    ),
    Case(
        "metadata-value-int",
        "POST",
        ASSISTANTS,
        "metadata.k",
        False,
        json={**M, "metadata": {"k": 1}},
    ),
    Case(
        "metadata-value-513",
        "POST",
        ASSISTANTS,
        "metadata.k",
        False,
        json={**M, "metadata": {"k": "v" * 513}},
    ),
    # -- modify ---------------------------------------------------------------------------------
    Case("modify-unknown-field", "POST", ONE, "colour", True, json={"colour": "red"}),
    Case("modify-null-model", "POST", ONE, "model", True, json={"model": None}),
    Case("modify-name-257", "POST", ONE, "name", True, json={"name": "n" * 257}),
    Case(
        "modify-tools-129",
        "POST",
        ONE,
        "tools",
        True,
        json={"tools": [{"type": "retrieval"}] * 129},
    ),
    Case(
        "modify-file-ids-21",
        "POST",
        ONE,
        "file_ids",
        True,
        json={"file_ids": [f"file-{i}" for i in range(21)]},
    ),
    Case(
        "modify-file-ids-unknown",
        "POST",
        ONE,
        "file_ids[0]",
        False,
        json={"file_ids": ["file-nope"]},
    ),
    Case(
        "modify-function-name-duplicate",
        "POST",
        ONE,
        "tools[1].function.name",
        False,
        json={"tools": [fn("a"), fn("a")]},
    ),
    Case(
        "modify-metadata-value-int",
        "POST",
        ONE,
        "metadata.k",
        False,
        json={"metadata": {"k": True}},
    ),
    # -- assistant files ------------------------------------------------------------------------
    Case(
        "attach-unknown-field",
        "POST",
        ATTACH,
        "purpose",
        True,
        json={"file_id": "{file}", "purpose": "x"},
    ),
    Case("attach-missing-file-id", "POST", ATTACH, "file_id", True, json={}),
    Case("attach-unknown-file", "POST", ATTACH, "file_id", False, json={"file_id": "file-nope"}),
    Case("attach-fine-tune-file", "POST", ATTACH, "file_id", False, json={"file_id": "{ft_file}"}),
    Case("attach-duplicate", "POST", ATTACH, "file_id", False, json={"file_id": "{attached}"}),
    # -- bodies -----------------------------------------------------------------------------------
    Case(
        "malformed-json",
        "POST",
        ASSISTANTS,
        None,
        True,
        content=b'{"model": ',
        headers={"content-type": "application/json"},
    ),
    Case("json-not-object", "POST", ASSISTANTS, None, True, json=["gpt-4"]),
    Case(
        "wrong-content-type",
        "POST",
        ASSISTANTS,
        None,
        True,
        content=b'{"model": "m"}',
        headers={"content-type": "text/plain"},
    ),
    Case("form-instead-of-json", "POST", ONE, None, True, data={"name": "x"}),
    # -- list parameters ------------------------------------------------------------------------
    Case("limit-not-integer", "GET", ASSISTANTS, "limit", True, params={"limit": "ten"}),
    Case("order-unknown", "GET", ASSISTANTS, "order", True, params={"order": "newest"}),
    Case("limit-0", "GET", ASSISTANTS, "limit", False, params={"limit": 0}),
    Case("limit-101", "GET", ASSISTANTS, "limit", False, params={"limit": 101}),
    Case("list-unknown-param", "GET", ASSISTANTS, "sort", False, params={"sort": "name"}),
    Case("files-list-limit-0", "GET", ATTACH, "limit", False, params={"limit": 0}),
    Case("files-list-order-unknown", "GET", ATTACH, "order", True, params={"order": "up"}),
    Case("files-unknown-param", "GET", FILES, "limit", False, params={"limit": 10}),
    # -- uploads --------------------------------------------------------------------------------
    Case("upload-purpose-missing", "POST", FILES, "purpose", True, files={"file": ("a.txt", b"x")}),
    Case(
        "upload-purpose-invalid",
        "POST",
        FILES,
        "purpose",
        True,
        files={"file": ("a.txt", b"x")},
        data={"purpose": "vision"},
    ),
    # openapi-core decodes only the declared multipart parts, so it cannot see an extra one.
    Case(
        "upload-unknown-field",
        "POST",
        FILES,
        "other",
        False,
        files={"file": ("a.txt", b"x"), "other": ("b.txt", b"y")},
        data={"purpose": "assistants"},
    ),
    Case(
        "upload-file-missing",
        "POST",
        FILES,
        "file",
        True,
        headers={"content-type": "multipart/form-data; boundary=x"},
        content=b'--x\r\nContent-Disposition: form-data; name="purpose"\r\n\r\n'
        b"assistants\r\n--x--\r\n",
    ),
    Case("upload-json", "POST", FILES, None, True, json={"purpose": "assistants"}),
    Case(
        "upload-too-large",
        "POST",
        FILES,
        "file",
        False,
        files={"file": ("big.bin", b"x" * (1024 * 1024 + 1))},
        data={"purpose": "assistants"},
    ),
]


@pytest.fixture
def ids(client: httpx.Client) -> dict[str, str]:
    file = upload(client)["id"]
    attached = upload(client)["id"]
    ft_file = upload(client, b'{"prompt": "a"}\n', purpose="fine-tune")["id"]
    asst = create_assistant(client, file_ids=[attached])["id"]
    return {"file": file, "ft_file": ft_file, "asst": asst, "attached": attached}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_server_rejects(
    case: Case, client: httpx.Client, server: ServerHandle, ids: dict[str, str]
) -> None:
    # Requests are sent through the checked client, so the envelope is verified as well.
    assistants_before = client.get("/assistants").json()["data"]
    assert_rejected(client, server.base_url, case, ids)
    # Nothing was changed by a rejected request.
    assert client.get("/assistants").json()["data"] == assistants_before


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_spec_agrees(case: Case, spec: OpenAPI) -> None:
    ids = {"file": "file-1", "ft_file": "file-2", "asst": "asst_1", "attached": "file-3"}
    assert_spec_verdict(spec, case, ids)


def test_error_messages_say_what_to_fix(client: httpx.Client) -> None:
    response = client.post("/assistants", json={"model": "m", "name": "n" * 300})
    message = response.json()["error"]["message"]
    assert "256" in message
    assert "300" in message
    response = client.post("/assistants", json={"model": "m", "tools": [fn("bad name")]})
    assert "^[a-zA-Z0-9_-]{1,64}$" in response.json()["error"]["message"]
    response = client.post("/assistants", json={"model": "m", "foo": 1})
    assert response.json()["error"]["message"] == "Unrecognized request argument supplied: foo"


def test_boundary_values_are_accepted(client: httpx.Client) -> None:
    files = [upload(client)["id"] for _ in range(20)]
    created = create_assistant(
        client,
        name="n" * 256,
        tools=[fn(f"f{i}") for i in range(128)],
        file_ids=files,
        metadata={f"k{i}".ljust(64, "x"): "v" * 512 for i in range(16)},
        temperature=0,
        top_p=1,
        response_format="none",
    )
    assert created["file_ids"] == files
    assert len(created["tools"]) == 128
    page = client.get("/assistants", params={"limit": 100}).json()
    assert page["data"][0]["id"] == created["id"]
    assert client.get("/assistants", params={"limit": 1}).status_code == 200
