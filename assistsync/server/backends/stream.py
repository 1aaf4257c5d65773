"""A chat-completions answer, streamed or whole, as model events: pure, no I/O.

:func:`sse_data` reads server-sent events (``data:`` lines, blank-line separated, comments and
other fields ignored) up to ``data: [DONE]``; :class:`Answer` turns each chunk into
:data:`~assistsync.server.runs.model.ModelEvent` values the moment it can:

- ``choices[0].delta.content`` → a :class:`TextDelta` at once;
- ``choices[0].delta.tool_calls[i]`` fragments (the backend's ``id`` and ``function.name``
  come in the first fragment of index ``i``, ``arguments`` in pieces, calls possibly
  interleaved) → a :class:`ToolCallDelta` each at once, numbered 0, 1, … in the order the
  calls start; they are gathered by ``index`` and become whole :class:`ToolCallRequest`
  values at the end, in that same order;
- ``finish_reason: "length"`` → :class:`Incomplete` (``max_completion_tokens``), and the call
  being written when it came is dropped (its arguments are not whole JSON), with any call
  started after it;
- ``usage`` (sent in a last chunk when ``stream_options.include_usage`` was honoured, or in a
  whole answer) → :class:`Usage`; without it, :meth:`Answer.finish` estimates it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from assistsync.server.backends.translate import tokens_of_chars
from assistsync.server.runs.model import (
    Incomplete,
    ModelEvent,
    TextDelta,
    ToolCallDelta,
    ToolCallRequest,
    Usage,
)

Json = dict[str, Any]


class BadAnswer(ValueError):
    """The backend's answer is not chat-completions JSON (the message says what is wrong)."""


def sse_data(lines: Iterable[str]) -> Iterator[str]:
    """The ``data`` of each server-sent event in ``lines``, until ``[DONE]``."""
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                payload = "\n".join(data)
                data = []
                if payload.strip() == "[DONE]":
                    return
                yield payload
            continue
        if line.startswith("data:"):
            value = line[5:]
            data.append(value[1:] if value.startswith(" ") else value)
        # ":" comments, "event:", "id:" and "retry:" lines carry nothing we use
    if data:
        payload = "\n".join(data)
        if payload.strip() != "[DONE]":
            yield payload


@dataclass
class _Call:
    order: int  # the call's v1 index: calls are numbered in the order they start
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass
class Answer:
    """One answer being assembled; feed it chunks, then :meth:`finish` it."""

    prompt_estimate: int = 0
    """Prompt tokens to report when the backend sends no usage."""
    text_chars: int = 0
    usage: Usage | None = None
    finish_reason: str | None = None
    started: bool = False
    """Whether any event has been produced (after that, a retry would repeat them)."""
    _calls: dict[int, _Call] = field(default_factory=dict)
    _open: int | None = None
    _call_chars: int = 0

    def chunk(self, raw: str) -> Iterator[ModelEvent]:
        """The events of one streamed chunk (its JSON text)."""
        try:
            data = json.loads(raw)
        except ValueError:
            raise BadAnswer(f"a streamed chunk is not JSON: {raw[:80]!r}") from None
        if not isinstance(data, dict):
            raise BadAnswer("a streamed chunk is not a JSON object")
        if isinstance(data.get("error"), dict):
            message = data["error"].get("message") or json.dumps(data["error"])
            raise BadAnswer(f"the backend reported an error mid-answer: {message}")
        self._take_usage(data)
        for choice in data.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            yield from self._delta(choice.get("delta") or {})
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]

    def whole(self, data: Any) -> Iterator[ModelEvent]:
        """The events of an answer that came whole (a backend that ignored ``stream``)."""
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            raise BadAnswer(f"the backend reported an error: {data['error'].get('message')}")
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
            raise BadAnswer("the answer has no 'choices'")
        self._take_usage(data)
        for choice in data["choices"]:
            if choice.get("index", 0) != 0:
                continue
            message = choice.get("message") or {}
            calls = message.get("tool_calls") or ()
            yield from self._delta(
                {
                    "content": message.get("content"),
                    "tool_calls": [{"index": i, **call} for i, call in enumerate(calls)],
                }
            )
            self.finish_reason = choice.get("finish_reason")

    def _take_usage(self, data: Json) -> None:
        usage = data.get("usage")
        if isinstance(usage, dict) and isinstance(usage.get("prompt_tokens"), int):
            self.usage = Usage(usage["prompt_tokens"], int(usage.get("completion_tokens") or 0))

    def _delta(self, delta: Json) -> Iterator[ModelEvent]:
        text = delta.get("content")
        if isinstance(text, str) and text:
            self.started = True
            self.text_chars += len(text)
            yield TextDelta(text)
        for fragment in delta.get("tool_calls") or ():
            function = fragment.get("function") or {}
            if "index" in fragment:
                index = int(fragment["index"])
            elif self._open is not None and not fragment.get("id") and not function.get("name"):
                index = self._open  # no index: a fragment without id or name continues a call
            else:
                index = max(self._calls, default=-1) + 1
            call = self._calls.get(index)
            new = call is None
            if call is None:
                call = self._calls[index] = _Call(len(self._calls))
            self._open = index
            name = function.get("name") or None
            arguments = function.get("arguments") or ""
            if name:
                call.name += name
            if arguments:
                call.arguments.append(arguments)
            if new or name or arguments:
                self.started = True
                yield ToolCallDelta(call.order, name, arguments)

    def finish(self) -> Iterator[ModelEvent]:
        """The events after the last chunk: the last call, usage, and a cut-off answer."""
        cut = self.finish_reason == "length"
        if cut and self._open in self._calls:
            # The call being written stopped mid-JSON: no call. Calls started after it go too
            # (interleaved, they may be unfinished as well), so the whole calls stay the
            # first ones streamed, as the model interface promises.
            cutoff = self._calls[self._open].order
            self._calls = {i: c for i, c in self._calls.items() if c.order < cutoff}
        for call in sorted(self._calls.values(), key=lambda call: call.order):
            arguments = "".join(call.arguments) or "{}"
            self._call_chars += len(call.name) + len(arguments)
            yield ToolCallRequest(call.name, arguments)
        self._calls.clear()
        yield self.usage or Usage(
            self.prompt_estimate, tokens_of_chars(self.text_chars + self._call_chars)
        )
        if cut:
            yield Incomplete("max_completion_tokens")
