"""The retrieval tool of a run: search the files, record the step, cite the passages.

The hosted API did retrieval on its own side, before the model answered; so does this server,
for every backend alike (``echo`` and chat backends). A turn of a run whose effective tools
include ``retrieval`` (and whose ``tool_choice`` is neither ``none`` nor a named function):

1. **Search.** The files attached to the assistant (the run's ``file_ids``) and to the
   thread's messages are searched (:func:`assistsync.server.retrieval.search`, BM25) with the
   newest user message (only: an earlier question's passages would answer a "thanks!"). The
   best :data:`TOP_K` passages are kept.
2. **Step.** Once per run (a run that comes back after tool outputs searches again but records
   nothing new), a ``tool_calls`` step ``[{id: "call_…", type: "retrieval", retrieval: {}}]``
   is recorded, ``completed``, before the step that answers; streamed as the hosted API did
   (created empty, the call as a ``thread.run.step.delta``, then completed). A run with no file
   to search records no step.
3. **Context.** The passages go to the model as :attr:`ModelRequest.context` blocks: an
   instruction to cite them as ``【n†source】``, then one block per passage, numbered from 1
   (:func:`context_blocks`; ``echo`` reads them back with :func:`numbered_passages`).
4. **Citations.** :meth:`Retrieved.cite` rewrites the model's events as they stream: a marker
   ``【n†…】`` naming passage *n* stays in the text and becomes a ``file_citation`` annotation
   (``file_id``, the passage as ``quote``, ``start_index``/``end_index`` of the marker in the
   final message text); a marker naming no passage is dropped from the text. A marker split
   across deltas is held back until it is complete, so indices are exact in every delta.

The engine calls :func:`retrieve` once per turn and wraps the model's events with
:meth:`Retrieved.cite`; nothing else of the engine knows about retrieval.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from assistsync.server.db import new_id
from assistsync.server.retrieval import Passage, search
from assistsync.server.runs.model import ModelEvent, TextDelta, Turn

if TYPE_CHECKING:
    from assistsync.server.runs.engine import RunEngine

Json = dict[str, Any]

TOP_K = 5
"""Passages handed to the model per turn."""

INSTRUCTION = (
    "Passages from the files attached to this assistant and thread follow, each under its "
    "marker. Answer from them when they hold the answer, and cite each passage you use by "
    "writing its marker exactly as shown (for example 【1†source】) right after the sentence "
    "that uses it. Cite no other markers."
)
"""The first context block: how the model must cite (the markers the server turns into
annotations)."""

_BLOCK = re.compile(r"【(\d+)†source】\n(.*)", re.DOTALL)
# A citation marker as models write it: 【3†source】, also 【3:0†source】 or another label.
_MARKER = re.compile(r"【(\d+)(?::\d+)?†[^【】\n]{0,40}】")
# What may still become a marker when more text arrives.
_MARKER_START = re.compile(r"【(?:\d+(?::\d*)?(?:†[^【】\n]{0,40})?)?")


def context_blocks(passages: Sequence[Passage]) -> tuple[str, ...]:
    """The instruction, then each passage under its marker ``【n†source】`` (n from 1)."""
    if not passages:
        return ()
    numbered = (f"【{n}†source】\n{p.text}" for n, p in enumerate(passages, 1))
    return (INSTRUCTION, *numbered)


def numbered_passages(context: Sequence[str]) -> list[tuple[int, str]]:
    """The passages of :func:`context_blocks` output, as (number, text), in order."""
    found = (_BLOCK.fullmatch(block) for block in context)
    return [(int(m.group(1)), m.group(2)) for m in found if m]


def uses_retrieval(run: Json) -> bool:
    """Whether the run's effective tools and ``tool_choice`` let it retrieve."""
    if not any(tool.get("type") == "retrieval" for tool in run["tools"]):
        return False
    choice = run.get("tool_choice") or "auto"
    return choice != "none" and not (isinstance(choice, dict) and choice.get("type") == "function")


@dataclass(frozen=True)
class Retrieved:
    """What one turn found: its passages (best first), numbered from 1 in the context."""

    passages: tuple[Passage, ...] = ()
    active: bool = False
    """Whether retrieval is on for this turn (its markers become citations)."""

    @property
    def context(self) -> tuple[str, ...]:
        """The :attr:`ModelRequest.context` blocks of this turn."""
        return context_blocks(self.passages)

    def cite(self, events: Iterable[ModelEvent]) -> Iterator[ModelEvent]:
        """The model's events with citation markers turned into annotations (see the module
        docstring); events pass through untouched when retrieval is off."""
        if not self.active:
            yield from events
            return
        citer = _Citer(self.passages)
        for event in events:
            if isinstance(event, TextDelta):
                cited = citer.feed(event.text)
                if cited.text:
                    yield cited
                continue
            rest = citer.flush()
            if rest.text:
                yield rest
            yield event
        rest = citer.flush()
        if rest.text:
            yield rest


NO_RETRIEVAL = Retrieved()


@dataclass(frozen=True)
class CitedText(TextDelta):
    """Message text from the citation pass, with the ``file_citation`` annotations of the
    markers inside it (indices counted in the whole message text)."""

    annotations: tuple[Json, ...] = ()


def annotations_of(event: TextDelta) -> tuple[Json, ...]:
    """The annotations a text event carries (none, unless it came from the citation pass)."""
    return event.annotations if isinstance(event, CitedText) else ()


class _Citer:
    """Streams text through, holding back a possible marker until it is complete."""

    def __init__(self, passages: Sequence[Passage]) -> None:
        self.passages = passages
        self.held = ""
        self.written = 0  # characters of the final text written so far

    def feed(self, text: str) -> CitedText:
        buffer = self.held + text
        self.held = ""
        out: list[str] = []
        notes: list[Json] = []
        at = 0
        while True:
            start = buffer.find("【", at)
            if start < 0:
                out.append(buffer[at:])
                break
            out.append(buffer[at:start])
            marker = _MARKER.match(buffer, start)
            if marker is not None:
                number = int(marker.group(1))
                if 1 <= number <= len(self.passages):
                    passage = self.passages[number - 1]
                    begin = self.written + sum(map(len, out))
                    notes.append(
                        {
                            "type": "file_citation",
                            "text": marker.group(0),
                            "start_index": begin,
                            "end_index": begin + len(marker.group(0)),
                            "file_citation": {"file_id": passage.file_id, "quote": passage.text},
                        }
                    )
                    out.append(marker.group(0))
                at = marker.end()  # a marker naming no passage is dropped
                continue
            prefix = _MARKER_START.match(buffer, start)
            if prefix is not None and prefix.end() == len(buffer):
                self.held = buffer[start:]  # may still become a marker
                break
            out.append("【")
            at = start + 1
        written = "".join(out)
        self.written += len(written)
        return CitedText(written, tuple(notes))

    def flush(self) -> CitedText:
        """The held text as plain text (the answer ended, or something else than text came)."""
        rest, self.held = self.held, ""
        self.written += len(rest)
        return CitedText(rest)


def retrieve(engine: RunEngine, run: Json, conversation: Sequence[Turn]) -> Retrieved:
    """Search for this turn of ``run`` and record its retrieval step (once per run).

    :data:`NO_RETRIEVAL` when the run does not retrieve, or has no file to search.
    """
    if not uses_retrieval(run):
        return NO_RETRIEVAL
    with engine.db.read() as db:
        file_ids = _file_ids(engine, db, run)
        question = _question(conversation)
        passages = search(db, file_ids, question, k=TOP_K) if file_ids and question else []
    if not file_ids:
        return Retrieved(active=True)
    _record_step(engine, run)
    return Retrieved(tuple(passages), active=True)


def _file_ids(engine: RunEngine, db: sqlite3.Connection, run: Json) -> list[str]:
    ids = list(run.get("file_ids") or [])
    for message in engine.messages.thread_messages(db, run["thread_id"]):
        ids.extend(message.get("file_ids") or [])
    return list(dict.fromkeys(ids))


def _question(conversation: Sequence[Turn]) -> str:
    """The newest user message of the conversation ("" when there is none)."""
    return next((turn.text for turn in reversed(conversation) if turn.role == "user"), "")


def _record_step(engine: RunEngine, run: Json) -> None:
    from assistsync.server.runs.engine import RunNotFound  # the engine imports this module

    now = engine._now()
    run_id = run["id"]
    try:
        with engine._commit() as (db, pending):
            current = engine._run_row(db, run["thread_id"], run_id)
            if current["status"] != "in_progress" or _has_step(engine.step_rows(db, run_id)):
                return
            call = {"id": new_id("call_"), "type": "retrieval", "retrieval": {}}
            step = engine._new_step(db, current, {"type": "tool_calls", "tool_calls": [call]}, now)
            created = {**step, "step_details": {"type": "tool_calls", "tool_calls": []}}
            pending.add(run_id, "thread.run.step.created", created)
            pending.add(run_id, "thread.run.step.in_progress", created)
            delta = {
                "id": step["id"],
                "object": "thread.run.step.delta",
                "delta": {
                    "step_details": {"type": "tool_calls", "tool_calls": [{"index": 0, **call}]}
                },
            }
            pending.add(run_id, "thread.run.step.delta", delta)
            step["status"] = "completed"
            step["completed_at"] = now
            step["usage"] = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
            engine._save_step(db, step)
            pending.add(run_id, "thread.run.step.completed", step)
    except RunNotFound:
        return  # the thread was deleted meanwhile; the engine settles the rest


def _has_step(steps: Sequence[Json]) -> bool:
    return any(
        call.get("type") == "retrieval"
        for step in steps
        if step["step_details"]["type"] == "tool_calls"
        for call in step["step_details"]["tool_calls"]
    )
