"""Helpers for the run tests: an engine on a real SQLite database, driven by a manual clock.

The engine's unit tests need the two seams it is built on — the server's database and the
messages group's hooks. :class:`LocalMessages` is a small, real SQLite implementation of the
hooks (the contract the server's messages group fulfils), so the engine is tested on its own,
without mocking anything of ours.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import queue
import sqlite3
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from openai import OpenAI
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4
from ruamel.yaml import YAML
from server_testkit import (
    AUTH,
    BETA,
    REQUEST_ID,
    SPEC_DIR,
    ServerFactory,
    check_response,
)

from assistsync.server.db import Database, Schema
from assistsync.server.runs.clock import ManualClock
from assistsync.server.runs.endpoints import engine_of
from assistsync.server.runs.engine import SCHEMA, NewRun, RunEngine
from assistsync.server.runs.events import Subscription

Json = dict[str, Any]

WAIT_S = 30
"""A safety net for waiting on worker threads; never reached when the code is right."""

FUNCTIONS = [
    {
        "type": "function",
        "function": {"name": "lookup_order", "parameters": {"type": "object"}},
    },
    {"type": "function", "function": {"name": "refund", "parameters": {"type": "object"}}},
]


class LocalMessages:
    """Thread messages in one table: the engine's ``Messages`` hooks, plus user messages."""

    _ids = itertools.count(1)

    SCHEMA = Schema(
        "local_messages",
        (
            "CREATE TABLE threads (id TEXT PRIMARY KEY);"
            "CREATE TABLE messages (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE, "
            "thread_id TEXT, body TEXT);",
        ),
    )

    def __init__(self, db: Database) -> None:
        self.db = db

    def add_user_message(self, thread_id: str, text: str) -> Json:
        with self.db.write() as conn:
            return self._insert(conn, thread_id, "user", text, None, None, 0, "completed")

    def _insert(
        self,
        conn: sqlite3.Connection,
        thread_id: str,
        role: str,
        text: str,
        assistant_id: str | None,
        run_id: str | None,
        now: int,
        status: str,
    ) -> Json:
        message = {
            "id": f"msg_{next(self._ids):024d}",
            "object": "thread.message",
            "created_at": now,
            "thread_id": thread_id,
            "status": status,
            "incomplete_details": None,
            "completed_at": None,
            "incomplete_at": None,
            "role": role,
            "content": [{"type": "text", "text": {"value": text, "annotations": []}}]
            if text
            else [],
            "assistant_id": assistant_id,
            "run_id": run_id,
            "file_ids": [],
            "metadata": {},
        }
        conn.execute(
            "INSERT INTO messages (id, thread_id, body) VALUES (?, ?, ?)",
            (message["id"], thread_id, json.dumps(message)),
        )
        return message

    def thread_messages(self, db: sqlite3.Connection, thread_id: str) -> list[Json]:
        return [
            json.loads(row["body"])
            for row in db.execute(
                "SELECT body FROM messages WHERE thread_id = ? ORDER BY seq", (thread_id,)
            )
        ]

    def create_assistant_message(
        self, db: sqlite3.Connection, thread_id: str, assistant_id: str, run_id: str, now: int
    ) -> Json:
        return self._insert(
            db, thread_id, "assistant", "", assistant_id, run_id, now, "in_progress"
        )

    def finish_assistant_message(
        self,
        db: sqlite3.Connection,
        message_id: str,
        text: str | None,
        now: int,
        incomplete_reason: str | None,
        annotations: list[Json] | tuple[Json, ...] = (),
    ) -> Json:
        row = db.execute("SELECT body FROM messages WHERE id = ?", (message_id,)).fetchone()
        message: Json = json.loads(row["body"])
        if text is not None:
            part = {"value": text, "annotations": list(annotations)}
            message["content"] = [{"type": "text", "text": part}]
        if incomplete_reason is None:
            message.update(status="completed", completed_at=now)
        else:
            message.update(
                status="incomplete",
                incomplete_at=now,
                incomplete_details={"reason": incomplete_reason},
            )
        db.execute("UPDATE messages SET body = ? WHERE id = ?", (json.dumps(message), message_id))
        return message

    def all(self, thread_id: str) -> list[Json]:
        with self.db.write() as conn:
            return self.thread_messages(conn, thread_id)


class Rig:
    """An engine with its database, messages and manual clock."""

    def __init__(self, path: Path | None = None, *, start: bool = True, **options: Any) -> None:
        self.clock = ManualClock()
        self.db = Database(path, [LocalMessages.SCHEMA, SCHEMA], clock=self.clock)
        self.messages = LocalMessages(self.db)
        self.engine = RunEngine(self.db, self.messages, **options)
        self.started = False
        if start:
            self.start()

    def start(self) -> None:
        self.engine.start()
        self.started = True

    def stop(self) -> None:
        self.engine.stop()
        self.db.close()

    def run(
        self,
        thread_id: str,
        text: str | None = None,
        *,
        subscription: Subscription | None = None,
        **fields: Any,
    ) -> Json:
        """Add a user message (if ``text``) and create a run on the thread."""
        if text is not None:
            self.messages.add_user_message(thread_id, text)
        return self.engine.create_run(
            NewRun(thread_id, "asst_test", run_fields(**fields)), subscription=subscription
        )

    def get(self, run: Json) -> Json:
        return self.engine.get_run(run["thread_id"], run["id"])

    def steps(self, run: Json) -> list[Json]:
        with self.db.write() as conn:
            return self.engine.step_rows(conn, run["id"])

    def settle(self, run: Json, *, until: tuple[str, ...] = ()) -> Json:
        """The run once it rests: terminal, requires_action, or one of ``until``."""
        resting = (
            "completed",
            "failed",
            "cancelled",
            "expired",
            "requires_action",
            *until,
        )
        for _ in range(100):
            current = self.get(run)
            if current["status"] in resting:
                return current
            status = current["status"]
            self.engine.wait_for(
                run["thread_id"], run["id"], lambda r, s=status: r["status"] != s, WAIT_S
            )
        raise AssertionError(f"run {run['id']} never settled: {self.get(run)['status']}")


def run_fields(**overrides: Any) -> Json:
    """A run's recorded settings, as the create-run endpoint computes them."""
    fields: Json = {
        "model": "echo",
        "instructions": "Be brief.",
        "tools": FUNCTIONS,
        "file_ids": [],
        "metadata": {},
        "temperature": 1.0,
        "top_p": 1.0,
        "max_prompt_tokens": None,
        "max_completion_tokens": None,
        "truncation_strategy": {"type": "auto", "last_messages": None},
        "tool_choice": "auto",
        "response_format": "auto",
    }
    fields.update(overrides)
    return fields


def drain(subscription: Subscription) -> list[tuple[str, Json]]:
    """Every event until the end of the stream (parsed)."""
    events: list[tuple[str, Json]] = []
    while True:
        try:
            event = subscription.get(timeout=WAIT_S)
        except queue.Empty:
            raise AssertionError(f"the stream did not end; so far: {events}") from None
        if event is None:
            return events
        events.append((event[0], json.loads(event[1])))


# -- over HTTP ----------------------------------------------------------------------------------

YAML_SPEC = SPEC_DIR / "openapi-2.0.0-assistants-v1.yaml"


@functools.cache
def _event_validators() -> dict[str, Any] | None:
    """One validator per stream event name, from the published YAML's event schemas."""
    if not YAML_SPEC.is_file():
        return None
    with warnings.catch_warnings():
        # The published YAML reuses anchor names; only ruamel's pure loader accepts that.
        warnings.simplefilter("ignore")
        doc = YAML(typ="safe", pure=True).load(YAML_SPEC.read_text())
    registry = Registry().with_resource(
        "spec", Resource.from_contents(doc, default_specification=DRAFT4)
    )
    validators: dict[str, Any] = {}
    schemas = doc["components"]["schemas"]
    for group in (
        "ThreadStreamEvent",
        "RunStreamEvent",
        "RunStepStreamEvent",
        "MessageStreamEvent",
    ):
        for index, branch in enumerate(schemas[group]["oneOf"]):
            for name in branch["properties"]["event"]["enum"]:
                ref = {"$ref": f"spec#/components/schemas/{group}/oneOf/{index}"}
                validators[name] = OAS30Validator(ref, registry=registry)
    for name, schema in (("error", "ErrorEvent"), ("done", "DoneEvent")):
        validators[name] = OAS30Validator(
            {"$ref": f"spec#/components/schemas/{schema}"}, registry=registry
        )
    return validators


def event_schema_errors(name: str, data: Any) -> list[str]:
    """Why ``{event: name, data}`` does not match the spec's event schemas (empty: it does).

    Without the YAML spec nothing can be checked and the list is empty.
    """
    validators = _event_validators()
    if validators is None:
        return []
    validator = validators.get(name)
    if validator is None:
        return [f"the spec has no event named {name!r}"]
    return [e.message for e in validator.iter_errors({"event": name, "data": data})]


def parse_sse(text: str) -> list[tuple[str, Any]]:
    """``(event, data)`` pairs of a server-sent event stream (data parsed unless ``[DONE]``);
    comments (keep-alives) are skipped."""
    events: list[tuple[str, Any]] = []
    for block in text.split("\n\n"):
        lines = [line for line in block.split("\n") if line and not line.startswith(":")]
        if not lines:
            continue
        fields = dict(line.split(": ", 1) for line in lines)
        assert set(fields) == {"event", "data"}, block
        data = fields["data"]
        events.append((fields["event"], data if data == "[DONE]" else json.loads(data)))
    return events


def check_stream(response: httpx.Response) -> list[tuple[str, Any]]:
    """The events of a streamed response, each checked against the spec, ending with done."""
    response.read()
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/event-stream"
    assert REQUEST_ID.fullmatch(response.headers.get("x-request-id", ""))
    events = parse_sse(response.text)
    for name, data in events:
        assert not event_schema_errors(name, data), (name, data, event_schema_errors(name, data))
    assert events[-1] == ("done", "[DONE]")
    return events[:-1]


def check_any(response: httpx.Response) -> None:
    """``check_response`` for JSON answers, :func:`check_stream` for event streams."""
    if response.headers.get("content-type") == "text/event-stream":
        check_stream(response)
    else:
        check_response(response)


class RunServer:
    """A server on a manual clock, and what tests need to drive its runs."""

    def __init__(self, make_server: ServerFactory, **kwargs: Any) -> None:
        self.clock = ManualClock()
        self.handle = make_server(clock=self.clock, **kwargs)
        self.engine = engine_of(self.handle.context)

    def advance(self, seconds: float) -> None:
        """Move time on and let the engine expire what is due."""
        self.clock.advance(seconds)
        self.engine.tick()

    def client(self, **kwargs: Any) -> httpx.Client:
        """A client checking every response, JSON or stream, against the spec."""
        headers = {**AUTH, **BETA, **kwargs.pop("headers", {})}
        return httpx.Client(
            base_url=self.handle.base_url,
            headers=headers,
            event_hooks={"response": [check_any]},
            timeout=WAIT_S,
            **kwargs,
        )


def sdk_for(base_url: str, check: Callable[[httpx.Response], None] = check_any) -> OpenAI:
    """The official SDK on the server at ``base_url``, as a v1 user would build it (strict
    response validation, its own httpx client), with every response also checked against the
    spec (by ``check``, its client's response hook). Closing the client closes its httpx
    client."""
    return OpenAI(
        base_url=base_url,
        api_key="sk-test-key",
        http_client=httpx.Client(event_hooks={"response": [check]}, timeout=WAIT_S),
        _strict_response_validation=True,
        max_retries=0,
    )


@contextlib.contextmanager
def sdk_client(runs: RunServer) -> Iterator[OpenAI]:
    """:func:`sdk_for` on ``runs``' server, closed afterwards."""
    client = sdk_for(runs.handle.base_url)
    try:
        yield client
    finally:
        client.close()
