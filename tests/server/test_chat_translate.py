"""The pure parts of the chat backend: a turn as a request body, an answer as model events,
the backend's retry hints and the model-name mapping. Data in, data out."""

from __future__ import annotations

import json

import httpx
import pytest

from assistsync.server.backends import ChatSettings, ChatSettingsError, parse_models
from assistsync.server.backends.chat import backoff, retry_after
from assistsync.server.backends.stream import Answer, BadAnswer, sse_data
from assistsync.server.backends.translate import chat_body, fit, turn_messages
from assistsync.server.runs.model import (
    Failure,
    Incomplete,
    ModelRequest,
    RunConfig,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallRequest,
    Turn,
    Usage,
)


def test_text_before_calls_is_one_assistant_message_and_outputs_follow() -> None:
    turns = [
        Turn("user", "refund 7"),
        Turn("assistant", "Looking it up."),
        Turn("assistant", tool_calls=(ToolCall("call_a", "lookup", "{}", "found"),)),
    ]
    assert turn_messages(turns) == [
        {"role": "user", "content": "refund 7"},
        {
            "role": "assistant",
            "content": "Looking it up.",
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": "{}"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": "found"},
    ]


def test_fit_drops_the_oldest_after_the_first_and_never_orphans_a_tool_message() -> None:
    long = "x" * 400  # ~104 tokens with the message overhead
    messages = [
        {"role": "user", "content": "first"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "f", "arguments": long}}
            ],
        },
        {"role": "tool", "tool_call_id": "c", "content": long},
        {"role": "assistant", "content": long},
        {"role": "user", "content": "newest"},
    ]
    kept = fit([], messages, [], 130)
    assert kept == [messages[0], messages[3], messages[4]]
    assert fit([], messages, [], 10) is None  # even first + newest do not fit


def test_a_body_carries_every_setting_and_omits_what_is_not_set() -> None:
    config = RunConfig(
        model="gpt-4-turbo",
        instructions="Be kind.",
        tools=({"type": "retrieval"}, {"type": "function", "function": {"name": "f"}}),
        response_format={"type": "json_object"},
        max_completion_tokens=400,
    )
    body = chat_body(ModelRequest(config, (Turn("user", "hi"),), context=("【1】 a passage",)), "m")
    assert body == {
        "model": "m",
        "messages": [
            {"role": "system", "content": "Be kind.\n\n【1】 a passage"},
            {"role": "user", "content": "hi"},
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "tool_choice": "auto",
        "response_format": {"type": "json_object"},
        "max_tokens": 400,
    }
    bare = chat_body(ModelRequest(RunConfig("m", ""), ()), "m", include_usage=False)
    assert bare == {"model": "m", "messages": [], "stream": True}


def test_a_prompt_over_budget_with_last_messages_is_incomplete() -> None:
    config = RunConfig(
        "m", "x" * 2000, max_prompt_tokens=256, truncation_strategy={"type": "last_messages"}
    )
    assert chat_body(ModelRequest(config, (Turn("user", "hi"),)), "m") == Incomplete(
        "max_prompt_tokens"
    )


def test_forcing_code_interpreter_is_a_failure() -> None:
    config = RunConfig("m", "", tool_choice={"type": "code_interpreter"})
    body = chat_body(ModelRequest(config, ()), "m")
    assert isinstance(body, Failure)
    assert body.code == "invalid_prompt"


def test_sse_data_reads_events_until_done() -> None:
    lines = [": comment", "event: x", 'data: {"a":', "data: 1}", "", "data: [DONE]", "", "data: 2"]
    assert list(sse_data(lines)) == ['{"a":\n1}']


def _chunk(delta: dict[str, object], finish: str | None = None) -> str:
    return json.dumps({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


def test_an_answer_streams_text_and_call_fragments_at_once_and_calls_when_whole() -> None:
    answer = Answer(prompt_estimate=9)
    events = list(answer.chunk(_chunk({"content": "Hi"})))
    assert events == [TextDelta("Hi")]
    call0 = {"index": 0, "id": "x", "function": {"name": "f", "arguments": '{"a"'}}
    assert list(answer.chunk(_chunk({"tool_calls": [call0]}))) == [ToolCallDelta(0, "f", '{"a"')]
    more = {"index": 0, "function": {"arguments": ": 1}"}}
    assert list(answer.chunk(_chunk({"tool_calls": [more]}))) == [ToolCallDelta(0, None, ": 1}")]
    call1 = {"index": 1, "id": "x", "function": {"name": "g", "arguments": "{}"}}
    assert list(answer.chunk(_chunk({"tool_calls": [call1]}, "tool_calls"))) == [
        ToolCallDelta(1, "g", "{}")
    ]
    # no usage from the backend: estimated (text 2 + calls 1+8+1+2 characters -> 4 tokens)
    assert list(answer.finish()) == [
        ToolCallRequest("f", '{"a": 1}'),
        ToolCallRequest("g", "{}"),
        Usage(9, 4),
    ]


def test_interleaved_calls_are_numbered_in_start_order_and_gathered_by_index() -> None:
    answer = Answer()
    fragments = [
        {"index": 3, "id": "a", "function": {"name": "f", "arguments": ""}},
        {"index": 5, "id": "b", "function": {"name": "g", "arguments": '{"y"'}},
        {"index": 3, "function": {"arguments": '{"x": 1}'}},
        {"index": 5, "function": {"arguments": ": 2}"}},
    ]
    events = [e for f in fragments for e in answer.chunk(_chunk({"tool_calls": [f]}))]
    assert events == [
        ToolCallDelta(0, "f", ""),
        ToolCallDelta(1, "g", '{"y"'),
        ToolCallDelta(0, None, '{"x": 1}'),
        ToolCallDelta(1, None, ": 2}"),
    ]
    assert list(answer.finish())[:2] == [
        ToolCallRequest("f", '{"x": 1}'),
        ToolCallRequest("g", '{"y": 2}'),
    ]


def test_a_cut_answer_drops_its_unfinished_call() -> None:
    answer = Answer()
    fragment = {"index": 0, "function": {"name": "f", "arguments": '{"a": '}}
    data = {"choices": [{"delta": {"tool_calls": [fragment]}, "finish_reason": "length"}]}
    assert list(answer.chunk(json.dumps(data))) == [ToolCallDelta(0, "f", '{"a": ')]
    assert list(answer.finish()) == [Usage(0, 0), Incomplete("max_completion_tokens")]


def test_a_cut_answer_keeps_the_whole_calls_before_the_unfinished_one() -> None:
    answer = Answer()
    whole = {"index": 0, "function": {"name": "f", "arguments": "{}"}}
    cut = {"index": 1, "function": {"name": "g", "arguments": '{"b'}}
    list(answer.chunk(_chunk({"tool_calls": [whole]})))
    list(answer.chunk(_chunk({"tool_calls": [cut]}, "length")))
    assert list(answer.finish())[0::2] == [
        ToolCallRequest("f", "{}"),
        Incomplete("max_completion_tokens"),
    ]


def test_a_chunk_that_is_not_json_is_a_bad_answer() -> None:
    with pytest.raises(BadAnswer, match="not JSON"):
        list(Answer().chunk("<html>"))
    with pytest.raises(BadAnswer, match="reported an error: model not loaded"):
        list(Answer().whole({"error": {"message": "model not loaded"}}))


@pytest.mark.parametrize(
    ("headers", "delay"),
    [
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "600"}, None),
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after(headers: dict[str, str], delay: float | None) -> None:
    assert retry_after(httpx.Headers(headers)) == delay


def test_backoff_doubles_to_eight_seconds_less_jitter() -> None:
    assert 0.375 <= backoff(1) <= 0.5
    assert 6.0 <= backoff(10) <= 8.0


def test_model_names_map_with_a_default_or_pass_through() -> None:
    mapped = ChatSettings("http://h/v1", models=parse_models(["gpt-4=big", "*=small"]))
    assert (mapped.backend_model("gpt-4"), mapped.backend_model("other")) == ("big", "small")
    plain = ChatSettings("http://h/v1", models=parse_models(["gpt-4=big"]))
    assert plain.backend_model("other") == "other"
    assert ChatSettings("http://u:p@h:1/v1/").shown_url == "http://h:1/v1/chat/completions"
    with pytest.raises(ChatSettingsError, match="is not NAME=BACKEND_NAME"):
        parse_models(["=x"])
