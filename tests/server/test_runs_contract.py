"""The checks behind the runs tests can fail: a wrong run, step or event is caught.

(The checking client validates every JSON answer against the spec and every streamed event
against the YAML's event schemas; these tests prove both validators reject what is wrong, and
walk every runs operation once through the checking client.)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from openapi_core import OpenAPI
from openapi_core.exceptions import OpenAPIError
from runs_testkit import FUNCTIONS, YAML_SPEC, RunServer, check_stream, event_schema_errors
from server_testkit import ServerFactory, SpecRequest, SpecResponse, create_assistant

Json = dict[str, Any]


@pytest.fixture
def runs(make_server: ServerFactory) -> RunServer:
    return RunServer(make_server)


@pytest.fixture
def c(runs: RunServer) -> Iterator[httpx.Client]:
    with runs.client() as client:
        yield client


def _tampered(response: httpx.Response, change: Json) -> SpecResponse:
    body = {**response.json(), **change}
    return SpecResponse(
        httpx.Response(
            response.status_code,
            content=json.dumps(body).encode(),
            headers={"content-type": "application/json"},
            request=response.request,
        )
    )


def test_every_runs_operation_passes_the_checks(c: httpx.Client, runs: RunServer) -> None:
    assistant = create_assistant(c, tools=FUNCTIONS)["id"]
    thread = c.post("/threads", json={"messages": [{"role": "user", "content": "call refund {}"}]})
    tid = thread.json()["id"]
    run = c.post(f"/threads/{tid}/runs", json={"assistant_id": assistant}).json()
    rid = run["id"]
    runs.engine.wait_for(tid, rid, lambda r: r["status"] == "requires_action", 30)
    step = c.get(f"/threads/{tid}/runs/{rid}/steps").json()["data"][0]
    call = c.get(f"/threads/{tid}/runs/{rid}").json()["required_action"]
    call_id = call["submit_tool_outputs"]["tool_calls"][0]["id"]
    for method, path, body in [
        ("GET", f"/threads/{tid}/runs", None),
        ("GET", f"/threads/{tid}/runs/{rid}", None),
        ("POST", f"/threads/{tid}/runs/{rid}", {"metadata": {"a": "b"}}),
        ("GET", f"/threads/{tid}/runs/{rid}/steps", None),
        ("GET", f"/threads/{tid}/runs/{rid}/steps/{step['id']}", None),
        (
            "POST",
            f"/threads/{tid}/runs/{rid}/submit_tool_outputs",
            {"tool_outputs": [{"tool_call_id": call_id, "output": "ok"}]},
        ),
        ("POST", "/threads/runs", {"assistant_id": assistant, "thread": {"metadata": {}}}),
    ]:
        response = c.request(method, path, json=body)
        assert response.status_code == 200, (method, path, response.text)
    runs.engine.wait_for(tid, rid, lambda r: r["status"] == "completed", 30)
    other = c.post(f"/threads/{tid}/runs", json={"assistant_id": assistant}).json()
    runs.engine.wait_for(tid, other["id"], lambda r: r["status"] == "requires_action", 30)
    assert c.post(f"/threads/{tid}/runs/{other['id']}/cancel").status_code == 200


@pytest.mark.parametrize(
    "change",
    [
        {"status": "done"},
        {"instructions": None},
        {"expires_at": "soon"},
        {"usage": {"prompt_tokens": 1}},
        {"required_action": {"type": "submit_tool_outputs"}},
    ],
    ids=["status", "instructions", "expires_at", "usage", "required_action"],
)
def test_the_spec_rejects_a_wrong_run(
    c: httpx.Client, spec: OpenAPI, runs: RunServer, change: Json
) -> None:
    assistant = create_assistant(c)["id"]
    response = c.post("/threads/runs", json={"assistant_id": assistant})
    request = SpecRequest(response.request)
    spec.validate_response(request, SpecResponse(response))
    with pytest.raises(OpenAPIError):
        spec.validate_response(request, _tampered(response, change))


def test_the_event_schemas_reject_wrong_events(c: httpx.Client, runs: RunServer) -> None:
    if not YAML_SPEC.is_file():
        pytest.skip(f"the published YAML spec is not available at {YAML_SPEC}")
    assistant = create_assistant(c)["id"]
    with c.stream(
        "POST", "/threads/runs", json={"assistant_id": assistant, "stream": True}
    ) as response:
        events = check_stream(response)
    by_name = dict(events)
    run = by_name["thread.run.completed"]
    delta = by_name["thread.message.delta"]
    assert not event_schema_errors("thread.run.completed", run)
    assert event_schema_errors("thread.run.completed", {**run, "status": "finished"})
    assert event_schema_errors("thread.run.completed", {**run, "instructions": None})
    assert event_schema_errors("thread.message.delta", {**delta, "object": "thread.message"})
    assert event_schema_errors("thread.run.completed", by_name["thread.message.completed"])
    assert event_schema_errors("error", {"error": {"message": "x"}})
    assert not event_schema_errors(
        "error", {"code": "server_error", "message": "m", "param": None, "type": "server_error"}
    )
    assert event_schema_errors("thread.run.finished", run)
    assert not event_schema_errors("done", "[DONE]")
    assert event_schema_errors("done", "DONE")
