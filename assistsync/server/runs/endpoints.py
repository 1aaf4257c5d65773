"""Endpoint group ``runs``: runs and run steps, over HTTP, with server-sent events.

Handlers validate, call one short engine method and answer; the engine's workers do the rest,
so no request waits on a model. With ``stream: true`` (create run, create thread and run,
submit tool outputs) the answer is ``text/event-stream``: the run's events as the engine
publishes them, then ``event: done`` / ``data: [DONE]``. A client that goes away only loses its
stream; the run goes on.

Polling clients: every run GET carries ``openai-poll-after-ms`` (the SDK waits that long
between polls instead of a second), and a GET sent with ``X-Stainless-Poll-Helper: true`` (the
SDK's pollers send it) is held until the run comes to rest (``requires_action`` or terminal),
at most :data:`POLL_HOLD_S`, so a poller sees the end of a run the moment it happens.
"""

from __future__ import annotations

import json
import queue
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from assistsync.server.assistants import get_assistant
from assistsync.server.common import page_query, plain
from assistsync.server.db import Json, Page, PageQuery, dumps, page_rows
from assistsync.server.framework.errors import ApiError, bad_request, not_found
from assistsync.server.framework.routing import (
    Request,
    Response,
    Route,
    event_stream,
    sse_event,
)
from assistsync.server.group import Context, Group, Stop
from assistsync.server.runs.clock import ManualClock, as_clock
from assistsync.server.runs.engine import (
    DEFAULT_RUN_EXPIRY_S,
    SCHEMA,
    TERMINAL,
    NewRun,
    RunConflict,
    RunEngine,
    RunNotFound,
    default_workers,
)
from assistsync.server.runs.events import Subscription
from assistsync.server.runs.model import ModelSource
from assistsync.server.runs.ports import Threads
from assistsync.server.runs.requests import (
    parse_create_run,
    parse_create_thread_and_run,
    parse_modify,
    parse_submit,
    run_fields,
)

POLL_AFTER_MS = 10
"""The ``openai-poll-after-ms`` of every run GET."""
POLL_HOLD_S = 1.0
"""Longest a poll-helper GET is held (the SDK's own default poll interval)."""
KEEPALIVE_S = 1.0
"""An idle stream sends an SSE comment this often, so a stream whose client left (or a
server that is stopping) notices within this time."""
RESTING = (*TERMINAL, "requires_action")
"""Statuses a poller stops at (the SDK's pollers stop at these)."""
SERVICE = "runs"


@dataclass(frozen=True)
class RunOptions:
    """The run settings of ``assistsync server`` (``--max-concurrent-runs``,
    ``--run-expiry-s``)."""

    max_concurrent_runs: int | None = None
    """Runs executed at once (None: :func:`~.engine.default_workers`)."""
    run_expiry_s: int = DEFAULT_RUN_EXPIRY_S
    """Seconds from a run's creation to its ``expires_at``."""
    models: ModelSource | None = None
    """Picks the backend for a run's model name (None: ``echo`` answers every name)."""


def engine_of(context: Context) -> RunEngine:
    """The run engine of a running server (tests use it to :meth:`~.RunEngine.tick`)."""
    engine: RunEngine = context.services[SERVICE]
    return engine


def threads_of(context: Context) -> Threads:
    """The threads-and-messages port the runs group was started with."""
    threads: Threads = context.services[f"{SERVICE}.threads"]
    return threads


def _errors(call: Callable[[], Json]) -> Json:
    """Engine errors as API errors."""
    try:
        return call()
    except RunNotFound as exc:
        raise not_found(str(exc)) from None
    except RunConflict as exc:
        raise bad_request(exc.message, exc.param) from None


# -- streaming ------------------------------------------------------------------------------------


def _stream(engine: RunEngine, run_id: str, subscription: Subscription) -> Response:
    def chunks() -> Iterator[bytes]:
        try:
            while True:
                try:
                    event = subscription.get(timeout=KEEPALIVE_S)
                except queue.Empty:
                    yield b": keep-alive\n\n"
                    continue
                if event is None:
                    break
                yield sse_event(*event)
            yield sse_event("done", "[DONE]")
        finally:
            engine.unsubscribe(run_id, subscription)

    return event_stream(chunks())


# -- handlers -------------------------------------------------------------------------------------


def _assistant(db: sqlite3.Connection, assistant_id: str) -> Json:
    try:
        return get_assistant(db, assistant_id)
    except ApiError as exc:
        exc.param = "assistant_id"
        raise


def _create(request: Request[Context]) -> Response:
    plain(request)
    context = request.context
    engine, threads = engine_of(context), threads_of(context)
    thread_id = request.params["thread_id"]
    body = parse_create_run(request.json())

    def describe(db: sqlite3.Connection) -> NewRun:
        # Inside the run's transaction: one lock acquisition for every check and write.
        threads.require_thread(db, thread_id)
        assistant = _assistant(db, body.assistant_id)
        fields = run_fields(body, assistant, body.additional_instructions)
        return NewRun(thread_id, assistant["id"], fields)

    def prepare(db: sqlite3.Connection) -> None:
        if body.additional_messages:
            threads.add_messages(db, thread_id, body.additional_messages, "additional_messages")

    subscription = Subscription() if body.stream else None
    run = _errors(lambda: engine.create_run(describe, prepare=prepare, subscription=subscription))
    if subscription is not None:
        return _stream(engine, run["id"], subscription)
    return Response(run)


def _create_thread_and_run(request: Request[Context]) -> Response:
    plain(request)
    context = request.context
    engine, threads = engine_of(context), threads_of(context)
    body = parse_create_thread_and_run(request.json())
    subscription = Subscription() if body.stream else None

    def describe(db: sqlite3.Connection) -> NewRun:
        assistant = _assistant(db, body.assistant_id)
        return NewRun("", assistant["id"], run_fields(body, assistant))

    def prepare(db: sqlite3.Connection) -> str:
        thread = threads.create_thread(db, body.thread, "thread")
        if subscription is not None:
            subscription.put(("thread.created", dumps(thread)))
        return str(thread["id"])

    run = _errors(lambda: engine.create_run(describe, prepare=prepare, subscription=subscription))
    if subscription is not None:
        return _stream(engine, run["id"], subscription)
    return Response(run)


def _list(request: Request[Context]) -> Response:
    context = request.context
    query, _ = page_query(request.query)
    thread_id = request.params["thread_id"]
    engine = engine_of(context)
    engine.tick()
    with context.db.read() as db:
        threads_of(context).require_thread(db, thread_id)
        return _page(db, "runs", "thread_id", thread_id, query, "run on this thread")


def _page(
    db: sqlite3.Connection, table: str, column: str, value: str, query: PageQuery, noun: str
) -> Response:
    """One page of ``table``'s objects (stored whole in ``body``) whose ``column`` is
    ``value``."""
    rows, has_more = page_rows(
        db, table=table, scope=f"{column} = ?", scope_args=(value,), query=query, noun=noun
    )
    return Response(Page([json.loads(row["body"]) for row in rows], has_more).envelope())


def _poll_headers() -> dict[str, str]:
    return {"openai-poll-after-ms": str(POLL_AFTER_MS)}


def _get(request: Request[Context]) -> Response:
    plain(request)
    engine = engine_of(request.context)
    thread_id, run_id = request.params["thread_id"], request.params["run_id"]
    if request.headers.get("x-stainless-poll-helper", "").lower() == "true":
        run = _errors(
            lambda: engine.wait_for(
                thread_id, run_id, lambda r: r["status"] in RESTING, POLL_HOLD_S
            )
        )
    else:
        run = _errors(lambda: engine.get_run(thread_id, run_id))
    return Response(run, headers=_poll_headers())


def _modify(request: Request[Context]) -> Response:
    plain(request)
    engine = engine_of(request.context)
    thread_id, run_id = request.params["thread_id"], request.params["run_id"]
    _errors(lambda: engine.get_run(thread_id, run_id))
    metadata = parse_modify(request.json())
    return Response(_errors(lambda: engine.modify_run(thread_id, run_id, metadata)))


def _cancel(request: Request[Context]) -> Response:
    plain(request)
    engine = engine_of(request.context)
    thread_id, run_id = request.params["thread_id"], request.params["run_id"]
    return Response(_errors(lambda: engine.cancel_run(thread_id, run_id)))


def _submit(request: Request[Context]) -> Response:
    plain(request)
    engine = engine_of(request.context)
    thread_id, run_id = request.params["thread_id"], request.params["run_id"]
    _errors(lambda: engine.get_run(thread_id, run_id))
    body = parse_submit(request.json())
    outputs = [(item.tool_call_id, item.output) for item in body.tool_outputs]
    subscription = Subscription() if body.stream else None
    run = _errors(
        lambda: engine.submit_tool_outputs(thread_id, run_id, outputs, subscription=subscription)
    )
    if subscription is not None:
        return _stream(engine, run_id, subscription)
    return Response(run)


def _steps(request: Request[Context]) -> Response:
    context = request.context
    query, _ = page_query(request.query)
    thread_id, run_id = request.params["thread_id"], request.params["run_id"]
    _errors(lambda: engine_of(context).get_run(thread_id, run_id))
    with context.db.read() as db:
        return _page(db, "run_steps", "run_id", run_id, query, "step of this run")


def _step(request: Request[Context]) -> Response:
    plain(request)
    context = request.context
    thread_id, run_id = request.params["thread_id"], request.params["run_id"]
    step_id = request.params["step_id"]
    _errors(lambda: engine_of(context).get_run(thread_id, run_id))
    with context.db.read() as db:
        row = db.execute(
            "SELECT body FROM run_steps WHERE id = ? AND run_id = ?", (step_id, run_id)
        ).fetchone()
    if row is None:
        raise not_found(f"No run step found with id '{step_id}'.")
    step: Json = json.loads(row["body"])
    return Response(step)


# -- the group ------------------------------------------------------------------------------------

RUNS = "/v1/threads/{thread_id}/runs"
RUN = RUNS + "/{run_id}"


def group(
    options: RunOptions = RunOptions(),
    threads: Callable[[Context], Threads] | None = None,
) -> Group:
    """The runs group, started with ``options``; ``threads`` builds the threads-and-messages
    port from the server's context (default: the server's own threads and messages groups)."""

    def start(context: Context) -> Stop:
        if threads is not None:
            port = threads(context)
        else:
            from assistsync.server.runs.conversation import ServerThreads

            port = ServerThreads(context)
        clock = as_clock(context.db.clock)
        engine = RunEngine(
            context.db,
            port,
            clock=clock,
            models=options.models,
            max_concurrent_runs=options.max_concurrent_runs,
            run_expiry_s=options.run_expiry_s,
            # A manual clock moves only when a test says so; the test then calls tick().
            tick_interval_s=None if isinstance(clock, ManualClock) else 1.0,
        )
        context.services[SERVICE] = engine
        context.services[f"{SERVICE}.threads"] = port
        context.hooks.active_run = engine.active_run
        engine.start()
        return engine.stop

    workers = options.max_concurrent_runs or default_workers()
    return Group(
        title="runs",
        routes=(
            Route("GET", RUNS, _list, beta=True),
            Route("POST", RUNS, _create, beta=True, summary="stream: true for SSE"),
            Route("GET", RUN, _get, beta=True),
            Route("POST", RUN, _modify, beta=True),
            Route("POST", RUN + "/cancel", _cancel, beta=True),
            Route(
                "POST",
                RUN + "/submit_tool_outputs",
                _submit,
                beta=True,
                summary="stream: true for SSE",
            ),
            Route(
                "POST",
                "/v1/threads/runs",
                _create_thread_and_run,
                beta=True,
                summary="stream: true for SSE",
            ),
            Route("GET", RUN + "/steps", _steps, beta=True),
            Route("GET", RUN + "/steps/{step_id}", _step, beta=True),
        ),
        schema=SCHEMA,
        notes=(
            f"runs execute on {workers} workers at once (--max-concurrent-runs);",
            f"expires_at = created_at + {options.run_expiry_s} s (--run-expiry-s).",
            "Every model name is answered by 'echo' (plumbing, not intelligence), from the",
            "newest user message:",
            '  any text               -> "echo: <text>", streamed word by word',
            "  a line call NAME {...} -> requires_action: calls function NAME with those",
            "                            JSON arguments (several lines: parallel calls)",
            '  after the tool outputs -> "echo: NAME returned OUTPUT; ..."',
            "  a line echo:fail CODE  -> failed, last_error.code CODE",
            "  a line echo:sleep N    -> waits N seconds before answering",
            "  text matching a file   -> the answer goes on with the best passage and its",
            "  (retrieval tool)          citation marker, a file_citation annotation",
            "  tool_choice, response_format json_object and max_*_tokens are honoured;",
            "  usage counts 1 token per 4 characters.",
        ),
        start=start,
    )


GROUP = group()
"""The runs group with default options."""


def configured(groups: Sequence[Group], options: RunOptions) -> tuple[Group, ...]:
    """``groups`` with the runs group started with ``options``."""
    return tuple(group(options) if g.title == GROUP.title else g for g in groups)
