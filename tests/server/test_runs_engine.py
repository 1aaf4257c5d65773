"""The run engine on its own: lifecycle, steps, expiry and restarts, with a manual clock."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from runs_testkit import Rig, drain

from assistsync.server.runs.echo import EchoModel, tokens
from assistsync.server.runs.engine import RESTARTED, RunConflict, ThreadBusy
from assistsync.server.runs.events import Subscription
from assistsync.server.runs.model import ModelEvent, ModelRequest, TextDelta, Usage


@pytest.fixture
def rig() -> Iterator[Rig]:
    made = Rig()
    yield made
    made.stop()


def test_a_text_run_completes_with_one_message_step(rig: Rig) -> None:
    sub = Subscription()
    created = rig.run("thread_a", "hello there", subscription=sub)
    assert created["status"] == "queued"
    assert created["expires_at"] == created["created_at"] + 600
    assert created["started_at"] is None
    assert created["usage"] is None
    events = drain(sub)
    run = rig.get(created)
    assert run["status"] == "completed"
    assert run["started_at"] == run["completed_at"] == created["created_at"]
    assert run["expires_at"] is None
    assert run["usage"]["total_tokens"] == run["usage"]["prompt_tokens"] + 5
    [step] = rig.steps(run)
    assert step["type"] == "message_creation"
    assert step["status"] == "completed"
    assert step["usage"] == run["usage"]
    [_, answer] = rig.messages.all("thread_a")
    assert answer["id"] == step["step_details"]["message_creation"]["message_id"]
    assert answer["content"][0]["text"]["value"] == "echo: hello there"
    assert answer["status"] == "completed"
    assert answer["run_id"] == run["id"]
    names = [name for name, _ in events]
    assert names == [
        "thread.run.created",
        "thread.run.queued",
        "thread.run.in_progress",
        "thread.run.step.created",
        "thread.run.step.in_progress",
        "thread.message.created",
        "thread.message.in_progress",
        "thread.message.delta",
        "thread.message.delta",
        "thread.message.delta",
        "thread.message.completed",
        "thread.run.step.completed",
        "thread.run.completed",
    ]
    deltas = [d["delta"]["content"][0]["text"]["value"] for n, d in events if n.endswith("delta")]
    assert "".join(deltas) == "echo: hello there"
    # Event data are snapshots: the step was in progress when it was created.
    assert events[3][1]["status"] == "in_progress"
    assert events[-1][1] == run


def test_parallel_calls_wait_for_every_output_then_answer_with_them(rig: Rig) -> None:
    sub = Subscription()
    text = 'call lookup_order {"order_id": "42"}\ncall refund {"amount": 5}\ncall unknown {}'
    run = rig.run("thread_b", text, subscription=sub)
    events = drain(sub)
    assert events[-1][0] == "thread.run.requires_action"
    run = rig.get(run)
    assert run["status"] == "requires_action"
    calls = run["required_action"]["submit_tool_outputs"]["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["lookup_order", "refund"]
    assert json.loads(calls[0]["function"]["arguments"]) == {"order_id": "42"}
    ids = [c["id"] for c in calls]
    assert len(set(ids)) == 2
    assert all(i.startswith("call_") for i in ids)
    [step] = rig.steps(run)
    assert step["type"] == "tool_calls"
    assert step["status"] == "in_progress"
    assert step["usage"] is None
    assert [c["function"]["output"] for c in step["step_details"]["tool_calls"]] == [None, None]
    assert run["usage"] is None

    with pytest.raises(RunConflict) as missing:
        rig.engine.submit_tool_outputs("thread_b", run["id"], [(ids[0], "shipped")])
    assert missing.value.param == "tool_outputs"
    with pytest.raises(RunConflict) as unknown:
        rig.engine.submit_tool_outputs("thread_b", run["id"], [(ids[0], "a"), ("call_nope", "b")])
    assert unknown.value.param == "tool_outputs[1].tool_call_id"

    sub = Subscription()
    queued = rig.engine.submit_tool_outputs(
        "thread_b", run["id"], [(ids[1], "refunded"), (ids[0], "shipped")], subscription=sub
    )
    assert queued["status"] == "queued"
    assert queued["required_action"] is None
    events = drain(sub)
    assert [n for n, _ in events][:3] == [
        "thread.run.step.completed",
        "thread.run.queued",
        "thread.run.in_progress",
    ]
    run = rig.get(run)
    assert run["status"] == "completed"
    tool_step, message_step = rig.steps(run)
    assert tool_step["status"] == "completed"
    assert [c["function"]["output"] for c in tool_step["step_details"]["tool_calls"]] == [
        "shipped",
        "refunded",
    ]
    assert message_step["type"] == "message_creation"
    answer = rig.messages.all("thread_b")[-1]["content"][0]["text"]["value"]
    assert answer == "echo: lookup_order returned shipped; refund returned refunded"
    usage = run["usage"]
    steps_total = tool_step["usage"]["total_tokens"] + message_step["usage"]["total_tokens"]
    assert usage["total_tokens"] == steps_total
    with pytest.raises(RunConflict, match='Runs in status "completed" do not accept'):
        rig.engine.submit_tool_outputs("thread_b", run["id"], [(ids[0], "x")])


def test_one_active_run_per_thread(rig: Rig) -> None:
    run = rig.run("thread_c", "call lookup_order {}")
    run = rig.settle(run)
    assert run["status"] == "requires_action"
    with pytest.raises(ThreadBusy) as busy:
        rig.run("thread_c")
    assert busy.value.message == f"Thread thread_c already has an active run {run['id']}."
    with rig.db.write() as conn:
        assert rig.engine.active_run(conn, "thread_c") == run["id"]
        assert rig.engine.active_run(conn, "thread_other") is None


def test_requires_action_expires_by_the_clock(rig: Rig) -> None:
    run = rig.settle(rig.run("thread_d", "call refund {}"))
    rig.clock.advance(599)
    rig.engine.tick()
    assert rig.get(run)["status"] == "requires_action"
    rig.clock.advance(1)
    rig.engine.tick()
    expired = rig.get(run)
    assert expired["status"] == "expired"
    # Terminal: expires_at is null, as for every other end (the step keeps the time).
    assert expired["expires_at"] is None
    assert expired["required_action"] is None
    [step] = rig.steps(run)
    assert step["status"] == "expired"
    assert step["expired_at"] == run["expires_at"]
    with pytest.raises(RunConflict):
        rig.engine.cancel_run("thread_d", run["id"])
    # The thread is free again.
    assert rig.settle(rig.run("thread_d", "again"))["status"] == "completed"


def test_a_settable_expiry() -> None:
    rig = Rig(run_expiry_s=5)
    try:
        run = rig.settle(rig.run("thread_e", "call refund {}"))
        assert run["expires_at"] == run["created_at"] + 5
        rig.clock.advance(5)
        # A read after the deadline expires the run even before the timer ticks.
        assert rig.get(run)["status"] == "expired"
    finally:
        rig.stop()


def test_cancel_from_queued_in_progress_and_requires_action() -> None:
    rig = Rig(start=False)
    try:
        queued = rig.run("thread_q", "hello")
        # No worker is running, yet the queued run is cancelled at once.
        cancelled = rig.engine.cancel_run("thread_q", queued["id"])
        assert cancelled["status"] == "cancelled"
        rig.start()
        done = rig.settle(queued)
        assert done["status"] == "cancelled"
        assert done["cancelled_at"] is not None
        assert done["started_at"] is None
        assert rig.steps(done) == []

        slow = rig.run("thread_p", "echo:sleep 30\nhello")
        rig.settle(slow, until=("in_progress",))
        assert rig.engine.cancel_run("thread_p", slow["id"])["status"] == "cancelling"
        done = rig.settle(slow)
        assert done["status"] == "cancelled"
        assert rig.steps(done) == []

        waiting = rig.settle(rig.run("thread_r", "call refund {}"))
        assert rig.engine.cancel_run("thread_r", waiting["id"])["status"] == "cancelled"
        done = rig.get(waiting)
        assert done["status"] == "cancelled"
        assert done["expires_at"] is None
        [step] = rig.steps(done)
        assert step["status"] == "cancelled"
        assert step["cancelled_at"] == done["cancelled_at"]
        with pytest.raises(RunConflict, match="Cannot cancel run with status 'cancelled'"):
            rig.engine.cancel_run("thread_r", waiting["id"])
    finally:
        rig.stop()


def test_a_run_sleeping_on_the_clock_finishes_when_time_moves(rig: Rig) -> None:
    slow = rig.run("thread_s", "echo:sleep 10\nhi")
    rig.settle(slow, until=("in_progress",))
    rig.clock.advance(9)
    assert rig.get(slow)["status"] == "in_progress"
    rig.clock.advance(1)
    done = rig.settle(slow)
    assert done["status"] == "completed"
    assert done["completed_at"] == done["started_at"] + 10


def test_failure_sets_last_error_and_streams_an_error_event(rig: Rig) -> None:
    sub = Subscription()
    run = rig.run("thread_f", "echo:fail rate_limit_exceeded", subscription=sub)
    events = drain(sub)
    failed = rig.get(run)
    assert failed["status"] == "failed"
    assert failed["failed_at"] is not None
    assert failed["expires_at"] is None
    assert failed["last_error"]["code"] == "rate_limit_exceeded"
    assert [n for n, _ in events][-2:] == ["thread.run.failed", "error"]
    assert events[-1][1] == {
        "code": "rate_limit_exceeded",
        "message": failed["last_error"]["message"],
        "param": None,
        "type": "requests",
    }


def test_max_completion_tokens_cuts_the_answer(rig: Rig) -> None:
    text = "word " * 400
    run = rig.settle(rig.run("thread_m", text, max_completion_tokens=256))
    assert run["status"] == "completed"
    assert run["incomplete_details"] == {"reason": "max_completion_tokens"}
    message = rig.messages.all("thread_m")[-1]
    assert message["status"] == "incomplete"
    assert message["incomplete_details"] == {"reason": "max_tokens"}
    assert len(message["content"][0]["text"]["value"]) == 256 * 4
    assert run["usage"]["completion_tokens"] == 256


def test_a_restart_settles_every_run(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    first = Rig(db)
    waiting = first.settle(first.run("thread_1", "call refund {}"))
    running = first.run("thread_2", "echo:sleep 60\nhi")
    first.settle(running, until=("in_progress",))
    first.stop()

    second = Rig(db, start=False)
    try:
        queued = second.run("thread_3", "pick me up")
        second.start()
        failed = second.get(running)
        assert failed["status"] == "failed"
        assert failed["last_error"] == {"code": "server_error", "message": RESTARTED}
        kept = second.get(waiting)
        assert kept["status"] == "requires_action"
        assert kept["expires_at"] == waiting["expires_at"]
        assert second.settle(queued)["status"] == "completed"
    finally:
        second.stop()


def test_a_run_still_in_progress_expires(rig: Rig) -> None:
    slow = rig.run("thread_x", "echo:sleep 1000\nhi")
    rig.settle(slow, until=("in_progress",))
    rig.clock.advance(600)
    rig.engine.tick()
    expired = rig.settle(slow)
    assert expired["status"] == "expired"
    assert expired["usage"] is not None
    # The worker was woken and let the run go; the thread takes a new run at once.
    assert rig.settle(rig.run("thread_x", "again"))["status"] == "completed"
    assert rig.engine.errors == []


class Scripted:
    """A model backend that answers from a script (the interface a real backend implements)."""

    def __init__(self, *events: Any, crash: bool = False) -> None:
        self.events = events
        self.crash = crash
        self.requests: list[ModelRequest] = []

    def respond(self, request: ModelRequest) -> Iterator[ModelEvent]:
        self.requests.append(request)
        yield from self.events
        if self.crash:
            raise RuntimeError("backend went away")


def test_a_pluggable_backend_answers_and_its_crash_fails_the_run() -> None:
    good = Scripted(TextDelta("from "), TextDelta("elsewhere"), Usage(7, 2))
    broken = Scripted(TextDelta("half"), crash=True)
    rig = Rig(models=lambda name: broken if name == "broken" else good)
    try:
        run = rig.settle(rig.run("thread_g", "hi", model="custom-model"))
        assert run["status"] == "completed"
        assert run["usage"] == {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}
        assert rig.messages.all("thread_g")[-1]["content"][0]["text"]["value"] == "from elsewhere"
        [request] = good.requests
        assert request.config.model == "custom-model"
        assert request.config.instructions == "Be brief."
        assert [t.text for t in request.conversation] == ["hi"]

        failed = rig.settle(rig.run("thread_h", "hi", model="broken"))
        assert failed["status"] == "failed"
        assert failed["last_error"] == {
            "code": "server_error",
            "message": "The model backend for 'broken' failed: RuntimeError.",
        }
        answer = rig.messages.all("thread_h")[-1]
        assert answer["status"] == "incomplete"
        assert answer["incomplete_details"] == {"reason": "run_failed"}
        assert answer["content"][0]["text"]["value"] == "half"
        [step] = rig.steps(failed)
        assert step["status"] == "failed"
        assert step["last_error"]["code"] == "server_error"
        assert "backend went away" in rig.engine.errors[-1]
    finally:
        rig.stop()


class Stalling:
    """Writes part of an answer, then waits on the clock for longer than the run may live."""

    def respond(self, request: ModelRequest) -> Iterator[ModelEvent]:
        yield TextDelta("partial ")
        if request.sleep(10_000):
            yield TextDelta("never")


def test_a_message_cut_by_expiry_keeps_what_was_written() -> None:
    stalling = Stalling()
    rig = Rig(
        models=lambda name: stalling if name == "stalling" else EchoModel(), max_concurrent_runs=1
    )
    try:
        sub = Subscription()
        run = rig.run("thread_s", "hi", subscription=sub, model="stalling")
        # The stream shows the message being written before the run expires.
        seen = [sub.get(timeout=30) for _ in range(8)]
        assert [e[0] for e in seen if e is not None][-1] == "thread.message.delta"
        rig.clock.advance(600)
        rig.engine.tick()
        assert rig.settle(run)["status"] == "expired"
        # One worker: once another run completes, the first worker has let go of the first.
        assert rig.settle(rig.run("thread_t", "next"))["status"] == "completed"
        message = rig.messages.all("thread_s")[-1]
        assert message["status"] == "incomplete"
        assert message["incomplete_details"] == {"reason": "run_expired"}
        assert message["content"][0]["text"]["value"] == "partial "
        [step] = rig.steps(run)
        assert step["status"] == "expired"
        assert rig.engine.errors == []
    finally:
        rig.stop()


def test_cancelling_a_queued_run_does_not_wait_for_a_worker() -> None:
    stalling = Stalling()
    rig = Rig(
        models=lambda name: stalling if name == "stalling" else EchoModel(), max_concurrent_runs=1
    )
    try:
        busy = rig.run("thread_busy", "hi", model="stalling")
        rig.settle(busy, until=("in_progress",))
        # The only worker is taken: this run stays queued until it is cancelled.
        sub = Subscription()
        queued = rig.run("thread_wait", "hello", subscription=sub)
        cancelled = rig.engine.cancel_run("thread_wait", queued["id"])
        assert cancelled["status"] == "cancelled"
        assert cancelled["cancelled_at"] == cancelled["created_at"]
        assert cancelled["expires_at"] is None
        assert cancelled["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        assert rig.get(queued) == cancelled
        assert [name for name, _ in drain(sub)] == [
            "thread.run.created",
            "thread.run.queued",
            "thread.run.cancelling",
            "thread.run.cancelled",
        ]
        # The thread is free at once (no ThreadBusy), though the worker is still busy.
        again = rig.run("thread_wait", "again")
        assert rig.get(again)["status"] == "queued"
        assert rig.get(busy)["status"] == "in_progress"
    finally:
        rig.stop()


def test_a_run_cancelled_mid_answer_counts_what_was_written() -> None:
    stalling = Stalling()
    rig = Rig(models=lambda name: stalling)
    try:
        sub = Subscription()
        run = rig.run("thread_c", "hi", subscription=sub)
        while (event := sub.get(timeout=30)) is not None and event[0] != "thread.message.delta":
            pass
        assert rig.engine.cancel_run("thread_c", run["id"])["status"] == "cancelling"
        done = rig.settle(run)
        assert done["status"] == "cancelled"
        # Estimated as the echo model counts: one token per 4 characters, rounded up.
        prompt = tokens(len("Be brief.") + len("hi"))
        written = tokens(len("partial "))
        assert done["usage"] == {
            "prompt_tokens": prompt,
            "completion_tokens": written,
            "total_tokens": prompt + written,
        }
        message = rig.messages.all("thread_c")[-1]
        assert message["content"][0]["text"]["value"] == "partial "
        assert message["incomplete_details"] == {"reason": "run_cancelled"}
    finally:
        rig.stop()
