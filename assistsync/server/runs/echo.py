"""``echo``: the built-in model. Plumbing, not intelligence: deterministic and instant.

It exists so that every path a client must handle can be exercised without a real model, in
tests and in the sandbox. Its whole behaviour, from the conversation and the run's config
(the same thread and config always give the same answer):

- **Text.** It answers the newest user message with ``echo: <that message's text>``
  (``{"echo": "<text>"}`` when ``response_format`` is ``json_object``); with no user message
  at all, ``echo: (no user message)``. Answers stream in several deltas (one per word).
- **Function calls.** Each line of the newest user message of the form
  ``call NAME {"json": "arguments"}`` (arguments optional, default ``{}``) where NAME is a
  function tool of the run becomes a call of that function; several lines are parallel calls.
  Lines naming unknown functions, or with arguments that are not a JSON object, are just text.
  ``tool_choice`` ``none`` makes no calls; ``auto`` (the default) makes the calls asked for;
  a named function forces a call of that function (with the arguments of its ``call`` lines,
  or ``{}``); a named ``retrieval``/``code_interpreter`` choice acts like ``auto``.
- **Retrieval.** When the run retrieves (its tools include ``retrieval``) and its files hold
  a passage matching the newest user message, the answer goes on after ``echo: <text>`` with a
  blank line, the best passage (its text as the index holds it) and its marker
  ``【1†source】``, which the server turns into a ``file_citation`` annotation quoting that
  passage. Function calls asked for still come first; with no passage, the usual answer.
- **After tool outputs.** When the run's newest turn is its own calls with their outputs, it
  answers ``echo: NAME returned OUTPUT`` for each call, joined by ``; `` (JSON:
  ``{"tool_outputs": {"NAME": "OUTPUT", ...}}``).
- **Usage.** One token per 4 characters, rounded up: prompt = instructions plus every turn's
  text, calls and outputs; completion = the answer's text, or the calls' names and arguments.
- **Limits.** A prompt over ``max_prompt_tokens`` ends the turn without an answer, and an
  answer over ``max_completion_tokens`` is cut at that many tokens; either way the run ends
  ``completed`` with ``incomplete_details.reason`` set.
- **Failures.** A line ``echo:fail CODE`` in the newest user message fails the run with
  ``last_error.code`` CODE (``server_error``, ``rate_limit_exceeded`` or
  ``invalid_prompt``; anything else means ``server_error``).
- **Slowness.** A line ``echo:sleep N`` makes it wait N seconds of the server's clock before
  answering (time to watch a run ``in_progress``, or to cancel it).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Sequence

from assistsync.server.runs.model import (
    Failure,
    FailureCode,
    Incomplete,
    ModelEvent,
    ModelRequest,
    RunConfig,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallRequest,
    Turn,
    Usage,
)
from assistsync.server.runs.retrieval_step import numbered_passages

CALL_LINE = re.compile(r"\s*call\s+([A-Za-z0-9_-]{1,64})(?:\s+(.*?))?\s*")
FAIL_LINE = re.compile(r"\s*echo:fail(?:\s+(\S+))?\s*")
SLEEP_LINE = re.compile(r"\s*echo:sleep\s+([0-9]+(?:\.[0-9]+)?)\s*")
FAILURE_CODES: tuple[FailureCode, ...] = ("server_error", "rate_limit_exceeded", "invalid_prompt")
CHARS_PER_TOKEN = 4


def tokens(chars: int) -> int:
    """The echo model's token count: one per 4 characters, rounded up."""
    return math.ceil(chars / CHARS_PER_TOKEN)


def pieces(text: str) -> list[str]:
    """The deltas an answer streams in: one per word, whitespace kept (they join to ``text``)."""
    return re.findall(r"\s*\S+\s*|\s+", text) or [text]


def prompt_tokens(config: RunConfig, turns: Sequence[Turn]) -> int:
    """The echo model's prompt count: instructions plus every turn's text, calls and outputs."""
    return tokens(_prompt_chars(config, turns))


class EchoModel:
    """The ``echo`` backend (see the module docstring for its rules)."""

    def respond(self, request: ModelRequest) -> Iterator[ModelEvent]:
        config, turns = request.config, request.conversation
        prompt = prompt_tokens(config, turns)
        last_user = next((t for t in reversed(turns) if t.role == "user"), None)
        lines = last_user.text.splitlines() if last_user is not None else []
        answering_outputs = bool(turns) and bool(turns[-1].tool_calls)
        if not answering_outputs:
            for line in lines:
                found = FAIL_LINE.fullmatch(line)
                if found:
                    code = found.group(1) or "server_error"
                    known: FailureCode = next(
                        (c for c in FAILURE_CODES if c == code), "server_error"
                    )
                    yield Failure(known, f"The echo model failed as asked ('{line.strip()}').")
                    return
            for line in lines:
                found = SLEEP_LINE.fullmatch(line)
                if found and not request.sleep(float(found.group(1))):
                    return
        if config.max_prompt_tokens is not None and prompt > config.max_prompt_tokens:
            yield Usage(prompt, 0)
            yield Incomplete("max_prompt_tokens")
            return
        if not answering_outputs:
            calls = _calls(config, lines)
            if isinstance(calls, Failure):
                yield calls
                return
            if calls:
                yield from _fragments(calls)
                yield from calls
                completion = sum(len(c.name) + len(c.arguments) for c in calls)
                yield Usage(prompt, tokens(completion))
                return
        answer = (
            _outputs_answer(config, turns[-1].tool_calls)
            if answering_outputs
            else _text_answer(config, last_user, numbered_passages(request.context))
        )
        limit = config.max_completion_tokens
        cut = limit is not None and tokens(len(answer)) > limit
        if cut and limit is not None:
            answer = answer[: limit * CHARS_PER_TOKEN]
        for piece in pieces(answer):
            yield TextDelta(piece)
        yield Usage(prompt, tokens(len(answer)))
        if cut:
            yield Incomplete("max_completion_tokens")


def _prompt_chars(config: RunConfig, turns: Sequence[Turn]) -> int:
    total = len(config.instructions)
    for turn in turns:
        total += len(turn.text)
        for call in turn.tool_calls:
            total += len(call.name) + len(call.arguments) + len(call.output or "")
    return total


def _fragments(calls: Sequence[ToolCallRequest]) -> Iterator[ToolCallDelta]:
    """The calls written in pieces as a streaming backend writes them: each call's arguments
    in up to three fragments, one call after the other (as the hosted API streamed parallel
    calls, so SDK handlers see each call created once, then its deltas)."""
    for index, call in enumerate(calls):
        for number, part in enumerate(_thirds(call.arguments)):
            yield ToolCallDelta(index, call.name if number == 0 else None, part)


def _thirds(text: str) -> list[str]:
    """``text`` in up to three non-empty pieces that join to it (one piece if it is empty)."""
    size = max(1, math.ceil(len(text) / 3))
    return [text[i : i + size] for i in range(0, len(text), size)] or [text]


def _calls(config: RunConfig, lines: Sequence[str]) -> list[ToolCallRequest] | Failure:
    choice = config.tool_choice
    if choice == "none":
        return []
    functions = config.functions()
    asked: list[ToolCallRequest] = []
    for line in lines:
        found = CALL_LINE.fullmatch(line)
        if not found or found.group(1) not in functions:
            continue
        raw = found.group(2) or "{}"
        try:
            arguments = json.loads(raw)
        except ValueError:
            continue
        if isinstance(arguments, dict):
            asked.append(ToolCallRequest(found.group(1), json.dumps(arguments)))
    if isinstance(choice, dict) and choice.get("type") == "function":
        forced = str(choice.get("function", {}).get("name", ""))
        if forced not in functions:
            return Failure(
                "invalid_prompt",
                f"tool_choice names the function '{forced}', which is not a tool of this run.",
            )
        return [c for c in asked if c.name == forced] or [ToolCallRequest(forced, "{}")]
    return asked


def _text_answer(
    config: RunConfig, last_user: Turn | None, passages: Sequence[tuple[int, str]] = ()
) -> str:
    said = last_user.text if last_user is not None else None
    if passages and not config.wants_json:
        number, text = passages[0]
        return f"echo: {said}\n\n{text}【{number}†source】"
    if config.wants_json:
        return json.dumps({"echo": said})
    return f"echo: {said}" if said is not None else "echo: (no user message)"


def _outputs_answer(config: RunConfig, calls: Sequence[ToolCall]) -> str:
    if config.wants_json:
        return json.dumps({"tool_outputs": {c.name: c.output for c in calls}})
    return "echo: " + "; ".join(f"{c.name} returned {c.output}" for c in calls)
