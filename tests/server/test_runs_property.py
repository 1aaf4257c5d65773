"""Property: whatever clients and time do to runs, every run ends in exactly one terminal state.

Random sequences of create / submit / cancel / advance-the-clock / restart against the real
engine on a real SQLite file; then time runs out for everything still waiting, and every run
and step is checked: one terminal state with its timestamp, consistent times, usage set, no
two active runs on a thread at any point, steps that agree with their run.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from runs_testkit import Rig

from assistsync.server.runs.engine import ACTIVE, TERMINAL, RunConflict, ThreadBusy

THREADS = ("thread_0", "thread_1", "thread_2")
MESSAGES = {
    "text": "hello",
    "calls": 'call lookup_order {"n": 1}\ncall refund {}',
    "fail": "echo:fail server_error",
    "sleep": "echo:sleep 30\nslow",
}

operation = st.one_of(
    st.tuples(st.just("create"), st.sampled_from(THREADS), st.sampled_from(sorted(MESSAGES))),
    st.tuples(st.just("submit"), st.integers(0, 20)),
    st.tuples(st.just("cancel"), st.integers(0, 20)),
    st.tuples(st.just("advance"), st.sampled_from([1, 30, 200, 601])),
    st.tuples(st.just("restart")),
)

RESTING = (*TERMINAL, "requires_action")


def _settle_all(rig: Rig, runs: list[dict[str, Any]]) -> None:
    """Wait until no run is moving on its own (a sleeping run rests in progress)."""
    for run in runs:
        sleeping = run["kind"] == "sleep"
        rig.settle(run, until=("in_progress",) if sleeping else ())


def _check_one_active_per_thread(rig: Rig) -> None:
    with rig.db.write() as conn:
        rows = conn.execute(
            f"SELECT thread_id, COUNT(*) AS n FROM runs WHERE status IN {ACTIVE} GROUP BY thread_id"
        ).fetchall()
    assert all(row["n"] <= 1 for row in rows), [dict(r) for r in rows]


def _check_final(rig: Rig, runs: list[dict[str, Any]]) -> None:
    for created in runs:
        run = rig.get(created)
        status = run["status"]
        assert status in TERMINAL, run
        stamps = {s: run[f"{s}_at"] for s in ("completed", "failed", "cancelled")}
        assert [s for s, at in stamps.items() if at is not None] == (
            [] if status == "expired" else [status]
        ), run
        # An expired run ends at the expires_at it was created with; its steps end when the
        # expiry was noticed. Every terminal run has expires_at null.
        end = stamps.get(status) or created["expires_at"]
        steps_end = float("inf") if status == "expired" else end
        assert run["created_at"] <= end
        assert run["expires_at"] is None
        if run["started_at"] is not None:
            assert run["created_at"] <= run["started_at"] <= end
        assert run["usage"] is not None
        assert run["required_action"] is None
        assert (run["last_error"] is not None) == (status == "failed")
        allowed = {"completed", status}
        for step in rig.steps(run):
            assert step["status"] in allowed, (run, step)
            assert run["created_at"] <= step["created_at"] <= steps_end
            step_end = step[f"{step['status']}_at"]
            assert step["created_at"] <= step_end <= steps_end
            assert step["usage"] is not None or step["status"] != "completed"
            if step["type"] == "tool_calls" and step["status"] == "completed":
                calls = step["step_details"]["tool_calls"]
                assert all(c["function"]["output"] is not None for c in calls)
        for message in rig.messages.all(run["thread_id"]):
            assert message["status"] != "in_progress", message


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.lists(operation, min_size=1, max_size=12))
def test_every_run_ends_in_exactly_one_terminal_state(ops: list[tuple[Any, ...]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "runs.db"
        rig = Rig(db)
        runs: list[dict[str, Any]] = []
        try:
            for op in ops:
                if op[0] == "create":
                    _, thread, kind = op
                    try:
                        run = rig.run(thread, MESSAGES[kind])
                    except ThreadBusy:
                        with rig.db.write() as conn:
                            assert rig.engine.active_run(conn, thread) is not None
                    else:
                        runs.append({**run, "kind": kind})
                elif op[0] in ("submit", "cancel") and runs:
                    target = runs[op[1] % len(runs)]
                    current = rig.get(target)
                    try:
                        if op[0] == "cancel":
                            rig.engine.cancel_run(target["thread_id"], target["id"])
                        else:
                            calls = (current["required_action"] or {}).get(
                                "submit_tool_outputs", {"tool_calls": []}
                            )["tool_calls"]
                            outputs = [(call["id"], "ok") for call in calls]
                            rig.engine.submit_tool_outputs(
                                target["thread_id"], target["id"], outputs
                            )
                    except RunConflict:
                        allowed = ACTIVE[:3] if op[0] == "cancel" else ("requires_action",)
                        assert rig.get(target)["status"] not in allowed
                elif op[0] == "advance":
                    rig.clock.advance(op[1])
                    rig.engine.tick()
                elif op[0] == "restart":
                    now = rig.clock.now()
                    rig.stop()
                    rig = Rig(db, start=False)
                    rig.clock.advance(now - rig.clock.now())  # time goes on across restarts
                    rig.start()
                _settle_all(rig, runs)
                _check_one_active_per_thread(rig)
            rig.clock.advance(1000)
            rig.engine.tick()
            for run in runs:
                rig.settle(run)
            _check_final(rig, runs)
        finally:
            rig.stop()
