"""A run cut short mid-answer — cancelled by the client or expired by the clock — reports the
usage of what the model had done by then, the same way whichever ended it: the model's own
report when it had sent one, else an estimate of the prompt and of what it had written so far
(text, and the fragments of a call being streamed), counted as the echo model counts."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from runs_testkit import WAIT_S, Rig

from assistsync.server.runs.echo import EchoModel, tokens
from assistsync.server.runs.model import (
    ModelEvent,
    ModelRequest,
    TextDelta,
    ToolCallDelta,
    Usage,
)

PROMPT = tokens(len("Be brief.") + len("hi"))  # the run's instructions and the user's message


class WritesThenWaits:
    """Sends ``events``, then waits on the clock far longer than the run may live."""

    def __init__(self, *events: ModelEvent) -> None:
        self.events = events
        self.waiting = threading.Event()
        """Set once the engine has taken every event and asked for the next."""

    def respond(self, request: ModelRequest) -> Iterator[ModelEvent]:
        yield from self.events
        self.waiting.set()
        if request.sleep(10_000):
            yield TextDelta("never")


WRITTEN = {
    "text": ((TextDelta("partial "),), (PROMPT, tokens(len("partial ")))),
    "call-fragment": (
        (ToolCallDelta(0, "lookup_order", '{"order": 7'),),
        (PROMPT, tokens(len("lookup_order") + len('{"order": 7'))),
    ),
    "text-and-call": (
        (TextDelta("Looking. "), ToolCallDelta(0, "refund", "{")),
        (PROMPT, tokens(len("Looking. ") + len("refund") + len("{"))),
    ),
    "reported": ((TextDelta("partial "), Usage(7, 2)), (7, 2)),
}


@pytest.mark.parametrize("ended", ["cancelled", "expired"])
@pytest.mark.parametrize("written", list(WRITTEN))
def test_a_run_cut_short_counts_what_was_written(ended: str, written: str) -> None:
    events, (prompt, completion) = WRITTEN[written]
    model = WritesThenWaits(*events)
    rig = Rig(models=lambda name: model if name == "cut" else EchoModel(), max_concurrent_runs=1)
    try:
        run = rig.run("thread_u", "hi", model="cut")
        assert model.waiting.wait(WAIT_S)
        if ended == "cancelled":
            rig.engine.cancel_run("thread_u", run["id"])
        else:
            rig.clock.advance(600)
            rig.engine.tick()
        done = rig.settle(run)
        assert done["status"] == ended
        assert done["usage"] == {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        # The only worker let the run go (it answers the next one) and changed it no more.
        assert rig.settle(rig.run("thread_v", "next"))["status"] == "completed"
        assert rig.get(run) == done
        assert rig.engine.errors == []
    finally:
        rig.stop()
