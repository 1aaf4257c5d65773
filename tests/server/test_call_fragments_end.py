"""A run that ends while a function call is still streaming in: cancelled by the client, or
expired by the clock, after the backend has sent the first fragment of the call's arguments.

The official SDK 1.20 (strict) streams the run from the real server, whose run is answered by
the loopback stand-in backend; the stand-in stalls after the fragment until it is hung up on.
The SDK's http client checks each event as it passes (:func:`live_testkit.live_sdk`): the test
acts on an event while the run is still in progress, so the stream must not be read whole first.
Checked: the stream ends with the terminal events, the half-written ``tool_calls`` step ends
with the run (status, its timestamp), no ``required_action`` asks for the half call, the
backend connection is closed, the run's usage counts the call as far as it was written (the
same whichever ended it), and the thread takes the next run (nothing is left stuck)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from chat_fixtures import ChatServer, standin
from chat_testkit import StandIn, stall, text
from live_testkit import live_sdk
from openai import OpenAI
from openai.types.beta import AssistantStreamEvent
from runs_testkit import FUNCTIONS
from server_testkit import ServerFactory

from assistsync.server.runs.echo import tokens

__all__ = ["standin"]  # fixtures

CALL = ("lookup_order", '{"order": 7, "note": "the long way round"}')


@pytest.fixture
def chat(make_server: ServerFactory, standin: StandIn) -> Iterator[ChatServer]:
    server = ChatServer(make_server, standin, run_expiry_s=60)
    yield server
    server.close()


@pytest.fixture
def sdk(chat: ChatServer) -> Iterator[OpenAI]:
    client = live_sdk(chat.handle.base_url)
    yield client
    client.close()


def _until_first_fragment(events: Iterator[AssistantStreamEvent]) -> list[str]:
    """Read the stream up to the first streamed fragment of a call; the event names so far."""
    seen: list[str] = []
    for event in events:
        seen.append(event.event)
        if event.event == "thread.run.step.delta":
            details = event.data.delta.step_details
            if details is not None and details.type == "tool_calls":
                return seen
    raise AssertionError(f"the stream ended without a call fragment: {seen}")


def _start(sdk: OpenAI, standin: StandIn) -> tuple[str, str, Iterator[AssistantStreamEvent]]:
    standin.script(stall(calls=(CALL,), fragments=1))
    assistant = sdk.beta.assistants.create(model="gpt-4-turbo", tools=FUNCTIONS)  # type: ignore[arg-type]
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "Where is 7?"}])
    stream = sdk.beta.threads.runs.create(
        thread_id=thread.id, assistant_id=assistant.id, stream=True
    )
    events = iter(stream)
    seen = _until_first_fragment(events)
    assert "thread.run.step.created" in seen
    # The fragment reached the SDK while the backend is still answering.
    [run] = sdk.beta.threads.runs.list(thread_id=thread.id).data
    assert run.status == "in_progress", run.last_error
    return thread.id, assistant.id, events


def _ended(
    sdk: OpenAI, standin: StandIn, thread_id: str, assistant_id: str, status: str, at: int
) -> None:
    """The run and its step ended with ``status`` at ``at``; nothing is left running."""
    [run] = sdk.beta.threads.runs.list(thread_id=thread_id).data
    assert run.status == status
    assert run.required_action is None
    assert run.expires_at is None
    assert run.last_error is None
    # Counted as the echo model counts (one token per 4 characters): the prompt, and the call
    # as far as it was written (its name and the first half of its arguments).
    name, arguments = CALL
    assert run.usage is not None
    assert run.usage.prompt_tokens == tokens(len("Where is 7?"))
    assert run.usage.completion_tokens == tokens(len(name) + len(arguments) // 2)
    [step] = sdk.beta.threads.runs.steps.list(run.id, thread_id=thread_id).data
    assert step.type == "tool_calls"
    assert step.status == status
    assert getattr(step, f"{status}_at") == at
    standin.wait_hangups(1)  # the backend's answer was abandoned, not left running
    standin.script(text("Order 7 shipped."))
    after = sdk.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id)
    assert after.status == "completed"


def test_cancel_while_a_call_streams_in(chat: ChatServer, standin: StandIn, sdk: OpenAI) -> None:
    thread_id, assistant_id, events = _start(sdk, standin)
    [run] = sdk.beta.threads.runs.list(thread_id=thread_id).data
    sdk.beta.threads.runs.cancel(run.id, thread_id=thread_id)
    rest = [event.event for event in events]
    assert rest == ["thread.run.cancelling", "thread.run.step.cancelled", "thread.run.cancelled"]
    _ended(sdk, standin, thread_id, assistant_id, "cancelled", at=run.created_at)


def test_expiry_while_a_call_streams_in(chat: ChatServer, standin: StandIn, sdk: OpenAI) -> None:
    thread_id, assistant_id, events = _start(sdk, standin)
    [run] = sdk.beta.threads.runs.list(thread_id=thread_id).data
    chat.advance(60)
    rest = [event.event for event in events]
    assert rest == ["thread.run.step.expired", "thread.run.expired"]
    _ended(sdk, standin, thread_id, assistant_id, "expired", at=run.created_at + 60)
