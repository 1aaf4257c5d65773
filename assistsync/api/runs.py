"""Threads, messages and runs for ``assistsync test``: one streamed request per model turn.

A turn costs the floor the API allows: the first turn of a conversation is one streamed
*create thread and run* (the user's message inside it), every later turn one streamed *create
run* whose ``additional_messages`` carry the user's message, and each round of function calls
one streamed *submit tool outputs*. The stream carries everything a test looks at — the run's
end state, usage, ``required_action``, and the completed messages with their annotations — so
no message list and no polling is needed.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from assistsync.api.client import ApiClient
from assistsync.errors import ApiError

Json = dict[str, Any]


@dataclass(frozen=True)
class PendingCall:
    """A function call a run waits for: its id, name and JSON arguments (text)."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class StreamedRun:
    """What one streamed request said about a run.

    ``status`` is the run's last status; ``text`` the completed assistant messages joined by
    blank lines; ``citations`` the file ids of their ``file_citation`` annotations (in order);
    ``calls`` the function calls when the run requires action; ``error`` the run's
    ``last_error`` or an ``error`` event's message.
    """

    thread_id: str
    run_id: str
    status: str
    text: str = ""
    citations: tuple[str, ...] = ()
    calls: tuple[PendingCall, ...] = ()
    usage: int | None = None
    incomplete: bool = False
    error: str | None = None


@dataclass
class _State:
    thread_id: str = ""
    run: Json = field(default_factory=dict)
    texts: list[str] = field(default_factory=list)
    citations: list[str] = field(default_factory=list)
    error: str | None = None

    def take(self, name: str, data: Json) -> None:
        if name == "thread.created":
            self.thread_id = str(data.get("id", ""))
        elif name.startswith("thread.run.") and not name.startswith("thread.run.step"):
            self.run = data
            self.thread_id = self.thread_id or str(data.get("thread_id", ""))
        elif name in ("thread.message.completed", "thread.message.incomplete"):
            for part in data.get("content") or []:
                text = part.get("text") if isinstance(part, dict) else None
                if not isinstance(text, dict):
                    continue
                self.texts.append(str(text.get("value", "")))
                for note in text.get("annotations") or []:
                    cited = note.get("file_citation") if isinstance(note, dict) else None
                    if isinstance(cited, dict) and cited.get("file_id"):
                        self.citations.append(str(cited["file_id"]))
        elif name == "error":
            self.error = str(data.get("message") or data)

    def result(self) -> StreamedRun:
        run = self.run
        required = run.get("required_action") or {}
        calls = tuple(
            PendingCall(
                str(c["id"]), str(c["function"]["name"]), str(c["function"].get("arguments", ""))
            )
            for c in (required.get("submit_tool_outputs") or {}).get("tool_calls") or []
        )
        usage = run.get("usage")
        last_error = run.get("last_error")
        error = self.error
        if isinstance(last_error, dict) and last_error.get("message"):
            error = f"{last_error.get('code')}: {last_error['message']}"
        return StreamedRun(
            thread_id=self.thread_id,
            run_id=str(run.get("id", "")),
            status=str(run.get("status", "failed" if error else "unknown")),
            text="\n\n".join(self.texts),
            citations=tuple(self.citations),
            calls=calls,
            usage=usage.get("total_tokens") if isinstance(usage, dict) else None,
            incomplete=bool(run.get("incomplete_details")),
            error=error,
        )


def _events(lines: Iterator[str]) -> Iterator[tuple[str, str]]:
    """Server-sent events as ``(event, data)``; multi-line data joined by newlines."""
    name, data = "message", list[str]()
    for line in lines:
        if not line:
            if data:
                yield name, "\n".join(data)
            name, data = "message", list[str]()
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    if data:
        yield name, "\n".join(data)


def _read_stream(response: httpx.Response) -> StreamedRun:
    state = _State()
    # Read to the end of the body, past [DONE]: a connection closed with bytes unread is
    # reset, not reused.
    for name, data in _events(response.iter_lines()):
        if data == "[DONE]":
            continue
        try:
            value = json.loads(data)
        except ValueError:
            continue
        if isinstance(value, dict):
            state.take(name, value)
    return state.result()


def _q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


class Conversations:
    """Threads and streamed runs over an :class:`~assistsync.api.ApiClient`."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client

    def _stream(self, path: str, body: Json) -> StreamedRun:
        run = self.client.send(
            "POST", path, json={**body, "stream": True}, consume=_read_stream, idempotent=False
        )
        if not run.run_id:
            raise ApiError("the stream ended before it described a run", method="POST", path=path)
        return run

    def start(self, assistant_id: str, text: str, file_ids: Sequence[str] = ()) -> StreamedRun:
        """A new thread holding the user's message, and a run on it (one request)."""
        message: Json = {"role": "user", "content": text}
        if file_ids:
            message["file_ids"] = list(file_ids)
        body = {"assistant_id": assistant_id, "thread": {"messages": [message]}}
        return self._stream("/threads/runs", body)

    def reply(
        self, thread_id: str, assistant_id: str, text: str, file_ids: Sequence[str] = ()
    ) -> StreamedRun:
        """The user's next message and a run, in one request (``additional_messages``)."""
        message: Json = {"role": "user", "content": text}
        if file_ids:
            message["file_ids"] = list(file_ids)
        body = {"assistant_id": assistant_id, "additional_messages": [message]}
        return self._stream(f"/threads/{_q(thread_id)}/runs", body)

    def submit(
        self, thread_id: str, run_id: str, outputs: Sequence[tuple[str, str]]
    ) -> StreamedRun:
        """Send every output the run waits for (``(call id, output)``), streaming the rest."""
        body = {"tool_outputs": [{"tool_call_id": i, "output": o} for i, o in outputs]}
        path = f"/threads/{_q(thread_id)}/runs/{_q(run_id)}/submit_tool_outputs"
        return self._stream(path, body)

    def cancel(self, thread_id: str, run_id: str) -> None:
        """Cancel a run (a run that already ended answers 400, which is ignored)."""
        path = f"/threads/{_q(thread_id)}/runs/{_q(run_id)}/cancel"
        try:
            self.client.send("POST", path, json={}, consume=_drain)
        except ApiError as exc:
            if exc.status != 400:
                raise

    def delete_thread(self, thread_id: str) -> None:
        """Delete a thread and everything in it (already gone: fine)."""
        self.client.send("DELETE", f"/threads/{_q(thread_id)}", consume=_drain, on_404=lambda: None)


def _drain(response: httpx.Response) -> None:
    response.read()
