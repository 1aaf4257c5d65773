"""Function calls stream to v1 clients as they are written: the official SDK 1.20 (strict, every
event also checked against the spec's event schemas by its http client) sees the ``tool_calls``
step created with the first fragment, then one ``thread.run.step.delta`` per fragment, and the
fragments of each call concatenate to the arguments ``required_action`` asks for — with the
echo model (no backend) and through a chat backend (the loopback stand-in), parallel calls
sequential or interleaved, and calls cut off by the token limit."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from chat_fixtures import FUNCTIONS, ChatServer, chat, sdk, standin
from chat_testkit import StandIn, calls
from openai import AssistantEventHandler, OpenAI
from openai.types.beta.threads import Run
from openai.types.beta.threads.runs import RunStep, RunStepDelta, ToolCall, ToolCallDelta
from runs_testkit import RunServer, check_stream, sdk_client
from server_testkit import ServerFactory

__all__ = ["chat", "sdk", "standin"]  # fixtures

Json = dict[str, Any]


class Calls(AssistantEventHandler):
    """Records what the SDK hands a handler while a call streams."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []
        self.created: list[tuple[str, str, str]] = []  # id, name, arguments so far
        self.deltas: list[tuple[int, str]] = []  # index, arguments fragment
        self.streamed: list[Json] = []  # every tool-call delta, as sent
        self.snapshot: RunStep | None = None

    def on_event(self, event: Any) -> None:
        self.events.append(event.event)
        if event.event == "thread.run.step.delta":
            details = event.data.delta.step_details
            if details is not None and details.type == "tool_calls":
                for call in details.tool_calls or ():
                    self.streamed.append(call.model_dump(exclude_unset=True))

    def on_tool_call_created(self, tool_call: ToolCall) -> None:
        assert tool_call.type == "function"
        function = tool_call.function
        self.created.append((tool_call.id, function.name, function.arguments))

    def on_tool_call_delta(self, delta: ToolCallDelta, snapshot: ToolCall) -> None:
        assert delta.type == "function"
        assert delta.function is not None
        self.deltas.append((delta.index, delta.function.arguments or ""))

    def on_run_step_delta(self, delta: RunStepDelta, snapshot: RunStep) -> None:
        self.snapshot = snapshot


def _stream(sdk: OpenAI, assistant_id: str, content: str) -> tuple[Calls, Run]:
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": content}])
    handler = Calls()
    # create_and_stream is what v1 code of the time called; SDK 1.20 deprecates the name.
    with (
        pytest.deprecated_call(),
        sdk.beta.threads.runs.create_and_stream(
            thread_id=thread.id, assistant_id=assistant_id, event_handler=handler
        ) as stream,
    ):
        stream.until_done()
        run = stream.get_final_run()
    return handler, run


def _required(run: Run) -> list[tuple[str, str, str]]:
    assert run.status == "requires_action"
    assert run.required_action is not None
    return [
        (c.id, c.function.name, c.function.arguments)
        for c in run.required_action.submit_tool_outputs.tool_calls
    ]


def _snapshot_calls(handler: Calls) -> list[tuple[str, str, str]]:
    """The calls as the SDK accumulated them from the deltas."""
    assert handler.snapshot is not None
    details = handler.snapshot.step_details
    assert details.type == "tool_calls"
    return [
        (c.id, c.function.name, c.function.arguments)
        for c in details.tool_calls
        if c.type == "function"
    ]


def _streamed_whole(handler: Calls, required: list[tuple[str, str, str]], pieces: int) -> None:
    """Each call came in ``pieces`` non-empty fragments that join to the arguments asked for;
    the SDK's accumulated step holds every call whole, under the id ``required_action`` names;
    the first delta of each call has its id, type and name (and a null output), later ones
    only the next piece of the arguments (clients concatenate every string they get)."""
    for index, (_, _, arguments) in enumerate(required):
        mine = [c["function"]["arguments"] for c in handler.streamed if c["index"] == index]
        assert len(mine) == pieces
        assert all(mine)
        assert "".join(mine) == arguments
    assert _snapshot_calls(handler) == required
    seen: set[int] = set()
    for call in handler.streamed:
        index = call["index"]
        assert call["type"] == "function"
        if index not in seen:
            seen.add(index)
            assert call["id"] == required[index][0]
            assert call["function"]["name"] == required[index][1]
            assert call["function"]["output"] is None
        else:
            assert set(call) == {"index", "type", "function"}
            assert set(call["function"]) == {"arguments"}
    assert seen == set(range(len(required)))


@pytest.fixture
def echo(make_server: ServerFactory) -> RunServer:
    return RunServer(make_server)


@pytest.fixture
def echo_sdk(echo: RunServer) -> Iterator[OpenAI]:
    with sdk_client(echo) as client:
        yield client


def test_echo_calls_stream_fragment_by_fragment(echo_sdk: OpenAI) -> None:
    assistant = echo_sdk.beta.assistants.create(model="gpt-4-turbo", tools=FUNCTIONS)  # type: ignore[arg-type]
    content = 'call lookup_order {"order": 7, "note": "fragile"}\ncall refund {"amount": 5}'
    handler, run = _stream(echo_sdk, assistant.id, content)
    required = _required(run)
    assert [(name, json.loads(arguments)) for _, name, arguments in required] == [
        ("lookup_order", {"order": 7, "note": "fragile"}),
        ("refund", {"amount": 5}),
    ]
    # The step opens with the first fragment; each fragment is a delta; then requires_action.
    names = handler.events
    start = names.index("thread.run.step.created")
    assert names[start + 1] == "thread.run.step.in_progress"
    assert set(names[start + 2 : -1]) == {"thread.run.step.delta"}
    assert names[-1] == "thread.run.requires_action"
    # Each call is created once (its id and name in its first delta), then grows by deltas.
    assert [(i, n) for i, n, _ in handler.created] == [(i, n) for i, n, _ in required]
    assert [index for index, _ in handler.deltas] == [0, 0, 1, 1]
    for index, (_, _, arguments) in enumerate(required):
        rest = "".join(piece for i, piece in handler.deltas if i == index)
        assert handler.created[index][2] + rest == arguments
    _streamed_whole(handler, required, 3)


def test_echo_streamed_call_events_match_the_spec(echo: RunServer) -> None:
    with echo.client() as c:
        assistant = c.post("/assistants", json={"model": "gpt-4-turbo", "tools": FUNCTIONS})
        body = {
            "assistant_id": assistant.json()["id"],
            "stream": True,
            "thread": {"messages": [{"role": "user", "content": 'call refund {"amount": 5}'}]},
        }
        with c.stream("POST", "/threads/runs", json=body) as response:
            events = check_stream(response)  # every event checked against the spec
    deltas = [data for name, data in events if name == "thread.run.step.delta"]
    pieces = [d["delta"]["step_details"]["tool_calls"][0]["function"] for d in deltas]
    assert [p["arguments"] for p in pieces] == ['{"amo', 'unt":', " 5}"]
    assert pieces[0] == {"name": "refund", "arguments": '{"amo', "output": None}
    [created] = [data for name, data in events if name == "thread.run.step.created"]
    assert created["step_details"] == {"type": "tool_calls", "tool_calls": []}
    run = events[-1][1]
    [call] = run["required_action"]["submit_tool_outputs"]["tool_calls"]
    first = deltas[0]["delta"]["step_details"]["tool_calls"][0]
    assert (first["id"], first["type"]) == (call["id"], "function")


def test_backend_call_fragments_stream_as_they_arrive(
    chat: ChatServer, standin: StandIn, sdk: OpenAI
) -> None:
    standin.script(calls(("lookup_order", '{"order": 7}'), ("refund", '{"order": 7, "amount": 5}')))
    assistant = sdk.beta.assistants.create(model="gpt-4-turbo", tools=FUNCTIONS)  # type: ignore[arg-type]
    handler, run = _stream(sdk, assistant.id, "Refund order 7")
    required = _required(run)
    assert [a for _, _, a in required] == ['{"order": 7}', '{"order": 7, "amount": 5}']
    # the stand-in sends each call's arguments in two halves, one call after the other
    assert [(i, n) for i, n, _ in handler.created] == [(i, n) for i, n, _ in required]
    assert [index for index, _ in handler.deltas] == [0, 1]
    for index, (_, _, arguments) in enumerate(required):
        rest = "".join(piece for i, piece in handler.deltas if i == index)
        assert handler.created[index][2] + rest == arguments
    _streamed_whole(handler, required, 2)


def test_interleaved_backend_calls_accumulate_by_index(
    chat: ChatServer, standin: StandIn, sdk: OpenAI
) -> None:
    standin.script(
        calls(
            ("lookup_order", '{"order": 7}'),
            ("refund", '{"order": 7, "amount": 5}'),
            interleave=True,
        )
    )
    assistant = sdk.beta.assistants.create(model="gpt-4-turbo", tools=FUNCTIONS)  # type: ignore[arg-type]
    handler, run = _stream(sdk, assistant.id, "Refund order 7")
    required = _required(run)
    assert [(n, a) for _, n, a in required] == [
        ("lookup_order", '{"order": 7}'),
        ("refund", '{"order": 7, "amount": 5}'),
    ]
    assert [call["index"] for call in handler.streamed] == [0, 1, 0, 1, 0, 1]
    _streamed_whole(handler, required, 3)


def test_a_call_cut_off_by_the_token_limit_leaves_no_half_call(
    chat: ChatServer, standin: StandIn, sdk: OpenAI
) -> None:
    standin.script(
        calls(("lookup_order", '{"order": 7}'), ("refund", '{"order": 7, "amo'), finish="length")
    )
    assistant = sdk.beta.assistants.create(model="gpt-4-turbo", tools=FUNCTIONS)  # type: ignore[arg-type]
    handler, run = _stream(sdk, assistant.id, "Refund order 7")
    # both calls streamed, but only the whole one is asked for and recorded
    assert {call["index"] for call in handler.streamed} == {0, 1}
    required = _required(run)
    assert [(n, a) for _, n, a in required] == [("lookup_order", '{"order": 7}')]
    steps = sdk.beta.threads.runs.steps.list(thread_id=run.thread_id, run_id=run.id)
    [step] = steps.data
    assert step.status == "in_progress"
    assert step.step_details.type == "tool_calls"
    recorded = [(c.id, c.function.name, c.function.arguments) for c in step.step_details.tool_calls]  # type: ignore[union-attr]
    assert recorded == required


def test_a_run_whose_only_call_was_cut_off_completes_with_an_empty_step(
    chat: ChatServer, standin: StandIn, sdk: OpenAI
) -> None:
    standin.script(calls(("refund", '{"order": 7, "amo'), finish="length"))
    assistant = sdk.beta.assistants.create(model="gpt-4-turbo", tools=FUNCTIONS)  # type: ignore[arg-type]
    handler, run = _stream(sdk, assistant.id, "Refund order 7")
    assert handler.created  # the call was streamed while it was written
    assert run.status == "completed"
    assert run.incomplete_details is not None
    assert run.incomplete_details.reason == "max_completion_tokens"
    steps = sdk.beta.threads.runs.steps.list(thread_id=run.thread_id, run_id=run.id)
    [step] = steps.data
    assert step.status == "completed"
    assert step.step_details.type == "tool_calls"
    assert step.step_details.tool_calls == []
    assert handler.events[-1] == "thread.run.completed"
