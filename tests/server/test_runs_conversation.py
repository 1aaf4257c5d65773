"""Runs over conversations a client seeds, and the run-request rules around tools.

Through the official SDK 1.20 (``_strict_response_validation=True``) where it can express the
request, over plain HTTP where the point is the error a client gets.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from openai import OpenAI
from openai.types.beta import Assistant
from runs_testkit import FUNCTIONS, RunServer, sdk_client
from server_testkit import ServerFactory, create_assistant

Json = dict[str, Any]


@pytest.fixture
def runs(make_server: ServerFactory) -> RunServer:
    return RunServer(make_server)


@pytest.fixture
def sdk(runs: RunServer) -> Iterator[OpenAI]:
    with sdk_client(runs) as client:
        yield client


@pytest.fixture
def c(runs: RunServer) -> Iterator[httpx.Client]:
    with runs.client() as client:
        yield client


@pytest.fixture
def assistant(sdk: OpenAI) -> Assistant:
    return sdk.beta.assistants.create(
        model="gpt-4-turbo",
        instructions="Answer.",
        tools=FUNCTIONS,  # type: ignore[arg-type]
    )


def _texts(sdk: OpenAI, thread_id: str) -> list[tuple[str, str]]:
    listed = sdk.beta.threads.messages.list(thread_id, order="asc").data
    out = []
    for message in listed:
        part = message.content[0]
        assert part.type == "text"
        out.append((message.role, part.text.value))
    return out


def test_assistant_messages_seed_every_kind_of_run(sdk: OpenAI, assistant: Assistant) -> None:
    # create thread with messages, then create message: the model reads an assistant turn.
    thread = sdk.beta.threads.create(
        messages=[
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "a seeded answer"},
        ]
    )
    said = sdk.beta.threads.messages.create(thread.id, role="assistant", content="and more")
    assert said.role == "assistant"
    assert said.assistant_id is None
    assert said.run_id is None
    run = sdk.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed"
    # The echo model answers the newest *user* turn: the assistant turns are not read as user's.
    assert _texts(sdk, thread.id)[-1] == ("assistant", "echo: first question")

    # additional_messages
    run = sdk.beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=assistant.id,
        additional_messages=[
            {"role": "user", "content": "second question"},
            {"role": "assistant", "content": "seeded again"},
        ],
    )
    assert run.status == "completed"
    assert _texts(sdk, thread.id)[-3:] == [
        ("user", "second question"),
        ("assistant", "seeded again"),
        ("assistant", "echo: second question"),
    ]
    # The seeded message is the client's, not the run's.
    [answer] = sdk.beta.threads.messages.list(thread.id, run_id=run.id).data
    assert answer.run_id == run.id

    # create thread and run, thread.messages
    run = sdk.beta.threads.create_and_run_poll(
        assistant_id=assistant.id,
        thread={
            "messages": [
                {"role": "assistant", "content": "Hello, how can I help?"},
                {"role": "user", "content": "order 42"},
            ]
        },
    )
    assert run.status == "completed"
    assert _texts(sdk, run.thread_id) == [
        ("assistant", "Hello, how can I help?"),
        ("user", "order 42"),
        ("assistant", "echo: order 42"),
    ]


def test_an_assistant_with_more_tools_than_a_run_may_carry(c: httpx.Client) -> None:
    many = [
        {"type": "function", "function": {"name": f"tool_{i}", "parameters": {"type": "object"}}}
        for i in range(21)
    ]
    assistant = create_assistant(c, tools=many)
    thread = c.post("/threads", json={}).json()["id"]
    refused = c.post(f"/threads/{thread}/runs", json={"assistant_id": assistant["id"]})
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error["param"] == "tools"
    assert error["type"] == "invalid_request_error"
    assert "the assistant has 21 tools" in error["message"]
    assert "at most 20" in error["message"]
    # Nothing was created; the thread is free.
    assert c.get(f"/threads/{thread}/runs").json()["data"] == []
    both = c.post("/threads/runs", json={"assistant_id": assistant["id"]})
    assert both.status_code == 400
    assert both.json()["error"]["param"] == "tools"
    # Choosing the run's tools works.
    chosen = c.post(
        f"/threads/{thread}/runs", json={"assistant_id": assistant["id"], "tools": many[:20]}
    )
    assert chosen.status_code == 200, chosen.text
    assert len(chosen.json()["tools"]) == 20


def test_a_named_function_choice_without_a_name(c: httpx.Client) -> None:
    assistant = create_assistant(c, tools=FUNCTIONS)
    thread = c.post("/threads", json={}).json()["id"]
    for choice in ({"type": "function"}, {"type": "function", "function": {}}):
        refused = c.post(
            f"/threads/{thread}/runs",
            json={"assistant_id": assistant["id"], "tool_choice": choice},
        )
        assert refused.status_code == 400
        error = refused.json()["error"]
        assert error["message"] == "Missing required parameter: 'tool_choice.function.name'."
        assert error["param"] == "tool_choice.function.name"
