"""The official SDK 1.20 against the real server over loopback, as a v1 user would drive it.

The SDK is constructed as the issue asks (``http_client=httpx.Client()``,
``_strict_response_validation=True``), so a response of the wrong shape fails the test; the
http client also checks every response against the spec (streams event by event).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai import AssistantEventHandler, OpenAI
from openai.types.beta import Assistant
from openai.types.beta.threads import Message, Run, Text, TextDelta
from openai.types.beta.threads.runs import RunStep, ToolCall
from runs_testkit import FUNCTIONS, WAIT_S, RunServer, sdk_client
from server_testkit import ServerFactory

Json = dict[str, Any]


@pytest.fixture
def runs(make_server: ServerFactory) -> RunServer:
    return RunServer(make_server)


@pytest.fixture
def sdk(runs: RunServer) -> Iterator[OpenAI]:
    with sdk_client(runs) as client:
        yield client


@pytest.fixture
def assistant(sdk: OpenAI) -> Assistant:
    return sdk.beta.assistants.create(
        model="gpt-4-turbo",
        instructions="You are a helpful order desk.",
        tools=FUNCTIONS,  # type: ignore[arg-type]
    )


class Recorder(AssistantEventHandler):
    """Records every callback the SDK makes while consuming a stream."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []
        self.deltas: list[str] = []
        self.texts: list[str] = []
        self.messages: list[Message] = []
        self.steps: list[RunStep] = []
        self.tool_calls: list[ToolCall] = []
        self.in_progress = threading.Event()

    def on_event(self, event: Any) -> None:
        self.events.append(event.event)
        if event.event == "thread.run.in_progress":
            self.in_progress.set()

    def on_text_delta(self, delta: TextDelta, snapshot: Text) -> None:
        self.deltas.append(delta.value or "")

    def on_text_done(self, text: Text) -> None:
        self.texts.append(text.value)

    def on_message_done(self, message: Message) -> None:
        self.messages.append(message)

    def on_run_step_done(self, run_step: RunStep) -> None:
        self.steps.append(run_step)

    def on_tool_call_done(self, tool_call: ToolCall) -> None:
        self.tool_calls.append(tool_call)


def test_create_and_poll(sdk: OpenAI, assistant: Assistant) -> None:
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "Where is order 42?"}])
    sdk.beta.threads.messages.create(thread.id, role="user", content="It is late.")
    run = sdk.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed"
    assert run.instructions == "You are a helpful order desk."
    assert run.usage is not None
    assert run.usage.total_tokens == run.usage.prompt_tokens + run.usage.completion_tokens
    [answer] = sdk.beta.threads.messages.list(thread.id, run_id=run.id).data
    assert answer.content[0].type == "text"
    assert answer.content[0].text.value == "echo: It is late."
    [step] = sdk.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data
    assert step.step_details.type == "message_creation"
    assert step.step_details.message_creation.message_id == answer.id
    again = sdk.beta.threads.runs.steps.retrieve(step.id, thread_id=thread.id, run_id=run.id)
    assert again == step


def test_create_and_stream_sees_every_event(sdk: OpenAI, assistant: Assistant) -> None:
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "tell me a story"}])
    handler = Recorder()
    # create_and_stream is what v1 code of the time called; SDK 1.20 deprecates the name.
    with (
        pytest.deprecated_call(),
        sdk.beta.threads.runs.create_and_stream(
            thread_id=thread.id, assistant_id=assistant.id, event_handler=handler
        ) as stream,
    ):
        stream.until_done()
        final = stream.get_final_run()
        [message] = stream.get_final_messages()
    assert handler.events == [
        "thread.run.created",
        "thread.run.queued",
        "thread.run.in_progress",
        "thread.run.step.created",
        "thread.run.step.in_progress",
        "thread.message.created",
        "thread.message.in_progress",
        *["thread.message.delta"] * len(handler.deltas),
        "thread.message.completed",
        "thread.run.step.completed",
        "thread.run.completed",
    ]
    assert len(handler.deltas) >= 3
    text = "".join(handler.deltas)
    assert text == "echo: tell me a story"
    assert handler.texts == [text]
    assert message.content[0].type == "text"
    assert message.content[0].text.value == text
    assert final.status == "completed"
    stored = sdk.beta.threads.messages.retrieve(message.id, thread_id=thread.id)
    assert stored.content[0].type == "text"
    assert stored.content[0].text.value == text


def test_tool_calls_poll_and_submit(sdk: OpenAI, assistant: Assistant) -> None:
    thread = sdk.beta.threads.create(
        messages=[
            {
                "role": "user",
                "content": 'call lookup_order {"order_id": "42"}\ncall refund {"amount": 10}',
            }
        ]
    )
    run = sdk.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "requires_action"
    assert run.required_action is not None
    calls = run.required_action.submit_tool_outputs.tool_calls
    assert [call.function.name for call in calls] == ["lookup_order", "refund"]
    done = sdk.beta.threads.runs.submit_tool_outputs_and_poll(
        thread_id=thread.id,
        run_id=run.id,
        tool_outputs=[
            {"tool_call_id": calls[0].id, "output": "shipped"},
            {"tool_call_id": calls[1].id, "output": "refunded"},
        ],
    )
    assert done.status == "completed"
    steps = sdk.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc").data
    assert [step.type for step in steps] == ["tool_calls", "message_creation"]
    tool_step = steps[0].step_details
    assert tool_step.type == "tool_calls"
    outputs = [call.function.output for call in tool_step.tool_calls if call.type == "function"]
    assert outputs == ["shipped", "refunded"]
    [answer] = sdk.beta.threads.messages.list(thread.id, run_id=run.id).data
    assert answer.content[0].type == "text"
    assert answer.content[0].text.value == (
        "echo: lookup_order returned shipped; refund returned refunded"
    )


def test_tool_calls_streamed_both_ways(sdk: OpenAI, assistant: Assistant) -> None:
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "call refund {}"}])
    first = Recorder()
    with sdk.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant.id, event_handler=first
    ) as stream:
        stream.until_done()
        run = stream.get_final_run()
    assert first.events[-1] == "thread.run.requires_action"
    assert run.status == "requires_action"
    assert run.required_action is not None
    [call] = run.required_action.submit_tool_outputs.tool_calls
    [streamed_call] = first.tool_calls
    assert streamed_call.id == call.id
    assert streamed_call.type == "function"
    assert streamed_call.function.name == "refund"
    second = Recorder()
    with sdk.beta.threads.runs.submit_tool_outputs_stream(
        thread_id=thread.id,
        run_id=run.id,
        tool_outputs=[{"tool_call_id": call.id, "output": "42 euros"}],
        event_handler=second,
    ) as stream:
        stream.until_done()
        final = stream.get_final_run()
    assert final.status == "completed"
    assert second.events[:3] == [
        "thread.run.step.completed",
        "thread.run.queued",
        "thread.run.in_progress",
    ]
    assert "".join(second.deltas) == "echo: refund returned 42 euros"


def test_create_thread_and_run_stream(sdk: OpenAI, assistant: Assistant) -> None:
    handler = Recorder()
    with sdk.beta.threads.create_and_run_stream(
        assistant_id=assistant.id,
        thread={"messages": [{"role": "user", "content": "hello"}]},
        event_handler=handler,
    ) as stream:
        stream.until_done()
        final = stream.get_final_run()
    assert handler.events[0] == "thread.created"
    assert final.status == "completed"
    assert "".join(handler.deltas) == "echo: hello"
    polled = sdk.beta.threads.create_and_run_poll(
        assistant_id=assistant.id, thread={"messages": [{"role": "user", "content": "again"}]}
    )
    assert polled.status == "completed"


def test_cancel_and_expire(sdk: OpenAI, assistant: Assistant, runs: RunServer) -> None:
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "call refund {}"}])
    run = sdk.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    # Waiting for tool outputs, nothing runs: the cancel finishes it at once.
    assert sdk.beta.threads.runs.cancel(run.id, thread_id=thread.id).status == "cancelled"
    cancelled = sdk.beta.threads.runs.poll(run.id, thread.id)
    assert cancelled.status == "cancelled"
    assert cancelled.cancelled_at is not None

    run = sdk.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "requires_action"
    runs.advance(600)
    expired = sdk.beta.threads.runs.retrieve(run.id, thread_id=thread.id)
    assert expired.status == "expired"
    with pytest.raises(openai.BadRequestError) as late:
        sdk.beta.threads.runs.submit_tool_outputs(
            run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": "call_x", "output": ""}]
        )
    assert isinstance(late.value.body, dict)
    assert late.value.body["message"] == 'Runs in status "expired" do not accept tool outputs.'


def test_failures_reach_the_sdk(sdk: OpenAI, assistant: Assistant) -> None:
    thread = sdk.beta.threads.create(
        messages=[{"role": "user", "content": "echo:fail invalid_prompt"}]
    )
    run = sdk.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "failed"
    assert run.last_error is not None
    assert run.last_error.code == "invalid_prompt"
    handler = Recorder()
    with sdk.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant.id, event_handler=handler
    ) as stream:
        stream.until_done()
        final = stream.get_final_run()
    assert handler.events[-2:] == ["thread.run.failed", "error"]
    assert final.status == "failed"


def test_thread_lock_errors(sdk: OpenAI, assistant: Assistant) -> None:
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "call refund {}"}])
    run = sdk.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    with pytest.raises(openai.BadRequestError) as message:
        sdk.beta.threads.messages.create(thread.id, role="user", content="more")
    assert message.value.body == {
        "message": f"Can't add messages to {thread.id} while a run {run.id} is active.",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    with pytest.raises(openai.BadRequestError) as second:
        sdk.beta.threads.runs.create(thread.id, assistant_id=assistant.id)
    assert isinstance(second.value.body, dict)
    assert second.value.body["message"] == f"Thread {thread.id} already has an active run {run.id}."


def test_cursors_both_ways(sdk: OpenAI, assistant: Assistant) -> None:
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    made: list[Run] = [
        sdk.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
        for _ in range(3)
    ]
    ids = [run.id for run in made]
    page = sdk.beta.threads.runs.list(thread.id, limit=1, order="asc")
    assert [run.id for run in page.data] == ids[:1]
    assert page.has_next_page()
    assert [run.id for run in page]  # iterating a page fetches the next ones == ids
    before = sdk.beta.threads.runs.list(thread.id, before=ids[2], order="asc")
    assert [run.id for run in before.data] == ids[:2]
    newest = sdk.beta.threads.runs.list(thread.id, limit=2)
    assert [run.id for run in newest.data] == ids[::-1][:2]
    messages = sdk.beta.threads.messages.list(thread.id, order="asc", limit=2)
    assert [m.role for m in messages] == ["user", *["assistant"] * 3]
    modified = sdk.beta.threads.runs.update(ids[0], thread_id=thread.id, metadata={"k": "v"})
    assert modified.metadata == {"k": "v"}


def test_errors_reach_the_sdk_typed(sdk: OpenAI, assistant: Assistant) -> None:
    thread = sdk.beta.threads.create()
    with pytest.raises(openai.NotFoundError):
        sdk.beta.threads.runs.retrieve("run_nope", thread_id=thread.id)
    with pytest.raises(openai.NotFoundError):
        sdk.beta.threads.runs.create("thread_nope", assistant_id=assistant.id)
    with pytest.raises(openai.NotFoundError):
        sdk.beta.threads.runs.create(thread.id, assistant_id="asst_nope")
    with pytest.raises(openai.NotFoundError):
        sdk.beta.threads.runs.steps.list("run_nope", thread_id=thread.id)
    with pytest.raises(openai.BadRequestError) as small:
        sdk.beta.threads.runs.create(
            thread.id, assistant_id=assistant.id, max_completion_tokens=100
        )
    assert small.value.param == "max_completion_tokens"
    with pytest.raises(openai.BadRequestError) as choice:
        sdk.beta.threads.runs.create(
            thread.id,
            assistant_id=assistant.id,
            tool_choice={"type": "function", "function": {"name": "absent"}},
        )
    assert choice.value.param == "tool_choice.function.name"
    with pytest.raises(openai.NotFoundError):
        sdk.beta.threads.runs.cancel("run_nope", thread_id=thread.id)


def test_the_readme_sandbox_example_works(
    runs: RunServer, sdk: OpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("Talk to your assistant in the sandbox", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    expected = code.strip().splitlines()[-1].removeprefix("# ")
    sdk.beta.assistants.create(
        model="gpt-4-turbo",
        name="Order Helper",
        tools=[{"type": "retrieval"}, FUNCTIONS[0]],  # type: ignore[list-item]
    )
    code = code.replace("http://127.0.0.1:8787/v1", runs.handle.base_url)
    # The example's own http client, closed once it has run.
    with httpx.Client() as http:
        exec(code.replace("http_client=httpx.Client()", "http_client=http"), {"http": http})
    assert capsys.readouterr().out.strip() == expected


def _stream_in_background(
    sdk: OpenAI, thread_id: str, assistant_id: str
) -> tuple[Recorder, threading.Thread]:
    handler = Recorder()

    def consume() -> None:
        with sdk.beta.threads.runs.stream(
            thread_id=thread_id, assistant_id=assistant_id, event_handler=handler
        ) as stream:
            stream.until_done()

    worker = threading.Thread(target=consume)
    worker.start()
    return handler, worker


def test_streams_end_with_cancelled_expired_or_incomplete(
    sdk: OpenAI, assistant: Assistant, runs: RunServer
) -> None:
    # The checking client reads a stream whole before the SDK sees it; this test needs the
    # events as they come, so its streams use a plain client (the others check the events).
    plain = httpx.Client(timeout=WAIT_S)
    live = OpenAI(
        base_url=runs.handle.base_url,
        api_key="sk-test-key",
        http_client=plain,
        _strict_response_validation=True,
        max_retries=0,
    )
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "echo:sleep 50\nhi"}])
    handler, worker = _stream_in_background(live, thread.id, assistant.id)
    assert handler.in_progress.wait(WAIT_S)
    [run] = sdk.beta.threads.runs.list(thread.id).data
    sdk.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    worker.join(WAIT_S)
    assert handler.events[-2:] == ["thread.run.cancelling", "thread.run.cancelled"]

    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "echo:sleep 5000\nhi"}])
    handler, worker = _stream_in_background(live, thread.id, assistant.id)
    assert handler.in_progress.wait(WAIT_S)
    runs.advance(600)
    worker.join(WAIT_S)
    assert handler.events[-1] == "thread.run.expired"

    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "word " * 300}])
    incomplete = Recorder()
    with sdk.beta.threads.runs.stream(
        thread_id=thread.id,
        assistant_id=assistant.id,
        max_completion_tokens=256,
        event_handler=incomplete,
    ) as stream:
        stream.until_done()
        final = stream.get_final_run()
    assert incomplete.events[-3:] == [
        "thread.message.incomplete",
        "thread.run.step.completed",
        "thread.run.completed",
    ]
    assert final.incomplete_details is not None
    assert final.incomplete_details.reason == "max_completion_tokens"
    [message] = incomplete.messages
    assert message.status == "incomplete"
    plain.close()
