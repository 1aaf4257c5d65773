"""Fixtures shared by the retrieval tests: a server on a manual clock answered by ``echo``, the
official SDK 1.20 on it (strict, every response and stream event checked against the spec),
and a streamed run with what the SDK's event handler saw."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from openai import AssistantEventHandler, OpenAI
from openai.types.beta.threads import Message, Text, TextDelta
from openai.types.beta.threads.runs import RunStep
from runs_testkit import RunServer, sdk_client
from server_testkit import ServerFactory


@pytest.fixture
def runs(make_server: ServerFactory) -> RunServer:
    return RunServer(make_server)


@pytest.fixture
def sdk(runs: RunServer) -> Iterator[OpenAI]:
    with sdk_client(runs) as client:
        yield client


class Recorder(AssistantEventHandler):
    """The events, text deltas and finished steps the SDK hands a stream's event handler."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []
        self.deltas: list[TextDelta] = []
        self.steps: list[RunStep] = []

    def on_event(self, event: Any) -> None:
        self.events.append(event.event)

    def on_text_delta(self, delta: TextDelta, snapshot: Text) -> None:
        self.deltas.append(delta)

    def on_run_step_done(self, run_step: RunStep) -> None:
        self.steps.append(run_step)

    @property
    def text(self) -> str:
        return "".join(delta.value or "" for delta in self.deltas)


def stream_question(
    sdk: OpenAI, assistant_id: str, question: str
) -> tuple[Recorder, list[Message]]:
    """Ask ``question`` in a new thread with a streamed run: the recorder, the final messages."""
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": question}])
    recorder = Recorder()
    with sdk.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant_id, event_handler=recorder
    ) as stream:
        stream.until_done()
        return recorder, stream.get_final_messages()
