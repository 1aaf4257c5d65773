"""The spec checks themselves: they must be able to fail, or they prove nothing."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from openapi_core import OpenAPI
from openapi_core.exceptions import OpenAPIError
from server_testkit import SpecRequest, SpecResponse, create_assistant, upload


def _tampered(response: httpx.Response, change: dict[str, Any]) -> SpecResponse:
    body = {**response.json(), **change}
    return SpecResponse(
        httpx.Response(
            response.status_code,
            content=json.dumps(body).encode(),
            headers={"content-type": "application/json"},
            request=response.request,
        )
    )


def test_every_operation_validates_against_the_spec(client: httpx.Client, spec: OpenAPI) -> None:
    # The checked client validates each response; this walks every operation once.
    file = upload(client)
    assistant = create_assistant(client, file_ids=[file["id"]], tools=[{"type": "retrieval"}])
    aid, fid = assistant["id"], file["id"]
    other = upload(client)["id"]
    for method, path, body in [
        ("GET", "/assistants", None),
        ("GET", f"/assistants/{aid}", None),
        ("POST", f"/assistants/{aid}", {"name": "renamed", "metadata": {"a": "b"}}),
        ("GET", f"/assistants/{aid}/files", None),
        ("POST", f"/assistants/{aid}/files", {"file_id": other}),
        ("GET", f"/assistants/{aid}/files/{fid}", None),
        ("DELETE", f"/assistants/{aid}/files/{fid}", None),
        ("GET", "/files", None),
        ("GET", f"/files/{fid}", None),
        ("GET", f"/files/{fid}/content", None),
        ("DELETE", f"/files/{fid}", None),
        ("DELETE", f"/assistants/{aid}", None),
    ]:
        response = client.request(method, path, json=body)
        assert response.status_code == 200, (method, path, response.text)


@pytest.mark.parametrize(
    "change",
    [{"object": "assistants"}, {"created_at": "yesterday"}, {"file_ids": "file-1"}],
    ids=["object", "created_at", "file_ids"],
)
def test_the_validator_rejects_a_wrong_assistant(
    client: httpx.Client, spec: OpenAPI, change: dict[str, Any]
) -> None:
    response = client.post("/assistants", json={"model": "gpt-4"})
    request = SpecRequest(response.request)
    spec.validate_response(request, SpecResponse(response))
    with pytest.raises(OpenAPIError):
        spec.validate_response(request, _tampered(response, change))


def test_the_validator_rejects_a_list_without_has_more(client: httpx.Client, spec: OpenAPI) -> None:
    response = client.get("/assistants")
    body = response.json()
    del body["has_more"]
    broken = httpx.Response(
        200,
        content=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
        request=response.request,
    )
    with pytest.raises(OpenAPIError):
        spec.validate_response(SpecRequest(response.request), SpecResponse(broken))


def test_every_thread_operation_validates_against_the_spec(
    client: httpx.Client, spec: OpenAPI
) -> None:
    file = upload(client)["id"]
    thread = client.post(
        "/threads",
        json={"messages": [{"role": "user", "content": "hi", "file_ids": [file]}]},
    ).json()
    tid = thread["id"]
    mid = client.get(f"/threads/{tid}/messages").json()["data"][0]["id"]
    for method, path, body in [
        ("GET", f"/threads/{tid}", None),
        ("POST", f"/threads/{tid}", {"metadata": {"a": "b"}}),
        ("POST", f"/threads/{tid}/messages", {"role": "user", "content": "more"}),
        ("GET", f"/threads/{tid}/messages", None),
        ("GET", f"/threads/{tid}/messages/{mid}", None),
        ("POST", f"/threads/{tid}/messages/{mid}", {"metadata": {"c": "d"}}),
        ("GET", f"/threads/{tid}/messages/{mid}/files", None),
        ("GET", f"/threads/{tid}/messages/{mid}/files/{file}", None),
        ("DELETE", f"/threads/{tid}", None),
    ]:
        response = client.request(method, path, json=body)
        assert response.status_code == 200, (method, path, response.text)


@pytest.mark.parametrize(
    "change",
    [{"object": "message"}, {"role": "system"}, {"content": "text"}, {"created_at": 1.5}],
    ids=["object", "role", "content", "created_at"],
)
def test_the_validator_rejects_a_wrong_message(
    client: httpx.Client, spec: OpenAPI, change: dict[str, Any]
) -> None:
    tid = client.post("/threads", json={}).json()["id"]
    response = client.post(f"/threads/{tid}/messages", json={"role": "user", "content": "x"})
    request = SpecRequest(response.request)
    spec.validate_response(request, SpecResponse(response))
    with pytest.raises(OpenAPIError):
        spec.validate_response(request, _tampered(response, change))
