"""Recorded answers: a :class:`~.runs.model.Model` wrapper that records or replays turns.

``assistsync test --record`` (or ``assistsync server --record DIR``) stores, per model request,
what the backend answered as a readable JSON file named by the request's digest; ``--replay``
answers from those files without calling the backend, so a pull request's tests are
deterministic and need no model key. A request with no recording fails its run with
:data:`REPLAY_MISS`: the conversation or the prompt changed since it was recorded.

The digest covers everything that decides an answer: the model name, instructions, tools,
tool choice, response format, sampling and token limits, truncation, and the conversation
(text, calls and outputs). Imports only the runs model interface, like the rest of the server.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

from assistsync.server.runs.model import (
    Failure,
    Incomplete,
    Model,
    ModelEvent,
    ModelRequest,
    ModelSource,
    TextDelta,
    ToolCallDelta,
    ToolCallRequest,
    Usage,
)

REPLAY_MISS = "the conversation or prompt changed since it was recorded; re-record with --record"
"""The ``last_error.message`` of a replayed run whose request has no recording."""

Mode = Literal["record", "replay"]


def describe_request(request: ModelRequest) -> dict[str, Any]:
    """The parts of a request that decide the answer, as plain JSON (what the digest hashes
    and what a recording file shows reviewers)."""
    config = asdict(request.config)
    described: dict[str, Any] = {
        "config": config,
        "conversation": [
            {
                "role": t.role,
                "text": t.text,
                # Call ids are new on every run: the name, arguments and output decide.
                "tool_calls": [
                    {"name": c.name, "arguments": c.arguments, "output": c.output}
                    for c in t.tool_calls
                ],
            }
            for t in request.conversation
        ],
    }
    if request.context:
        # Extra system context (retrieval's passages) decides the answer too; absent when
        # empty so that recordings of runs without it keep their names.
        described["context"] = list(request.context)
    return described


def digest(request: ModelRequest) -> str:
    """The request's sha256 (hex) over canonical JSON of :func:`describe_request`."""
    text = json.dumps(describe_request(request), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _event_json(event: ModelEvent) -> dict[str, Any]:
    return {"type": type(event).__name__, **asdict(event)}


_EVENTS: dict[str, type[Any]] = {
    cls.__name__: cls for cls in (TextDelta, ToolCallRequest, Usage, Incomplete, Failure)
}


def _event_of(data: dict[str, Any]) -> ModelEvent:
    fields = dict(data)
    cls = _EVENTS[str(fields.pop("type"))]
    event: ModelEvent = cls(**fields)
    return event


def _joined(events: list[ModelEvent]) -> list[ModelEvent]:
    """``events`` with each run of adjacent :class:`TextDelta` values joined into one."""
    joined: list[ModelEvent] = []
    for event in events:
        last = joined[-1] if joined else None
        if isinstance(event, TextDelta) and isinstance(last, TextDelta):
            joined[-1] = TextDelta(last.text + event.text)
        else:
            joined.append(event)
    return joined


class Recorder:
    """Wraps a :data:`~.runs.model.ModelSource`: every model it picks records to (``record``)
    or replays from (``replay``) ``directory``."""

    def __init__(self, source: ModelSource, directory: Path, mode: Mode) -> None:
        self.source = source
        self.directory = directory
        self.mode = mode
        self.written: set[Path] = set()
        self._lock = threading.Lock()

    def prune(self) -> list[Path]:
        """After a complete ``record``: delete the recordings no request of this run wrote
        (answers to conversations that no longer exist); returns what was deleted."""
        removed = []
        for path in sorted(self.directory.glob("*.json")):
            if path not in self.written:
                path.unlink(missing_ok=True)
                removed.append(path)
        return removed

    def __call__(self, name: str) -> Model:
        return _Recorded(self, name)

    def path(self, request: ModelRequest) -> Path:
        return self.directory / f"{digest(request)[:24]}.json"

    def save(self, request: ModelRequest, events: list[ModelEvent]) -> None:
        """Write one recording atomically (readable: indented, sorted keys, a final newline).

        Adjacent text pieces are stored as one event: how a backend chunks its stream varies
        from call to call (and one event per token buries the answer in a diff), while the
        text does not. A replay streams each stored text event as one delta. Call fragments
        (:class:`ToolCallDelta`) are not stored, for the same reason: the whole
        :class:`ToolCallRequest` values are, and a replay streams each call in one delta."""
        answer = "".join(e.text for e in events if isinstance(e, TextDelta))
        body = {
            "request": describe_request(request),
            "answer": answer,
            "events": [
                _event_json(e)
                for e in _joined([e for e in events if not isinstance(e, ToolCallDelta)])
            ],
        }
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.path(request)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(body, fh, indent=2, sort_keys=True, ensure_ascii=False)
                fh.write("\n")
            os.replace(tmp, path)
            with self._lock:
                self.written.add(path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def load(self, request: ModelRequest) -> list[ModelEvent] | None:
        try:
            body = json.loads(self.path(request).read_text(encoding="utf-8"))
            return [_event_of(e) for e in body["events"]]
        except (OSError, ValueError, KeyError, TypeError):
            return None


class _Recorded:
    def __init__(self, recorder: Recorder, name: str) -> None:
        self.recorder = recorder
        self.name = name

    def respond(self, request: ModelRequest) -> Iterator[ModelEvent]:
        recorder = self.recorder
        if recorder.mode == "replay":
            events = recorder.load(request)
            if events is None:
                yield Failure("invalid_prompt", REPLAY_MISS)
                return
            yield from events
            return
        seen: list[ModelEvent] = []
        for event in recorder.source(self.name).respond(request):
            seen.append(event)
            yield event
        recorder.save(request, seen)
