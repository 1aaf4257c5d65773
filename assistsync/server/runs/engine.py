"""The run engine: the run lifecycle, executed by a bounded pool of workers, persisted in SQLite.

HTTP handlers only call the short, transactional methods here (create, cancel, submit, read);
a worker thread does the slow part — asking the model — so no request ever waits on a model.

Lifecycle (API.md, "Threads, messages, runs and run steps")::

    queued -> in_progress -> completed | failed | requires_action | cancelling
    requires_action --submit--> queued      requires_action --expires_at--> expired
    in_progress --cancel--> cancelling -> cancelled (by the run's worker)
    queued | requires_action --cancel--> cancelling -> cancelled (both in the cancel request)

A created run is ``queued`` with ``expires_at = created_at + run_expiry_s``; every status sets
its timestamp; terminal runs have ``expires_at`` null, ``expired`` ones included (the run object
has no ``expired_at``; their open steps record it). ``usage`` is null until the run ends, then
the sum of its steps' (a run cancelled or expired mid-answer counts what the model had written
so far — text and streamed call fragments — estimated when it had not reported usage yet).
Each turn of the model becomes a step: ``message_creation`` (its assistant message streamed as
it is written) or ``tool_calls`` (``in_progress`` until the outputs come, then ``completed``
with each ``output`` filled).

Time comes from an injected :class:`~.clock.Clock`: expiry happens in :meth:`RunEngine.tick`,
called by a timer thread in production and by tests after advancing a manual clock.

After a restart (:meth:`RunEngine.start`), queued runs are picked up again, a run that was in
progress fails with ``server_error`` ("the server restarted during this run"), a cancelling
run is cancelled, and requires_action runs keep their expiry: nothing stays non-terminal.

Every change is published, after its transaction commits, to the run's subscriptions (see
:mod:`.events`); one engine-wide order lock around "commit, then publish" keeps the events of a
run in the order its changes were committed, even when a cancel races a worker.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from assistsync.server.db import Database, Schema, dumps, new_id
from assistsync.server.runs.clock import Clock, as_clock
from assistsync.server.runs.echo import EchoModel, prompt_tokens, tokens
from assistsync.server.runs.events import ENDS_STREAM, Event, Subscription
from assistsync.server.runs.model import (
    Failure,
    Incomplete,
    Model,
    ModelRequest,
    ModelSource,
    RunConfig,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallRequest,
    Turn,
    Usage,
    truncate,
)
from assistsync.server.runs.ports import Messages
from assistsync.server.runs.retrieval_step import annotations_of, retrieve

Json = dict[str, Any]

ACTIVE = ("queued", "in_progress", "requires_action", "cancelling")
"""A thread holds at most one run in these states."""
TERMINAL = ("completed", "failed", "cancelled", "expired")
DEFAULT_RUN_EXPIRY_S = 600
RESTARTED = "the server restarted during this run"

SCHEMA = Schema(
    "runs",
    (
        """
CREATE TABLE runs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    thread_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    status TEXT NOT NULL,
    expires_at INTEGER,
    body TEXT NOT NULL,
    usage TEXT NOT NULL DEFAULT '[0, 0]'
);
CREATE INDEX runs_order ON runs (thread_id, created_at, seq);
CREATE INDEX runs_status ON runs (status);
CREATE TABLE run_steps (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    run_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    usage TEXT
);
CREATE INDEX run_steps_order ON run_steps (run_id, created_at, seq);
-- A deleted thread takes its runs and their steps with it, as its messages go with it.
CREATE TRIGGER threads_delete_runs AFTER DELETE ON threads BEGIN
    DELETE FROM run_steps WHERE run_id IN (SELECT id FROM runs WHERE thread_id = old.id);
    DELETE FROM runs WHERE thread_id = old.id;
END;
""",
    ),
)
"""The engine's tables: each object's public JSON in ``body``, plus the columns queries need.
``usage`` holds what the public object does not show yet (a run's running total; the usage of
a tool-calls step still waiting for its outputs)."""


def default_workers() -> int:
    """Runs executed at once by default: 4 per core (echo runs are CPU-light; real backends
    mostly wait on the network), at least 4 and at most 64."""
    return max(4, min(64, 4 * (os.cpu_count() or 1)))


def _echo_for_every_model(_: str) -> Model:
    return _ECHO


_ECHO = EchoModel()


@dataclass(frozen=True)
class NewRun:
    """A run to create: the thread, the assistant, and the effective settings.

    ``fields`` holds the run object's recorded settings: ``model``, ``instructions`` (a
    string), ``tools``, ``file_ids``, ``metadata``, ``temperature``, ``top_p``,
    ``max_prompt_tokens``, ``max_completion_tokens``, ``truncation_strategy``,
    ``tool_choice``, ``response_format``.
    """

    thread_id: str
    assistant_id: str
    fields: Json


class RunNotFound(LookupError):
    """No such run (or step) on that thread."""


class RunConflict(ValueError):
    """The run is not in a state that allows the operation (the message says why)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class ThreadBusy(RunConflict):
    """The thread already has an active run."""


@dataclass
class _Pending:
    """Changes of one transaction: events to publish once it has committed.

    Each event's data is serialised when it is added (the objects go on changing after), and
    only when someone streams the run: most runs are polled, and nobody reads their events.
    """

    events: list[tuple[str, Event]]
    streamed: Callable[[str], bool]

    def add(self, run_id: str, name: str, data: Json) -> None:
        self.events.append((run_id, (name, dumps(data) if self.streamed(run_id) else "")))


class RunEngine:
    """Creates, executes, cancels and expires runs (see the module docstring)."""

    def __init__(
        self,
        db: Database,
        messages: Messages,
        *,
        clock: Clock | None = None,
        models: ModelSource | None = None,
        max_concurrent_runs: int | None = None,
        run_expiry_s: int = DEFAULT_RUN_EXPIRY_S,
        tick_interval_s: float | None = None,
    ) -> None:
        """``tick_interval_s``: how often a timer thread expires runs (None: only when
        :meth:`tick` is called, as tests with a manual clock do)."""
        if run_expiry_s < 1:
            raise ValueError("run_expiry_s must be at least 1")
        self.db = db
        self.messages = messages
        self.clock: Clock = clock or as_clock(db.clock)
        self.models: ModelSource = models or _echo_for_every_model
        self.workers = max_concurrent_runs or default_workers()
        if self.workers < 1:
            raise ValueError("max_concurrent_runs must be at least 1")
        self.run_expiry_s = run_expiry_s
        self.tick_interval_s = tick_interval_s
        # Held across "commit, then publish", so a run's events go out in commit order.
        self._order = threading.RLock()
        # Guards the subscriptions and waiters only (never held while waiting for the database).
        self._registry = threading.Lock()
        self._queue: list[str] = []
        self._queue_cond = threading.Condition()
        self._busy: set[str] = set()  # runs a worker is executing now
        self._stop_runs: set[str] = set()  # ... and that it should stop (cancelled, expired)
        self._writers: dict[str, _TurnWriter] = {}  # ... and the turn each is writing
        self._subs: dict[str, list[Subscription]] = {}
        self._waiters: dict[str, list[threading.Event]] = {}  # see wait_for
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self.errors: list[str] = []
        """Tracebacks of unexpected failures inside workers (each also failed its run)."""

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Recover runs left by a previous process, then start the workers (and timer)."""
        self._recover()
        for index in range(self.workers):
            self._spawn(self._work, f"assistsync-run-worker-{index}")
        if self.tick_interval_s is not None:
            self._spawn(self._timer, "assistsync-run-timer")

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self, timeout: float = 10) -> None:
        """Stop the workers; a run being executed stops at its model's next event (a run
        interrupted this way is failed by the next :meth:`start`, as after a crash)."""
        with self._queue_cond:
            self._stopping = True
            self._queue_cond.notify_all()
        self.clock.interrupt()
        with self._registry:
            for waiting in self._waiters.values():
                for waiter in waiting:
                    waiter.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []
        stopping = dumps(
            {
                "code": "server_error",
                "message": "The server is shutting down; the run continues when it restarts "
                "(a run that was in progress fails).",
                "param": None,
                "type": "server_error",
            }
        )
        with self._registry:
            for subs in self._subs.values():
                for sub in subs:
                    sub.put(("error", stopping))
                    sub.end()
            self._subs.clear()

    def unsubscribe(self, run_id: str, subscription: Subscription) -> None:
        """Stop delivering the run's events to ``subscription`` (its client went away)."""
        with self._registry:
            subs = self._subs.get(run_id, [])
            if subscription in subs:
                subs.remove(subscription)
            if not subs:
                self._subs.pop(run_id, None)

    def _recover(self) -> None:
        now = self._now()
        with self._commit() as (db, pending):
            for row in db.execute(
                "SELECT * FROM runs WHERE status IN ('in_progress', 'cancelling') ORDER BY seq"
            ).fetchall():
                run = json.loads(row["body"])
                if run["status"] == "in_progress":
                    error = {"code": "server_error", "message": RESTARTED}
                    self._end_open_steps(db, pending, run, "failed", now, error)
                    self._finish(db, pending, run, "failed", now, last_error=error)
                else:
                    self._end_open_steps(db, pending, run, "cancelled", now)
                    self._finish(db, pending, run, "cancelled", now)
            queued = [
                row["id"]
                for row in db.execute("SELECT id FROM runs WHERE status = 'queued' ORDER BY seq")
            ]
        for run_id in queued:
            self._enqueue(run_id)
        self.tick()

    # -- reading ------------------------------------------------------------------------------

    @staticmethod
    def active_run(db: sqlite3.Connection, thread_id: str) -> str | None:
        """The id of the thread's active run, if any (the messages group's lock check)."""
        row = db.execute(
            f"SELECT id FROM runs WHERE thread_id = ? AND status IN {ACTIVE} "
            "ORDER BY seq DESC LIMIT 1",
            (thread_id,),
        ).fetchone()
        return None if row is None else str(row["id"])

    @staticmethod
    def _run_row(db: sqlite3.Connection, thread_id: str, run_id: str) -> Json:
        row = db.execute(
            "SELECT body FROM runs WHERE id = ? AND thread_id = ?", (run_id, thread_id)
        ).fetchone()
        if row is None:
            raise RunNotFound(f"No run found with id '{run_id}'.")
        run: Json = json.loads(row["body"])
        return run

    def get_run(self, thread_id: str, run_id: str) -> Json:
        """The run as it is now (expiring it first if its time has passed)."""
        with self.db.read() as db:
            run = self._run_row(db, thread_id, run_id)
        if run["status"] in ACTIVE and self._is_due(run):
            self.tick()
            with self.db.read() as db:
                run = self._run_row(db, thread_id, run_id)
        return run

    def wait_for(
        self, thread_id: str, run_id: str, done: Callable[[Json], bool], timeout: float
    ) -> Json:
        """The run once ``done(run)`` holds, or as it is after ``timeout`` seconds.

        Lets a polling client's GET return the moment a run moves on instead of a poll
        interval later. (Real time on purpose: this bounds how long a request is held.)
        """
        deadline = time.monotonic() + timeout
        while True:
            # Registered before the read, so a change committed in between still wakes us.
            waiter = threading.Event()
            with self._registry:
                self._waiters.setdefault(run_id, []).append(waiter)
            try:
                run = self.get_run(thread_id, run_id)
                left = deadline - time.monotonic()
                if done(run) or left <= 0 or self._stopping:
                    return run
                waiter.wait(left)
            finally:
                with self._registry:
                    waiting = self._waiters.get(run_id, [])
                    if waiter in waiting:
                        waiting.remove(waiter)
                    if not waiting:
                        self._waiters.pop(run_id, None)

    def step_rows(self, db: sqlite3.Connection, run_id: str) -> list[Json]:
        """Every step of the run, oldest first."""
        return [
            json.loads(row["body"])
            for row in db.execute(
                "SELECT body FROM run_steps WHERE run_id = ? ORDER BY created_at, seq", (run_id,)
            )
        ]

    # -- handler-side changes -----------------------------------------------------------------

    @contextlib.contextmanager
    def _commit(self) -> Iterator[tuple[sqlite3.Connection, _Pending]]:
        """A transaction whose events are published after it commits (under the order lock)."""
        pending = _Pending([], self._streamed)
        with self._order:
            with self.db.write() as db:
                yield db, pending
            self._publish(pending)

    def create_run(
        self,
        new: NewRun | Callable[[sqlite3.Connection], NewRun],
        *,
        prepare: Callable[[sqlite3.Connection], str | None] | None = None,
        subscription: Subscription | None = None,
    ) -> Json:
        """Create a queued run and hand it to the workers.

        ``new`` may be a function of the transaction's connection (to read the thread and the
        assistant under the same lock). Inside the same transaction, after the thread-lock
        check: ``prepare`` (add the run's ``additional_messages``; or create the thread,
        returning its id, when ``new`` has none).
        ``subscription`` receives every event of the run from ``thread.run.created`` on.
        Raises :class:`ThreadBusy` when the thread has an active run.
        """
        run_id = new_id("run_")
        now = self._now()
        with self._commit() as (db, pending):
            if not isinstance(new, NewRun):
                new = new(db)
            thread_id = new.thread_id
            active = self.active_run(db, thread_id) if thread_id else None
            if active is not None:
                raise ThreadBusy(f"Thread {thread_id} already has an active run {active}.")
            if prepare is not None:
                thread_id = prepare(db) or thread_id
            run = self._new_run_object(run_id, replace(new, thread_id=thread_id), now)
            db.execute(
                "INSERT INTO runs (id, thread_id, created_at, status, expires_at, body) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, thread_id, now, "queued", run["expires_at"], dumps(run)),
            )
            if subscription is not None:
                self._subscribe(run_id, subscription)
            pending.add(run_id, "thread.run.created", run)
            pending.add(run_id, "thread.run.queued", run)
        self._enqueue(run_id)
        return run

    def _new_run_object(self, run_id: str, new: NewRun, now: int) -> Json:
        fields = new.fields
        return {
            "id": run_id,
            "object": "thread.run",
            "created_at": now,
            "assistant_id": new.assistant_id,
            "thread_id": new.thread_id,
            "status": "queued",
            "started_at": None,
            "expires_at": now + self.run_expiry_s,
            "cancelled_at": None,
            "failed_at": None,
            "completed_at": None,
            "required_action": None,
            "last_error": None,
            "model": fields["model"],
            "instructions": fields["instructions"],
            "tools": fields["tools"],
            "file_ids": fields["file_ids"],
            "metadata": fields["metadata"],
            "usage": None,
            "temperature": fields["temperature"],
            "top_p": fields["top_p"],
            "max_prompt_tokens": fields["max_prompt_tokens"],
            "max_completion_tokens": fields["max_completion_tokens"],
            "truncation_strategy": fields["truncation_strategy"],
            "incomplete_details": None,
            "tool_choice": fields["tool_choice"],
            "response_format": fields["response_format"],
        }

    def modify_run(self, thread_id: str, run_id: str, metadata: Json | None) -> Json:
        """Replace the run's metadata (None leaves it as it is)."""
        with self._commit() as (db, _):
            run = self._run_row(db, thread_id, run_id)
            if metadata is not None:
                run["metadata"] = metadata
                self._save(db, run)
            return run

    def cancel_run(self, thread_id: str, run_id: str) -> Json:
        """Cancel an active run.

        An ``in_progress`` run moves to ``cancelling``, and its worker makes it ``cancelled``
        at the model's next event. A ``queued`` or ``requires_action`` run has no model
        working on it: it is ``cancelled`` at once, in this transaction (streams still see
        ``thread.run.cancelling`` then ``thread.run.cancelled``), so it never waits for a free
        worker while holding its thread.
        """
        self.tick()  # a run past its expires_at has expired, whether or not the timer saw it
        with self._commit() as (db, pending):
            run = self._run_row(db, thread_id, run_id)
            status = run["status"]
            if status not in ("queued", "in_progress", "requires_action"):
                raise RunConflict(f"Cannot cancel run with status '{status}'.")
            run["status"] = "cancelling"
            self._save(db, run)
            pending.add(run_id, "thread.run.cancelling", run)
            if status != "in_progress":
                now = self._now()
                self._end_open_steps(db, pending, run, "cancelled", now)
                self._finish(db, pending, run, "cancelled", now)
        if status == "in_progress":
            self._interrupt(run_id)
        else:
            self._dequeue(run_id)
        return run

    def submit_tool_outputs(
        self,
        thread_id: str,
        run_id: str,
        outputs: list[tuple[str, str]],
        *,
        subscription: Subscription | None = None,
    ) -> Json:
        """Fill the pending calls' outputs (all of them, in one request) and queue the run."""
        self.tick()
        now = self._now()
        with self._commit() as (db, pending):
            run = self._run_row(db, thread_id, run_id)
            if run["status"] != "requires_action":
                raise RunConflict(
                    f'Runs in status "{run["status"]}" do not accept tool outputs.', None
                )
            calls = run["required_action"]["submit_tool_outputs"]["tool_calls"]
            wanted = [call["id"] for call in calls]
            given: dict[str, str] = {}
            for index, (call_id, output) in enumerate(outputs):
                param = f"tool_outputs[{index}].tool_call_id"
                if call_id not in wanted:
                    raise RunConflict(
                        f"Invalid '{param}': no tool call '{call_id}' is waiting for an output "
                        f"in run {run_id}; the pending calls are {', '.join(wanted)}.",
                        param,
                    )
                if call_id in given:
                    raise RunConflict(
                        f"Invalid '{param}': an output for '{call_id}' was already given.", param
                    )
                given[call_id] = output
            missing = [call_id for call_id in wanted if call_id not in given]
            if missing:
                raise RunConflict(
                    f"Expected tool outputs for call_ids {wanted}, got {list(given)}: missing "
                    f"{', '.join(missing)}. Submit every output of the run in one request.",
                    "tool_outputs",
                )
            # The waiting tool_calls step (a streamed one may be older than the turn's message).
            step_row = db.execute(
                "SELECT body, usage FROM run_steps WHERE run_id = ? "
                "AND json_extract(body, '$.type') = 'tool_calls' "
                "AND json_extract(body, '$.status') = 'in_progress' ORDER BY seq DESC LIMIT 1",
                (run_id,),
            ).fetchone()
            step: Json = json.loads(step_row["body"])
            for call in step["step_details"]["tool_calls"]:
                call["function"]["output"] = given[call["id"]]
            step["status"] = "completed"
            step["completed_at"] = now
            step["usage"] = _usage_object(json.loads(step_row["usage"] or "[0, 0]"))
            self._save_step(db, step)
            run["status"] = "queued"
            run["required_action"] = None
            self._save(db, run)
            if subscription is not None:
                self._subscribe(run_id, subscription)
            pending.add(run_id, "thread.run.step.completed", step)
            pending.add(run_id, "thread.run.queued", run)
        self._enqueue(run_id)
        return run

    def tick(self) -> None:
        """Expire every active run whose ``expires_at`` has passed."""
        now = self._now()
        with self.db.read() as db:
            due = db.execute(
                "SELECT 1 FROM runs WHERE status IN ('queued', 'in_progress', "
                "'requires_action') AND expires_at <= ? LIMIT 1",
                (now,),
            ).fetchone()
        if due is None:
            return
        stop: list[str] = []
        with self._commit() as (db, pending):
            for row in db.execute(
                "SELECT body FROM runs WHERE status IN ('queued', 'in_progress', "
                "'requires_action') AND expires_at <= ? ORDER BY seq",
                (now,),
            ).fetchall():
                run = json.loads(row["body"])
                if run["status"] == "in_progress":
                    stop.append(run["id"])
                    # Counted here, as a cancel counts it: the worker's close() finds the run
                    # settled and leaves it.
                    self._add_usage(db, run["id"], self._usage_so_far(run["id"]))
                self._end_open_steps(db, pending, run, "expired", now)
                self._finish(db, pending, run, "expired", now)
        for run_id in stop:
            self._interrupt(run_id)

    def _timer(self) -> None:
        interval = self.tick_interval_s or 1.0
        while not self._stopping:
            # Real time on purpose: the timer only decides how often to look.
            if not self.clock.sleep_until(self.clock.now() + interval, lambda: self._stopping):
                return
            try:
                self.tick()
            except Exception:
                self.errors.append(traceback.format_exc())

    def _is_due(self, run: Json) -> bool:
        expires = run.get("expires_at")
        return expires is not None and expires <= self._now()

    # -- workers ------------------------------------------------------------------------------

    def _enqueue(self, run_id: str) -> None:
        with self._queue_cond:
            self._queue.append(run_id)
            self._queue_cond.notify()

    def _dequeue(self, run_id: str) -> None:
        """Drop the run's waiting queue entries (a worker taking one finds it ended anyway)."""
        with self._queue_cond:
            self._queue[:] = [queued for queued in self._queue if queued != run_id]

    def _interrupt(self, run_id: str) -> None:
        with self._queue_cond:
            if run_id in self._busy:
                self._stop_runs.add(run_id)
        self.clock.interrupt()

    def _usage_so_far(self, run_id: str) -> tuple[int, int]:
        """The usage of the turn a worker is writing for the run (none: nothing yet)."""
        with self._queue_cond:
            writer = self._writers.get(run_id)
        return (0, 0) if writer is None else writer.usage_so_far()

    def _should_stop(self, run_id: str) -> bool:
        return self._stopping or run_id in self._stop_runs

    def _take(self) -> str | None:
        """The next queued run no other worker is executing; None when stopping."""
        with self._queue_cond:
            while True:
                if self._stopping:
                    return None
                for index, run_id in enumerate(self._queue):
                    if run_id not in self._busy:
                        del self._queue[index]
                        self._busy.add(run_id)
                        return run_id
                self._queue_cond.wait()

    def _work(self) -> None:
        while (run_id := self._take()) is not None:
            try:
                self._turn(run_id)
            except Exception:
                self.errors.append(traceback.format_exc())
                self._fail_after_crash(run_id)
            finally:
                with self._queue_cond:
                    self._busy.discard(run_id)
                    self._stop_runs.discard(run_id)
                    self._writers.pop(run_id, None)
                    self._queue_cond.notify_all()

    def _fail_after_crash(self, run_id: str) -> None:
        with contextlib.suppress(Exception), self._commit() as (db, pending):
            row = db.execute("SELECT body FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                return
            run = json.loads(row["body"])
            if run["status"] in TERMINAL:
                return
            error = {
                "code": "server_error",
                "message": "The server had an error while running this run; its log has the "
                "details.",
            }
            self._end_open_steps(db, pending, run, "failed", self._now(), error)
            self._finish(db, pending, run, "failed", self._now(), last_error=error)

    def _turn(self, run_id: str) -> None:
        """Execute one turn of a run: from ``queued`` to its next resting state."""
        started = self.clock.now()
        now = int(started)
        with self._commit() as (db, pending):
            row = db.execute("SELECT body FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                return
            run: Json = json.loads(row["body"])
            if run["status"] == "cancelling":
                self._end_open_steps(db, pending, run, "cancelled", now)
                self._finish(db, pending, run, "cancelled", now)
                return
            if run["status"] != "queued":
                return  # already handled (a duplicate queue entry, or expired meanwhile)
            run["status"] = "in_progress"
            if run["started_at"] is None:
                run["started_at"] = now
            self._save(db, run)
            pending.add(run_id, "thread.run.in_progress", run)
            conversation = self._conversation(db, run)
        config = _config(run)
        retrieved = retrieve(self, run, conversation)  # see .retrieval_step
        request = ModelRequest(
            config,
            conversation,
            sleep=self._sleeper(run_id, started),
            sleep_until=lambda deadline: self.clock.sleep_until(
                deadline, lambda: self._should_stop(run_id)
            ),
            expires_at=run["expires_at"],
            now=self.clock.now,
            context=retrieved.context,
        )
        writer = _TurnWriter(self, run)
        writer.request = request
        with self._queue_cond:
            self._writers[run_id] = writer
        try:
            try:
                for event in retrieved.cite(self.models(config.model).respond(request)):
                    if self._should_stop(run_id):
                        break
                    writer.take(event)
                    if isinstance(event, Failure):
                        break
            except RunNotFound:
                raise
            except Exception as exc:
                self.errors.append(traceback.format_exc())
                writer.take(
                    Failure(
                        "server_error",
                        f"The model backend for '{config.model}' failed: {type(exc).__name__}.",
                    )
                )
            if self._stopping:
                return  # shutting down mid-turn: the next start() fails the run, as after a crash
            writer.close()
        except RunNotFound:
            return  # its thread was deleted meanwhile, and the run with it

    def _sleeper(self, run_id: str, started: float) -> Callable[[float], bool]:
        """The model's ``sleep``: waits add up from the moment the turn started (when the run
        became ``in_progress``), not from when the model got round to asking, so whoever sees
        the run in progress and moves a manual clock on by N wakes an ``echo:sleep N`` exactly."""
        wake = started

        def sleep(seconds: float) -> bool:
            nonlocal wake
            wake += seconds
            return self.clock.sleep_until(wake, lambda: self._should_stop(run_id))

        return sleep

    def _conversation(self, db: sqlite3.Connection, run: Json) -> tuple[Turn, ...]:
        """The thread's messages (other runs' answers included), truncated, then this run's
        own turns: its messages and its calls with their outputs."""
        thread_turns: list[Turn] = []
        own_messages: dict[str, str] = {}
        for message in self.messages.thread_messages(db, run["thread_id"]):
            text = _text_of(message)
            if message.get("run_id") == run["id"]:
                own_messages[message["id"]] = text
            else:
                if message["role"] == "assistant":
                    thread_turns.append(Turn("assistant", text))
                else:
                    thread_turns.append(Turn("user", text))
        turns = list(truncate(thread_turns, run["truncation_strategy"] or {"type": "auto"}))
        for step in self.step_rows(db, run["id"]):
            details = step["step_details"]
            if details["type"] == "message_creation":
                text = own_messages.get(details["message_creation"]["message_id"], "")
                turns.append(Turn("assistant", text))
            else:
                calls = tuple(
                    ToolCall(
                        call["id"],
                        call["function"]["name"],
                        call["function"]["arguments"],
                        call["function"]["output"],
                    )
                    for call in details["tool_calls"]
                    if call["type"] == "function"
                )
                if calls:  # a retrieval step is no turn of the conversation
                    turns.append(Turn("assistant", tool_calls=calls))
        return tuple(turns)

    # -- state changes shared by the paths above ------------------------------------------------

    def _now(self) -> int:
        return int(self.clock.now())

    @staticmethod
    def _save(db: sqlite3.Connection, run: Json) -> None:
        db.execute(
            "UPDATE runs SET status = ?, expires_at = ?, body = ? WHERE id = ?",
            (run["status"], run["expires_at"], dumps(run), run["id"]),
        )

    @staticmethod
    def _save_step(db: sqlite3.Connection, step: Json) -> None:
        db.execute("UPDATE run_steps SET body = ? WHERE id = ?", (dumps(step), step["id"]))

    def _add_usage(self, db: sqlite3.Connection, run_id: str, usage: tuple[int, int]) -> None:
        row = db.execute("SELECT usage FROM runs WHERE id = ?", (run_id,)).fetchone()
        prompt, completion = json.loads(row["usage"])
        db.execute(
            "UPDATE runs SET usage = ? WHERE id = ?",
            (dumps([prompt + usage[0], completion + usage[1]]), run_id),
        )

    def _new_step(
        self,
        db: sqlite3.Connection,
        run: Json,
        details: Json,
        now: int,
        usage: tuple[int, int] | None = None,
    ) -> Json:
        step = {
            "id": new_id("step_"),
            "object": "thread.run.step",
            "created_at": now,
            "run_id": run["id"],
            "assistant_id": run["assistant_id"],
            "thread_id": run["thread_id"],
            "type": details["type"],
            "status": "in_progress",
            "cancelled_at": None,
            "completed_at": None,
            "expired_at": None,
            "failed_at": None,
            "last_error": None,
            "step_details": details,
            "usage": None,
            "metadata": {},
        }
        db.execute(
            "INSERT INTO run_steps (id, run_id, created_at, body, usage) VALUES (?, ?, ?, ?, ?)",
            (step["id"], run["id"], now, dumps(step), dumps(list(usage)) if usage else None),
        )
        return step

    def _end_open_steps(
        self,
        db: sqlite3.Connection,
        pending: _Pending,
        run: Json,
        status: str,
        now: int,
        error: Json | None = None,
        ended_message: str | None = None,
    ) -> None:
        """End the run's in-progress steps (and their messages, but ``ended_message``, which
        the caller has already ended) with ``status``."""
        reason = {"cancelled": "run_cancelled", "expired": "run_expired"}.get(status, "run_failed")
        for step in self.step_rows(db, run["id"]):
            if step["status"] != "in_progress":
                continue
            step["status"] = status
            step[f"{status}_at"] = now
            if error is not None:
                step["last_error"] = _step_error(error)
            self._save_step(db, step)
            details = step["step_details"]
            message_id = (details.get("message_creation") or {}).get("message_id")
            if message_id is not None and message_id != ended_message:
                message = self.messages.finish_assistant_message(db, message_id, None, now, reason)
                pending.add(run["id"], "thread.message.incomplete", message)
            pending.add(run["id"], f"thread.run.step.{status}", step)

    def _finish(
        self,
        db: sqlite3.Connection,
        pending: _Pending,
        run: Json,
        status: str,
        now: int,
        *,
        last_error: Json | None = None,
        incomplete: str | None = None,
    ) -> None:
        """Move the run to a terminal ``status`` with its timestamp and usage."""
        run["status"] = status
        if status != "expired":  # the run object has no expired_at
            run[f"{status}_at"] = now
        run["expires_at"] = None
        run["required_action"] = None
        run["last_error"] = last_error
        if incomplete is not None:
            run["incomplete_details"] = {"reason": incomplete}
        row = db.execute("SELECT usage FROM runs WHERE id = ?", (run["id"],)).fetchone()
        run["usage"] = _usage_object(json.loads(row["usage"]))
        self._save(db, run)
        pending.add(run["id"], f"thread.run.{status}", run)
        if last_error is not None:
            pending.add(run["id"], "error", _error_event(last_error))

    def _streamed(self, run_id: str) -> bool:
        """Whether the run has subscriptions (a dict lookup; see :class:`_Pending`)."""
        return run_id in self._subs

    def _subscribe(self, run_id: str, subscription: Subscription) -> None:
        with self._registry:
            self._subs.setdefault(run_id, []).append(subscription)

    def _publish(self, pending: _Pending) -> None:
        if not pending.events:
            return
        with self._registry:
            for run_id, event in pending.events:
                if event[0].startswith("thread.run.") and "step" not in event[0]:
                    # The run's status changed: wake whoever waits on it (and only them).
                    for waiter in self._waiters.get(run_id, ()):
                        waiter.set()
                subs = self._subs.get(run_id)
                if not subs:
                    continue
                for sub in subs:
                    sub.put(event)
                if event[0] == "error" or (
                    event[0] in ENDS_STREAM and not _error_follows(pending, run_id, event)
                ):
                    for sub in self._subs.pop(run_id, []):
                        sub.end()

    def publish_delta(self, run_id: str, name: str, data: Json) -> None:
        """Publish an event that is not part of a transaction (a message delta: only the
        run's own worker publishes those, in order)."""
        if self._streamed(run_id):
            self._publish(_Pending([(run_id, (name, dumps(data)))], self._streamed))


def _error_follows(pending: _Pending, run_id: str, event: Event) -> bool:
    """Whether an ``error`` event for the same run comes right after ``event``."""
    index = next(i for i, e in enumerate(pending.events) if e[1] is event)
    later = pending.events[index + 1 : index + 2]
    return bool(later) and later[0][0] == run_id and later[0][1][0] == "error"


def _usage_object(usage: list[int]) -> Json:
    prompt, completion = usage
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _step_error(error: Json) -> Json:
    # A step's last_error admits only these two codes.
    code = error["code"] if error["code"] == "rate_limit_exceeded" else "server_error"
    return {"code": code, "message": error["message"]}


def _error_event(error: Json) -> Json:
    """The ``error`` stream event's data: the Error object itself."""
    return {
        "code": error["code"],
        "message": error["message"],
        "param": None,
        # The envelope types this server answers the same conditions with over plain HTTP.
        "type": {"server_error": "server_error", "rate_limit_exceeded": "requests"}.get(
            error["code"], "invalid_request_error"
        ),
    }


def _text_of(message: Json) -> str:
    parts = [
        part["text"]["value"]
        for part in message.get("content") or []
        if part.get("type") == "text" and part.get("text")
    ]
    return "\n\n".join(parts)


def _config(run: Json) -> RunConfig:
    return RunConfig(
        model=run["model"],
        instructions=run["instructions"],
        tools=tuple(run["tools"]),
        tool_choice=run["tool_choice"] or "auto",
        response_format=run["response_format"] or "auto",
        temperature=run["temperature"],
        top_p=run["top_p"],
        max_prompt_tokens=run["max_prompt_tokens"],
        max_completion_tokens=run["max_completion_tokens"],
        truncation_strategy=run["truncation_strategy"] or {"type": "auto"},
    )


_Opening = tuple[Json, list[tuple[str, Json]]]
"""A new step's details, and the events to publish after the step's own."""


class _TurnWriter:
    """Turns a model's events into steps, messages and run changes as they arrive."""

    def __init__(self, engine: RunEngine, run: Json) -> None:
        self.engine = engine
        self.run_id: str = run["id"]
        self.thread_id: str = run["thread_id"]
        self.text: list[str] = []
        self.annotations: list[Json] = []  # citations (see .retrieval_step)
        self.calls: list[ToolCallRequest] = []
        self.call_chars = 0  # of the calls' streamed fragments (names and arguments)
        self.usage = (0, 0)
        self.reported = False  # the model sent its Usage
        self.request: ModelRequest | None = None  # what the model was asked (for estimates)
        self.failure: Failure | None = None
        self.incomplete: str | None = None
        self.step: Json | None = None
        self.message: Json | None = None
        self.tool_step: Json | None = None  # opened by the first ToolCallDelta
        self.call_ids: list[str] = []  # the streamed calls' ids, by index
        self.dropped = False  # the run ended before its message could be created
        self.ended_message: str | None = None

    def take(self, event: Any) -> None:
        if isinstance(event, TextDelta):
            if not event.text or self.dropped:
                return
            if self.message is None:
                self._open_message()
            if self.message is None:
                return
            self.text.append(event.text)
            cited, first = annotations_of(event), len(self.annotations)
            self.annotations.extend(cited)
            notes = [{"index": first + i, **note} for i, note in enumerate(cited)]
            delta = {
                "id": self.message["id"],
                "object": "thread.message.delta",
                "delta": {
                    "content": [
                        {
                            "index": 0,
                            "type": "text",
                            "text": {"value": event.text, "annotations": notes},
                        }
                    ]
                },
            }
            self.engine.publish_delta(self.run_id, "thread.message.delta", delta)
        elif isinstance(event, ToolCallDelta):
            self._stream_call(event)
        elif isinstance(event, ToolCallRequest):
            self.calls.append(event)
        elif isinstance(event, Usage):
            self.usage = (event.prompt_tokens, event.completion_tokens)
            self.reported = True
        elif isinstance(event, Incomplete):
            self.incomplete = event.reason
        elif isinstance(event, Failure):
            self.failure = event

    def _stream_call(self, event: ToolCallDelta) -> None:
        """Publish a fragment of a call as a step delta (the step opens with the first).

        The first delta of a call carries its ``id``, ``type`` and ``name``; later ones only
        the next piece of ``arguments`` (clients concatenate strings by ``index``, so
        repeating the id would corrupt it). What is recorded is decided in :meth:`close`."""
        if self.dropped or event.index < 0:
            return
        if self.tool_step is None:
            self._open_tool_step()
        if self.tool_step is None:
            return
        self.call_chars += len(event.name or "") + len(event.arguments)
        call: Json = {"index": event.index, "type": "function"}
        function: Json = {"arguments": event.arguments}
        if event.index >= len(self.call_ids):
            while len(self.call_ids) <= event.index:
                self.call_ids.append(new_id("call_"))
            call["id"] = self.call_ids[event.index]
            function = {"name": event.name or "", "arguments": event.arguments, "output": None}
        elif event.name:
            function["name"] = event.name
        call["function"] = function
        delta = {
            "id": self.tool_step["id"],
            "object": "thread.run.step.delta",
            "delta": {"step_details": {"type": "tool_calls", "tool_calls": [call]}},
        }
        self.engine.publish_delta(self.run_id, "thread.run.step.delta", delta)

    def _open_tool_step(self) -> None:
        def details(db: sqlite3.Connection, run: Json, now: int) -> _Opening:
            return {"type": "tool_calls", "tool_calls": []}, []

        self.tool_step = self._open_step(details)

    def _open_message(self) -> None:
        def details(db: sqlite3.Connection, run: Json, now: int) -> _Opening:
            message = self.engine.messages.create_assistant_message(
                db, self.thread_id, run["assistant_id"], self.run_id, now
            )
            self.message = message
            events = [("thread.message.created", message), ("thread.message.in_progress", message)]
            return {
                "type": "message_creation",
                "message_creation": {"message_id": message["id"]},
            }, events

        self.step = self._open_step(details)

    def _open_step(
        self, details: Callable[[sqlite3.Connection, Json, int], _Opening]
    ) -> Json | None:
        """Open an in-progress step, or None when the run was cancelled or expired meanwhile
        (then nothing is created, and close() settles the run). ``details`` makes the step's
        details in the same transaction, with events to publish after the step's own."""
        engine = self.engine
        now = engine._now()
        with engine._commit() as (db, pending):
            run = engine._run_row(db, self.thread_id, self.run_id)
            if run["status"] != "in_progress":
                self.dropped = True
                return None
            step_details, events = details(db, run, now)
            step = engine._new_step(db, run, step_details, now)
            pending.add(self.run_id, "thread.run.step.created", step)
            pending.add(self.run_id, "thread.run.step.in_progress", step)
            for name, data in events:
                pending.add(self.run_id, name, data)
            return step

    def close(self) -> None:
        """Settle the run after the model's last event."""
        engine = self.engine
        now = engine._now()
        with engine._commit() as (db, pending):
            run = engine._run_row(db, self.thread_id, self.run_id)
            status = run["status"]
            if status not in ("in_progress", "cancelling"):
                # Expired while the model ran: tick() has settled the run (its usage counted
                # as a cancel counts it); keep what the message had received by then.
                if self.message is not None:
                    self._end_message(db, pending, now, "run_expired")
                return
            if status == "cancelling":
                engine._add_usage(db, self.run_id, self.usage_so_far())
                self._end_message(db, pending, now, "run_cancelled")
                engine._end_open_steps(
                    db, pending, run, "cancelled", now, ended_message=self.ended_message
                )
                engine._finish(db, pending, run, "cancelled", now)
                return
            engine._add_usage(db, self.run_id, self.usage)
            if self.failure is not None:
                error = {"code": self.failure.code, "message": self.failure.message}
                self._end_message(db, pending, now, "run_failed")
                engine._end_open_steps(
                    db, pending, run, "failed", now, error, ended_message=self.ended_message
                )
                engine._finish(db, pending, run, "failed", now, last_error=error)
                return
            if self.step is not None and self.message is not None:
                reason = "max_tokens" if self.incomplete == "max_completion_tokens" else None
                self._end_message(db, pending, now, reason)
                step = self.step
                step["status"] = "completed"
                step["completed_at"] = now
                step["usage"] = _usage_object(list(self.usage))
                engine._save_step(db, step)
                pending.add(self.run_id, "thread.run.step.completed", step)
            if self.calls and self.failure is None:
                self._require_action(db, pending, run, now)
                return
            if self.tool_step is not None:
                # Every streamed call was cut off: the step ends with no call in it.
                step = self.tool_step
                step["status"] = "completed"
                step["completed_at"] = now
                step["usage"] = _usage_object(list(self.usage if self.step is None else (0, 0)))
                engine._save_step(db, step)
                pending.add(self.run_id, "thread.run.step.completed", step)
            engine._finish(db, pending, run, "completed", now, incomplete=self.incomplete)

    def usage_so_far(self) -> tuple[int, int]:
        """The turn's usage: the model's report, else an estimate of the prompt and what was
        written so far (text and call fragments), counted as the echo model counts (one token
        per 4 characters). Also read by tick() on its own thread while the turn goes on (a
        snapshot of counters that only grow)."""
        if self.reported:
            return self.usage
        request = self.request
        prompt = prompt_tokens(request.config, request.conversation) if request else 0
        return prompt, tokens(sum(len(text) for text in self.text) + self.call_chars)

    def _end_message(
        self, db: sqlite3.Connection, pending: _Pending, now: int, reason: str | None
    ) -> None:
        if self.message is None:
            return
        message = self.engine.messages.finish_assistant_message(
            db, self.message["id"], "".join(self.text), now, reason, self.annotations
        )
        event = "thread.message.incomplete" if reason else "thread.message.completed"
        pending.add(self.run_id, event, message)
        self.ended_message = self.message["id"]
        self.message = None

    def _require_action(
        self, db: sqlite3.Connection, pending: _Pending, run: Json, now: int
    ) -> None:
        # The k-th whole call is the one streamed with index k (keeping the id clients saw);
        # a streamed call with no whole call (cut off) is left out of the step.
        ids = self.call_ids + [new_id("call_") for _ in self.calls[len(self.call_ids) :]]
        calls: list[Json] = [
            {
                "id": call_id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments, "output": None},
            }
            for call_id, call in zip(ids, self.calls, strict=False)
        ]
        # The step's usage waits (hidden) until the outputs are submitted.
        usage = self.usage if self.step is None else (0, 0)
        details = {"type": "tool_calls", "tool_calls": calls}
        if self.tool_step is not None:
            step = self.tool_step
            step["step_details"] = details
            self.engine._save_step(db, step)
            db.execute(
                "UPDATE run_steps SET usage = ? WHERE id = ?", (dumps(list(usage)), step["id"])
            )
            unstreamed = list(enumerate(calls))[len(self.call_ids) :]
        else:
            step = self.engine._new_step(db, run, details, now, usage)
            # Streamed as the hosted API did: the step is created empty, then each call
            # arrives as a delta (clients accumulate the deltas into the step).
            created = {**step, "step_details": {"type": "tool_calls", "tool_calls": []}}
            pending.add(self.run_id, "thread.run.step.created", created)
            pending.add(self.run_id, "thread.run.step.in_progress", created)
            unstreamed = list(enumerate(calls))
        for index, call in unstreamed:
            delta = {
                "id": step["id"],
                "object": "thread.run.step.delta",
                "delta": {
                    "step_details": {
                        "type": "tool_calls",
                        "tool_calls": [{"index": index, **call}],
                    }
                },
            }
            pending.add(self.run_id, "thread.run.step.delta", delta)
        run["status"] = "requires_action"
        run["required_action"] = {
            "type": "submit_tool_outputs",
            "submit_tool_outputs": {
                "tool_calls": [
                    {
                        "id": call["id"],
                        "type": "function",
                        "function": {
                            "name": call["function"]["name"],
                            "arguments": call["function"]["arguments"],
                        },
                    }
                    for call in calls
                ]
            },
        }
        self.engine._save(db, run)
        pending.add(self.run_id, "thread.run.requires_action", run)
