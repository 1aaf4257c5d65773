"""Recorded answers: record what a model said, replay it without the model, refuse a change."""

from __future__ import annotations

from pathlib import Path

from assistsync.server.recording import REPLAY_MISS, Recorder, digest
from assistsync.server.runs.echo import EchoModel
from assistsync.server.runs.model import (
    Failure,
    ModelRequest,
    RunConfig,
    TextDelta,
    ToolCall,
    Turn,
)


def request(text: str, call_id: str = "call_1") -> ModelRequest:
    return ModelRequest(
        RunConfig(model="gpt-4", instructions="Be brief."),
        (
            Turn("user", text),
            Turn("assistant", tool_calls=(ToolCall(call_id, "f", "{}", "out"),)),
        ),
    )


class Exploding:
    def respond(self, request: ModelRequest) -> list[object]:
        raise AssertionError("replay must never ask the model")


def test_digest_ignores_call_ids_but_not_the_conversation() -> None:
    assert digest(request("hi", "call_1")) == digest(request("hi", "call_2"))
    assert digest(request("hi")) != digest(request("hi!"))


def test_record_then_replay_without_the_model(tmp_path: Path) -> None:
    echo = EchoModel()
    recorded = list(Recorder(lambda name: echo, tmp_path, "record")("m").respond(request("hi")))
    assert any(isinstance(e, TextDelta) for e in recorded)
    [path] = tmp_path.glob("*.json")
    assert '"answer": "echo: f returned out"' in path.read_text()
    replay = Recorder(lambda name: Exploding(), tmp_path, "replay")  # type: ignore[arg-type, return-value]
    assert list(replay("m").respond(request("hi", "call_9"))) == recorded
    assert list(replay("m").respond(request("changed"))) == [Failure("invalid_prompt", REPLAY_MISS)]
