"""Runs answered by a chat-completions backend, end to end: the SDK 1.20 (strict) drives the
real server, whose runs call the stand-in backend over loopback. Each test checks both sides:
what the backend received (the translation, message by message) and what the SDK sees."""

from __future__ import annotations

import json

import pytest
from chat_fixtures import BACKEND_MODEL, FUNCTIONS, KEY, ChatServer, Deltas, chat, sdk, standin
from chat_testkit import StandIn, calls, drop, error, stall, text
from openai import OpenAI
from server_testkit import ServerFactory

__all__ = ["chat", "sdk", "standin"]  # fixtures


def test_a_text_run_is_translated_and_answered(
    chat: ChatServer, standin: StandIn, sdk: OpenAI
) -> None:
    standin.script(text("Your order ", "ships today."))
    assistant = sdk.beta.assistants.create(
        model="gpt-4-turbo",
        instructions="You are the order desk.",
        tools=FUNCTIONS,  # type: ignore[arg-type]
    )
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "Where is order 7?"}])
    run = sdk.beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=assistant.id,
        additional_instructions="Be brief.",
        temperature=0.2,
        extra_body={"top_p": 0.9},  # SDK 1.20's create_and_poll has no top_p parameter
    )
    assert run.status == "completed"
    assert run.usage is not None
    assert (run.usage.prompt_tokens, run.usage.completion_tokens) == (11, 7)
    messages = sdk.beta.threads.messages.list(thread_id=thread.id, run_id=run.id)
    assert [m.content[0].text.value for m in messages.data] == ["Your order ships today."]  # type: ignore[union-attr]
    (sent,) = standin.wait_requests(1)
    assert sent["model"] == BACKEND_MODEL
    assert sent["messages"] == [
        {"role": "system", "content": "You are the order desk.\n\nBe brief."},
        {"role": "user", "content": "Where is order 7?"},
    ]
    assert sent["tools"] == [{"type": "function", "function": t["function"]} for t in FUNCTIONS]
    assert sent["tool_choice"] == "auto"
    assert (sent["temperature"], sent["top_p"]) == (0.2, 0.9)
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}
    assert standin.headers[0]["authorization"] == f"Bearer {KEY}"


def test_parallel_tool_calls_round_trip_with_matching_ids(
    chat: ChatServer, standin: StandIn, sdk: OpenAI
) -> None:
    standin.script(
        calls(("lookup_order", '{"order": 7}'), ("refund", '{"order": 7, "amount": 5}')),
        text("Refunded 5 on order 7."),
    )
    assistant = sdk.beta.assistants.create(model="gpt-4-turbo", tools=FUNCTIONS)  # type: ignore[arg-type]
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "Refund order 7"}])
    run = sdk.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "requires_action"
    assert run.required_action is not None
    pending = run.required_action.submit_tool_outputs.tool_calls
    assert [(c.function.name, json.loads(c.function.arguments)) for c in pending] == [
        ("lookup_order", {"order": 7}),
        ("refund", {"order": 7, "amount": 5}),
    ]
    ids = [c.id for c in pending]
    assert len(set(ids)) == 2
    assert all(i.startswith("call_") for i in ids)
    run = sdk.beta.threads.runs.submit_tool_outputs_and_poll(
        thread_id=thread.id,
        run_id=run.id,
        tool_outputs=[
            {"tool_call_id": ids[0], "output": "shipped"},
            {"tool_call_id": ids[1], "output": "ok"},
        ],
    )
    assert run.status == "completed"
    first, second = standin.wait_requests(2)
    assert first["messages"][-1] == {
        "role": "user",
        "content": "Refund order 7",
    }
    assert second["messages"] == [
        {"role": "user", "content": "Refund order 7"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": ids[0],
                    "type": "function",
                    "function": {"name": "lookup_order", "arguments": '{"order": 7}'},
                },
                {
                    "id": ids[1],
                    "type": "function",
                    "function": {"name": "refund", "arguments": '{"order": 7, "amount": 5}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": ids[0], "content": "shipped"},
        {"role": "tool", "tool_call_id": ids[1], "content": "ok"},
    ]
    steps = sdk.beta.threads.runs.steps.list(thread_id=thread.id, run_id=run.id, order="asc")
    assert [s.type for s in steps.data] == ["tool_calls", "message_creation"]


def test_backend_chunks_stream_to_the_client_as_deltas(
    chat: ChatServer, standin: StandIn, sdk: OpenAI
) -> None:
    standin.script(text("Par", "cels ", "ship ", "daily."))
    assistant = sdk.beta.assistants.create(model="gpt-4-turbo")
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "When?"}])
    handler = Deltas()
    with sdk.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant.id, event_handler=handler
    ) as stream:
        stream.until_done()
        final = stream.get_final_run()
    assert handler.deltas == ["Par", "cels ", "ship ", "daily."]
    assert final.status == "completed"
    assert standin.wait_requests(1)[0]["stream"] is True


def _thread_with_history(sdk: OpenAI, chat: ChatServer, standin: StandIn, count: int) -> str:
    """A thread of ``count`` question/answer pairs (answered by earlier runs)."""
    assistant = sdk.beta.assistants.create(model="gpt-4-turbo")
    thread = sdk.beta.threads.create()
    for index in range(count):
        standin.script(text(f"answer {index} " + "z" * 400))
        sdk.beta.threads.messages.create(thread.id, role="user", content=f"question {index}")
        run = sdk.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
        assert run.status == "completed"
    return thread.id


def test_truncation_last_messages_and_auto(chat: ChatServer, standin: StandIn, sdk: OpenAI) -> None:
    thread_id = _thread_with_history(sdk, chat, standin, 3)
    assistant = sdk.beta.assistants.create(model="gpt-4-turbo", instructions="Short.")
    sdk.beta.threads.messages.create(thread_id, role="user", content="last question")
    sent_before = len(standin.requests)
    run = sdk.beta.threads.runs.create_and_poll(
        thread_id=thread_id,
        assistant_id=assistant.id,
        truncation_strategy={"type": "last_messages", "last_messages": 2},
    )
    assert run.status == "completed"
    sent = standin.wait_requests(sent_before + 1)[-1]
    assert [m["content"][:8] for m in sent["messages"]] == ["Short.", "answer 2", "last que"]

    # auto with a budget: the oldest messages after the first go until the prompt fits (each
    # answer is ~107 tokens by the 4-characters rule; the whole thread ~361)
    run = sdk.beta.threads.runs.create_and_poll(
        thread_id=thread_id,
        assistant_id=assistant.id,
        truncation_strategy={"type": "auto"},
        max_prompt_tokens=256,
    )
    assert run.status == "completed"
    assert run.incomplete_details is None
    sent = standin.wait_requests(sent_before + 2)[-1]
    assert [m["content"][:8] for m in sent["messages"]] == [
        "Short.",
        "question",  # question 0: the first message stays (what the thread is about)
        # "answer 0 ..." was dropped: the oldest in the middle
        "question",
        "answer 1",
        "question",
        "answer 2",
        "last que",
        "ok",  # the previous run's answer
    ]


def test_a_prompt_that_cannot_fit_ends_incomplete_without_a_call(
    chat: ChatServer, standin: StandIn, sdk: OpenAI
) -> None:
    assistant = sdk.beta.assistants.create(model="gpt-4-turbo", instructions="x" * 2000)
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    run = sdk.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, max_prompt_tokens=256
    )
    assert run.status == "completed"
    assert run.incomplete_details is not None
    assert run.incomplete_details.reason == "max_prompt_tokens"
    assert standin.requests == []


def test_max_completion_tokens_becomes_max_tokens_and_a_cut_answer_is_incomplete(
    chat: ChatServer, standin: StandIn, sdk: OpenAI
) -> None:
    standin.script(text("The answer is long and", finish="length"))
    assistant = sdk.beta.assistants.create(model="gpt-4-turbo")
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "Explain"}])
    run = sdk.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, max_completion_tokens=300
    )
    assert run.status == "completed"
    assert run.incomplete_details is not None
    assert run.incomplete_details.reason == "max_completion_tokens"
    [message] = sdk.beta.threads.messages.list(thread.id, run_id=run.id).data
    assert message.status == "incomplete"
    assert message.content[0].text.value == "The answer is long and"  # type: ignore[union-attr]
    assert standin.wait_requests(1)[0]["max_tokens"] == 300


def test_cancel_mid_stream_closes_the_backend_stream(
    chat: ChatServer, standin: StandIn, sdk: OpenAI
) -> None:
    standin.script(stall("Let me think"))
    assistant = sdk.beta.assistants.create(model="gpt-4-turbo")
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "Think hard"}])
    run = sdk.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    standin.wait_requests(1)
    assert sdk.beta.threads.runs.retrieve(run.id, thread_id=thread.id).status == "in_progress"
    sdk.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    cancelled = sdk.beta.threads.runs.poll(run.id, thread.id)
    assert cancelled.status == "cancelled"
    standin.wait_hangups(1)  # the backend saw its connection closed, not left to finish


def test_429_is_retried_as_the_backend_asks(
    chat: ChatServer, standin: StandIn, sdk: OpenAI
) -> None:
    standin.script(error(429, "slow down", retry_after_ms="0"), text("fine"))
    assistant = sdk.beta.assistants.create(model="gpt-4-turbo")
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    run = sdk.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed"
    assert len(standin.wait_requests(2)) == 2
    assert any("429" in line and "retrying in 0.00 s" in line for line in chat.logs)


@pytest.mark.parametrize(("status", "code"), [(500, "server_error"), (429, "rate_limit_exceeded")])
def test_failures_are_retried_until_the_runs_budget_then_fail_the_run(
    make_server: ServerFactory, standin: StandIn, status: int, code: str
) -> None:
    chat = ChatServer(make_server, standin, run_expiry_s=60)
    sdk = chat.sdk()
    try:
        standin.script(*[error(status, "overloaded", retry_after="30")] * 3)
        assistant = sdk.beta.assistants.create(model="gpt-4-turbo")
        thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
        run = sdk.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
        chat.logs.wait_for("retrying in 30.00 s")
        chat.advance(30)  # the second attempt; a third could not finish before expires_at
        failed = sdk.beta.threads.runs.poll(run.id, thread.id)
    finally:
        sdk.close()
        chat.close()
    assert failed.status == "failed"
    assert failed.last_error is not None
    assert failed.last_error.code == code
    assert f"The chat backend answered {status}" in failed.last_error.message
    assert "overloaded" in failed.last_error.message
    assert "gave up after 2 attempts" in failed.last_error.message
    assert len(standin.requests) == 2


def test_a_dropped_connection_is_retried(chat: ChatServer, standin: StandIn, sdk: OpenAI) -> None:
    standin.script(drop(), text("back"))
    assistant = sdk.beta.assistants.create(model="gpt-4-turbo")
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    run = sdk.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    chat.logs.wait_for("connection broke")
    chat.advance(1)  # our own backoff: at most 0.5 s before the first retry
    done = sdk.beta.threads.runs.poll(run.id, thread.id)
    assert done.status == "completed"
    [message] = sdk.beta.threads.messages.list(thread.id, run_id=run.id).data
    assert message.content[0].text.value == "back"  # type: ignore[union-attr]


def test_a_connection_dropped_mid_answer_fails_the_run(
    chat: ChatServer, standin: StandIn, sdk: OpenAI
) -> None:
    standin.script(drop("Half an ans"))
    assistant = sdk.beta.assistants.create(model="gpt-4-turbo")
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    run = sdk.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "failed"
    assert run.last_error is not None
    assert run.last_error.code == "server_error"
    assert "in the middle of its answer" in run.last_error.message
    assert len(standin.requests) == 1  # never retried: that would repeat what was streamed
