"""An approved apply (``--auto-approve``, a saved plan) starts its changes as soon as the plan
is made, while the plan is still being printed; the output is the same as without the overlap
(the plan, then one line per resource), and Ctrl-C while the plan is printed is Ctrl-C during
the apply: what finished is recorded and told, exit 130.

The overlap is observed without clocks: the CLI's stdout is a pipe nobody reads yet, and the
plan is larger than a pipe holds, so the plan cannot have been printed in full while the server
already receives creates.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2ekit import API_KEY, Api, Project, cli_env

from assistsync import pipeline
from assistsync.api import ApiClient
from assistsync.applier import Applier, Event, HeldEvents
from assistsync.github.apply import ApplyInputs, run_apply
from assistsync.github.event import Runner
from assistsync.model import Lock
from assistsync.server import ServerHandle

N = 30
CREATES = "POST /v1/assistants"


def _big_project(project: Project) -> None:
    """N assistants whose plan is several pipe buffers long (4 KB of instructions each)."""
    body = ["assistants:"]
    for i in range(N):
        body += [f"  bot-{i:02d}:", "    model: gpt-4", "    instructions: |"]
        body += [f"      Line {j} of the instructions of bot {i}, long enough." for j in range(80)]
    project.write("assistants/many.yaml", "\n".join(body) + "\n")


def _start_apply(project: Project, server: ServerHandle) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "assistsync", "-C", str(project.root), "apply", "--auto-approve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(server.base_url),
    )


def _wait_for_creates(server: ServerHandle, proc: subprocess.Popen[str] | None = None) -> None:
    """Until the server has received a create (the CLI's stdout still unread)."""
    deadline = time.monotonic() + 60
    while server.stats.by_route.get(CREATES, 0) == 0:
        assert proc is None or proc.poll() is None, "apply ended without sending a create"
        assert time.monotonic() < deadline, "no create arrived"
        time.sleep(0.02)


def test_an_approved_apply_starts_while_the_plan_is_printed_and_its_lines_follow_it(
    project: Project, api: Api, server: ServerHandle
) -> None:
    _big_project(project)
    proc = _start_apply(project, server)
    _wait_for_creates(server, proc)  # the plan (> 64 KB) cannot all be in the pipe yet
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert len(out) > 2 * 65536  # more than a pipe holds (64 KB on Linux)
    plan_end = out.index(f"Plan: {N + 4} to add, 0 to change, 0 to destroy.")
    first_line = min(out.index(": Creating..."), out.index(": Uploading..."))
    assert plan_end < first_line
    # between the plan and the first progress line: exactly the blank line, as before
    assert out[plan_end:first_line].count("\n") == 2
    assert len(re.findall(r": Creation complete after \d+\.\ds \[id=asst_\w+\]\n", out)) == N + 2
    assert (
        out.rstrip("\n")
        .splitlines()[-1]
        .startswith(f"Apply complete! Resources: {N + 4} added, 0 changed, 0 destroyed.")
    )
    assert len(api.by_key()) == N + 2


def test_ctrl_c_while_the_plan_is_printed_stops_the_apply_as_during_it(
    project: Project, api: Api, server: ServerHandle
) -> None:
    _big_project(project)
    server.faults.latency_ms = 300
    proc = _start_apply(project, server)
    _wait_for_creates(server, proc)
    proc.send_signal(signal.SIGINT)  # the CLI is still writing its plan into the full pipe
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    told = err.strip().splitlines()[-1]  # what Ctrl-C during the apply says, word for word
    finished, not_started = (int(n) for n in re.findall(r"\d+", told)[:2])
    assert told.startswith(f"Interrupted: {finished} change"), err
    assert told.endswith(
        f" recorded in the lock; {not_started} did not start. "
        "Run 'assistsync apply' again to finish the job."
    ), err
    assert finished + not_started == N + 4  # every step either finished or did not start
    assert not_started > 0, "the interrupt came too late to test anything"
    server.faults.latency_ms = 0
    lock = project.lock()
    live = api.by_key()
    assert {k: v["id"] for k, v in lock["assistants"].items()} == {
        k: a["id"] for k, a in live.items()
    }
    assert len(lock["assistants"]) + len(lock["files"]) == finished
    # the lines of what finished come after the plan's (cut) text, never inside it
    for line in re.findall(r"^.*Creation complete after.*$", out, re.MULTILINE):
        assert line.startswith("assistant.")
    resumed = project.run("apply", "--auto-approve")
    assert resumed.code == 0, resumed.all
    assert len(api.by_key()) == N + 2


def test_interrupt_from_another_thread_stops_an_apply_like_ctrl_c(
    project: Project, api: Api, server: ServerHandle
) -> None:
    _big_project(project)
    saved: list[Lock] = []
    events: list[Event] = []
    with ApiClient(server.base_url, "sk-x") as client:
        plan = pipeline.plan(client, project.root).plan
        held = HeldEvents()
        running = Applier(client, plan, save=saved.append, concurrency=2, events=held).start()
        stopped = threading.Event()

        def sink(event: Event) -> None:
            events.append(event)
            if event.phase == "done" and event.address.startswith("assistant."):
                running.interrupt()  # as the CLI does when Ctrl-C comes during printing
                stopped.set()

        held.release(sink)
        result = running.result()
    assert stopped.is_set()
    assert result.interrupted
    assert not result.ok
    assert result.made == result.recorded == len(api.by_key()) + len(api.files())
    assert result.made + result.not_started == plan.steps
    assert result.not_started > 0
    assert {k: e.id for k, e in saved[-1].assistants.items()} == {
        k: a["id"] for k, a in api.by_key().items()
    }
    started = {e.address for e in events if e.phase == "start"}
    finished = {e.address for e in events if e.phase == "done"}
    assert started == finished  # every change that started finished; nothing failed


def test_the_action_applies_while_it_logs_the_plan(
    project: Project, api: Api, server: ServerHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    _big_project(project)
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    log: list[str] = []

    def echo(text: str) -> None:
        if not log:  # the plan: the apply is already under way while it is logged
            _wait_for_creates(server)
        log.append(text)

    runner = Runner(workspace=project.root.parent)
    code = run_apply(ApplyInputs(working_directory=project.root.name), runner, echo)
    assert code == 0, "\n".join(log)
    assert log[0].endswith(f"Plan: {N + 4} to add, 0 to change, 0 to destroy.")
    lines = log[1:]
    assert sum(": Creation complete after " in line for line in lines) == N + 2
    assert lines[-1].startswith(f"Apply complete! Resources: {N + 4} added")
    assert len(api.by_key()) == N + 2


@contextlib.contextmanager
def _unwritable_lock_directory(locks: Path, state: Path) -> Iterator[None]:
    """``locks`` read-only but its ``.assistsync`` writable (from ``state``): the one-writer
    lock can be taken, the lock file cannot be written. A read-only bind mount as root
    (permissions do not stop root), ``chmod`` otherwise."""
    if os.geteuid() != 0:
        locks.chmod(0o555)
        try:
            yield
        finally:
            locks.chmod(0o755)
        return
    steps = [
        ["mount", "--bind", str(locks), str(locks)],
        ["mount", "-o", "remount,bind,ro", str(locks)],
        ["mount", "--bind", str(state), str(locks / ".assistsync")],
    ]
    done = 0
    try:
        for step in steps:
            run = subprocess.run(step, capture_output=True, check=False)
            if run.returncode != 0:
                pytest.skip(f"cannot mount here: {run.stderr.decode().strip()}")
            done += 1
        yield
    finally:
        if done == 3:
            subprocess.run(["umount", "-l", str(locks / ".assistsync")], check=False)
        if done:
            subprocess.run(["umount", "-l", str(locks)], check=False)


def test_a_lock_that_cannot_be_written_is_told_after_the_plan(
    project: Project, api: Api, server: ServerHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    # whether the lock can be written is now checked before the plan is printed (the apply
    # starts then); the error is still told after the plan, and nothing changes
    project.write(
        "assistsync.yaml", "manifests:\n  - assistants/*.yaml\nlock: locks/assistsync.lock\n"
    )
    locks = project.root / "locks"
    (locks / ".assistsync").mkdir(parents=True)
    state = project.root.parent / "state"
    state.mkdir()
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    log: list[str] = []
    with _unwritable_lock_directory(locks, state):
        result = project.run("apply", "--auto-approve")
        code = run_apply(
            ApplyInputs(working_directory=project.root.name),
            Runner(workspace=project.root.parent),
            log.append,
        )
    assert result.code == 1, result.all
    assert result.out.endswith("Plan: 4 to add, 0 to change, 0 to destroy.\n\n")
    assert "cannot write the lock file" in result.err
    assert "Nothing was changed" in result.err
    assert code == 1
    assert log[0].endswith("Plan: 4 to add, 0 to change, 0 to destroy.")
    assert log[1].startswith("Error: ")
    assert "cannot write the lock file" in log[1]
    assert api.assistants() == []
    assert api.files() == []
