"""Runs answered by a chat-completions backend, end to end: the SDK 1.20 (strict) drives the
real server, whose runs call the stand-in backend over loopback. Each test checks both sides:
what the backend received (the translation, message by message) and what the SDK sees."""

from __future__ import annotations

import json

from chat_fixtures import BACKEND_MODEL, FUNCTIONS, KEY, ChatServer, chat, sdk, standin
from chat_testkit import StandIn, calls, text
from openai import OpenAI

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
