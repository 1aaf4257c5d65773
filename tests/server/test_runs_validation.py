"""Invalid run requests: each one rejected by the server (400 with ``param``) and by the spec.

Requests the spec cannot judge (rules it does not express: json_object with non-function
tools, a forced tool the run lacks, duplicate function names) are shown rejected by the server.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from openapi_core import OpenAPI
from openapi_core.exceptions import OpenAPIError
from runs_testkit import FUNCTIONS, RunServer
from server_testkit import ServerFactory, SpecRequest, create_assistant, plain_client

Json = dict[str, Any]
ASSISTANT = "{assistant}"


@pytest.fixture
def runs(make_server: ServerFactory) -> RunServer:
    return RunServer(make_server)


@pytest.fixture
def c(runs: RunServer) -> Iterator[httpx.Client]:
    with plain_client(runs.handle) as client:
        yield client


def _fill(value: Any, assistant: str) -> Any:
    if value == ASSISTANT:
        return assistant
    if isinstance(value, dict):
        return {k: _fill(v, assistant) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, assistant) for v in value]
    return value


many_tools = [
    {"type": "function", "function": {"name": f"f{i}", "parameters": {"type": "object"}}}
    for i in range(21)
]

INVALID_CREATE_RUN: list[tuple[Json, str]] = [
    ({}, "assistant_id"),
    ({"assistant_id": 7}, "assistant_id"),
    ({"assistant_id": ASSISTANT, "max_completion_tokens": 100}, "max_completion_tokens"),
    ({"assistant_id": ASSISTANT, "max_prompt_tokens": 255}, "max_prompt_tokens"),
    ({"assistant_id": ASSISTANT, "tools": many_tools}, "tools"),
    ({"assistant_id": ASSISTANT, "tools": [{"type": "browser"}]}, "tools[0].type"),
    ({"assistant_id": ASSISTANT, "temperature": 3}, "temperature"),
    ({"assistant_id": ASSISTANT, "top_p": 1.5}, "top_p"),
    (
        {"assistant_id": ASSISTANT, "truncation_strategy": {"type": "first"}},
        "truncation_strategy.type",
    ),
    (
        {
            "assistant_id": ASSISTANT,
            "truncation_strategy": {"type": "last_messages", "last_messages": 0},
        },
        "truncation_strategy.last_messages",
    ),
    ({"assistant_id": ASSISTANT, "tool_choice": "sometimes"}, "tool_choice"),
    ({"assistant_id": ASSISTANT, "tool_choice": {"type": "browser"}}, "tool_choice"),
    ({"assistant_id": ASSISTANT, "response_format": "xml"}, "response_format"),
    ({"assistant_id": ASSISTANT, "response_format": {"type": "yaml"}}, "response_format"),
    ({"assistant_id": ASSISTANT, "stream": "yes"}, "stream"),
    ({"assistant_id": ASSISTANT, "instructions": 5}, "instructions"),
    ({"assistant_id": ASSISTANT, "colour": "blue"}, "colour"),
    (
        {"assistant_id": ASSISTANT, "additional_messages": [{"role": "user"}]},
        "additional_messages[0].content",
    ),
    (
        {"assistant_id": ASSISTANT, "additional_messages": [{"role": "user", "content": ""}]},
        "additional_messages[0].content",
    ),
]

INVALID_CREATE_THREAD_AND_RUN: list[tuple[Json, str]] = [
    ({"assistant_id": ASSISTANT, "additional_instructions": "x"}, "additional_instructions"),
    ({"assistant_id": ASSISTANT, "max_completion_tokens": 1}, "max_completion_tokens"),
    (
        {"assistant_id": ASSISTANT, "thread": {"messages": [{"role": "user", "content": ""}]}},
        "thread.messages[0].content",
    ),
    ({"assistant_id": ASSISTANT, "thread": {"colour": "blue"}}, "thread.colour"),
]

INVALID_SUBMIT: list[tuple[Json, str]] = [
    ({}, "tool_outputs"),
    ({"tool_outputs": "x"}, "tool_outputs"),
    ({"tool_outputs": [], "colour": 1}, "colour"),
    ({"tool_outputs": [{"tool_call_id": 5, "output": "x"}]}, "tool_outputs[0].tool_call_id"),
]

INVALID_MODIFY: list[tuple[Json, str]] = [
    ({"metadata": "x"}, "metadata"),
    ({"status": "completed"}, "status"),
]


def _both_reject(
    client: httpx.Client, spec: OpenAPI, method: str, path: str, body: Json, param: str
) -> None:
    request = client.build_request(method, path, json=body)
    response = client.send(request)
    assert response.status_code == 400, (body, response.text)
    assert response.json()["error"]["param"] == param, (body, response.json())
    with pytest.raises(OpenAPIError):
        spec.validate_request(SpecRequest(request))


@pytest.fixture
def waiting(c: httpx.Client, runs: RunServer) -> tuple[str, str, str]:
    """(assistant id, thread id, id of a run waiting for tool outputs)."""
    assistant = create_assistant(c, tools=FUNCTIONS)["id"]
    thread = c.post(
        "/threads", json={"messages": [{"role": "user", "content": "call refund {}"}]}
    ).json()["id"]
    run = c.post(f"/threads/{thread}/runs", json={"assistant_id": assistant}).json()
    runs.engine.wait_for(thread, run["id"], lambda r: r["status"] == "requires_action", 30)
    return assistant, thread, run["id"]


def test_invalid_requests_are_rejected_by_server_and_spec(
    c: httpx.Client, spec: OpenAPI, waiting: tuple[str, str, str]
) -> None:
    assistant, thread, run = waiting
    other = c.post("/threads", json={}).json()["id"]
    for body, param in INVALID_CREATE_RUN:
        _both_reject(c, spec, "POST", f"/threads/{other}/runs", _fill(body, assistant), param)
    for body, param in INVALID_CREATE_THREAD_AND_RUN:
        _both_reject(c, spec, "POST", "/threads/runs", _fill(body, assistant), param)
    for body, param in INVALID_SUBMIT:
        _both_reject(
            c, spec, "POST", f"/threads/{thread}/runs/{run}/submit_tool_outputs", body, param
        )
    for body, param in INVALID_MODIFY:
        _both_reject(c, spec, "POST", f"/threads/{thread}/runs/{run}", body, param)
    request = c.build_request("GET", f"/threads/{thread}/runs", params={"order": "up"})
    assert c.send(request).json()["error"]["param"] == "order"
    with pytest.raises(OpenAPIError):
        spec.validate_request(SpecRequest(request))
    # The spec states the 1-100 range of limit only in prose.
    assert c.get(f"/threads/{thread}/runs", params={"limit": 0}).json()["error"]["param"] == "limit"
    # Nothing was created by any of them.
    assert c.get(f"/threads/{other}/runs").json()["data"] == []


def test_rules_the_spec_cannot_express(c: httpx.Client, waiting: tuple[str, str, str]) -> None:
    assistant, _, _ = waiting
    with_retrieval = create_assistant(c, tools=[{"type": "retrieval"}, *FUNCTIONS])["id"]
    thread = c.post("/threads", json={}).json()["id"]
    cases: list[tuple[Json, str, str]] = [
        (
            {"assistant_id": with_retrieval, "response_format": {"type": "json_object"}},
            "response_format",
            "tools[0] is 'retrieval'",
        ),
        (
            {
                "assistant_id": assistant,
                "tool_choice": {"type": "function", "function": {"name": "nope"}},
            },
            "tool_choice.function.name",
            "no function named 'nope'",
        ),
        (
            {"assistant_id": assistant, "tool_choice": {"type": "retrieval"}},
            "tool_choice",
            "no 'retrieval' tool",
        ),
        (
            {"assistant_id": assistant, "tools": [FUNCTIONS[0], FUNCTIONS[0]]},
            "tools[1].function.name",
            "duplicate function name",
        ),
        ({"assistant_id": assistant, "metadata": {"k": 1}}, "metadata.k", "expected a string"),
        ({"assistant_id": assistant, "model": ""}, "model", "non-empty"),
    ]
    for body, param, words in cases:
        response = c.post(f"/threads/{thread}/runs", json=body)
        assert response.status_code == 400, body
        error = response.json()["error"]
        assert error["param"] == param, (body, error)
        assert words in error["message"], error
    # json_object is fine when every tool is a function.
    fine = c.post(
        f"/threads/{thread}/runs",
        json={"assistant_id": assistant, "response_format": {"type": "json_object"}},
    )
    assert fine.status_code == 200, fine.text
