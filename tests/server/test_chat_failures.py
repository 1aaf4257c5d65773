"""What a chat backend refuses or cannot do, and what a run says about it: rejected tools and
response_format, a backend without streamed usage, a silent backend, the key kept out of
everything, code_interpreter, and the concurrency bound."""

from __future__ import annotations

import httpx
from chat_fixtures import FUNCTIONS, KEY, ChatServer, chat, sdk, standin
from chat_testkit import WAIT_S, StandIn, error, stall, text
from openai import OpenAI
from runs_testkit import parse_sse
from server_testkit import AUTH, BETA, ServerFactory

__all__ = ["chat", "sdk", "standin"]  # fixtures


def _run(sdk: OpenAI, **fields: object) -> tuple[str, str]:
    """Create an assistant, a thread and a run (polled to rest); (thread id, run id)."""
    assistant = sdk.beta.assistants.create(
        model="gpt-4-turbo",
        tools=fields.pop("tools", FUNCTIONS),  # type: ignore[arg-type]
    )
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    run = sdk.beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=assistant.id,
        **fields,  # type: ignore[arg-type]
    )
    return thread.id, run.id


def test_a_backend_that_rejects_tools_fails_the_run_saying_so(
    chat: ChatServer, standin: StandIn, sdk: OpenAI
) -> None:
    standin.script(error(400, "This model does not support tools"))
    thread_id, run_id = _run(sdk)
    run = sdk.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
    assert run.status == "failed"
    assert run.last_error is not None
    assert run.last_error.code == "server_error"
    assert run.last_error.message.startswith("The chat backend rejected the run's function tools")
    assert "400: This model does not support tools" in run.last_error.message
    assert len(standin.requests) == 1  # a refusal is not retried


def test_a_backend_that_rejects_json_mode_fails_the_run_saying_so(
    chat: ChatServer, standin: StandIn, sdk: OpenAI
) -> None:
    standin.script(error(400, "response_format is not supported"))
    thread_id, run_id = _run(sdk, response_format={"type": "json_object"})
    run = sdk.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
    assert run.status == "failed"
    assert run.last_error is not None
    assert "rejected response_format json_object" in run.last_error.message
    assert standin.requests[0]["response_format"] == {"type": "json_object"}


def test_streamed_usage_falls_back_when_the_backend_refuses_it(
    make_server: ServerFactory,
) -> None:
    standin = StandIn(reject_stream_options=True)
    chat = ChatServer(make_server, standin)
    sdk = chat.sdk()
    try:
        thread_id, run_id = _run(sdk, tools=[])
        run = sdk.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
        _run(sdk, tools=[])
    finally:
        sdk.close()
        chat.close()
        standin.close()
    assert run.status == "completed"
    # estimated when the backend sends none: the prompt "hi" (4 + 1), the answer "ok" (1)
    assert run.usage is not None
    assert (run.usage.prompt_tokens, run.usage.completion_tokens) == (5, 1)
    first, second, third = standin.requests
    assert "stream_options" in first
    assert "stream_options" not in second  # asked again without it
    assert "stream_options" not in third  # and remembered


def test_a_silent_backend_times_out_and_is_retried(make_server: ServerFactory) -> None:
    standin = StandIn()
    chat = ChatServer(make_server, standin, read_timeout_s=0.2)
    sdk = chat.sdk()
    try:
        standin.script(stall(), text("awake"))
        assistant = sdk.beta.assistants.create(model="gpt-4-turbo")
        thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
        run = sdk.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
        chat.logs.wait_for("sent nothing for 0.2 s")
        chat.advance(1)
        done = sdk.beta.threads.runs.poll(run.id, thread.id)
    finally:
        sdk.close()
        chat.close()
        standin.close()
    assert done.status == "completed"
    assert len(standin.requests) == 2


def test_the_backend_key_appears_nowhere(chat: ChatServer, standin: StandIn, sdk: OpenAI) -> None:
    standin.script(error(401, f"Incorrect API key provided: {KEY}"))
    assistant = sdk.beta.assistants.create(model="gpt-4-turbo")
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    with httpx.Client(base_url=chat.handle.base_url, headers={**AUTH, **BETA}) as http:
        response = http.post(
            f"/threads/{thread.id}/runs",
            json={"assistant_id": assistant.id, "stream": True},
            timeout=WAIT_S,
        )
    streamed = response.text
    run_id = next(data["id"] for name, data in parse_sse(streamed) if name == "thread.run.created")
    run = sdk.beta.threads.runs.retrieve(run_id, thread_id=thread.id)
    steps = sdk.beta.threads.runs.steps.list(run_id, thread_id=thread.id)
    assert run.status == "failed"
    assert run.last_error is not None
    assert "401" in run.last_error.message
    assert "[key]" in run.last_error.message
    assert "(the server sent the key in STANDIN_CHAT_KEY)" in run.last_error.message
    assert standin.headers[0]["authorization"] == f"Bearer {KEY}"  # it was sent, only there
    everything = [streamed, run.model_dump_json(), steps.model_dump_json(), *chat.logs]
    assert not [part for part in everything if KEY in part]
    assert "failed" in streamed


def test_code_interpreter_is_never_offered_and_cannot_be_forced(
    chat: ChatServer, standin: StandIn, sdk: OpenAI
) -> None:
    tools = [{"type": "code_interpreter"}, {"type": "retrieval"}, *FUNCTIONS]
    thread_id, run_id = _run(sdk, tools=tools)
    assert sdk.beta.threads.runs.retrieve(run_id, thread_id=thread_id).status == "completed"
    assert [t["function"]["name"] for t in standin.requests[0]["tools"]] == [
        "lookup_order",
        "refund",
    ]
    thread_id, run_id = _run(sdk, tools=tools, tool_choice={"type": "retrieval"})
    assert standin.requests[1]["tool_choice"] == "auto"  # the server searches; the model may call
    thread_id, run_id = _run(sdk, tools=tools, tool_choice={"type": "code_interpreter"})
    run = sdk.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
    assert run.status == "failed"
    assert run.last_error is not None
    assert run.last_error.code == "invalid_prompt"
    assert "code_interpreter, which this server does not run" in run.last_error.message
    assert len(standin.requests) == 2  # no call for that one
    _run(sdk, tool_choice={"type": "function", "function": {"name": "refund"}})
    assert standin.requests[2]["tool_choice"] == {
        "type": "function",
        "function": {"name": "refund"},
    }
    _run(sdk, tool_choice="none")
    assert standin.requests[3]["tool_choice"] == "none"


def test_chat_concurrency_bounds_the_calls_in_flight(make_server: ServerFactory) -> None:
    standin = StandIn()
    chat = ChatServer(make_server, standin, concurrency=1)
    sdk = chat.sdk()
    try:
        standin.script(stall("first "), text("second"))
        assistant = sdk.beta.assistants.create(model="gpt-4-turbo")
        threads = [
            sdk.beta.threads.create(messages=[{"role": "user", "content": "hi"}]) for _ in "ab"
        ]
        first = sdk.beta.threads.runs.create(thread_id=threads[0].id, assistant_id=assistant.id)
        standin.wait_requests(1)
        second = sdk.beta.threads.runs.create(thread_id=threads[1].id, assistant_id=assistant.id)
        # the second run is in progress, waiting for the one slot the first one holds
        chat.engine.wait_for(threads[1].id, second.id, lambda r: r["status"] != "queued", WAIT_S)
        standin.release()
        runs = [
            sdk.beta.threads.runs.poll(first.id, threads[0].id),
            sdk.beta.threads.runs.poll(second.id, threads[1].id),
        ]
    finally:
        sdk.close()
        chat.close()
        standin.close()
    assert [r.status for r in runs] == ["completed", "completed"]
    assert len(standin.requests) == 2
    assert standin.max_in_flight == 1
