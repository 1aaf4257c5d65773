"""A run's turn as a chat-completions request: pure data in, data out.

What goes where (the hosted Assistants API did these on its side; a v1 client cannot tell):

- ``system``: the run's effective instructions (``additional_instructions`` already
  appended by the engine), then :attr:`ModelRequest.context` blocks (retrieval passages), each
  separated by a blank line; no system message when all of that is empty.
- the thread's messages in order, ``user`` / ``assistant`` by role;
- this run's earlier tool calls as one ``assistant`` message with ``tool_calls`` (together
  with the text the assistant wrote just before them, as the backend produced them), then one
  ``tool`` message per call with its submitted output. The ids are our own ``call_…`` ids on
  both sides: chat-completions backends keep no state between requests, so what they check is
  that each ``tool_call_id`` answers an id of the preceding ``assistant`` message — and ours
  are unique, where backends' own ids are not always (some reuse one id, some send none). The
  backend's ids live only while its answer streams (:mod:`.stream` keys fragments by index).
- ``tools``: the run's function tools only. ``retrieval`` is done by the server before the
  model is asked; ``code_interpreter`` is not executed by this server, so it is never offered.
- ``tool_choice``: ``none`` / ``auto`` / a named function as is; a named ``retrieval`` means
  "search first", which the server does, so the model gets ``auto``; a named
  ``code_interpreter`` cannot be honoured and fails the run, saying so.
- ``response_format`` ``json_object`` as is (``auto`` and ``text`` are the default: omitted);
  ``temperature``, ``top_p``; ``max_completion_tokens`` as ``max_tokens``.
- ``truncation_strategy``: ``last_messages`` is applied by the engine (for every backend);
  ``auto`` is applied here, where prompt size is known: with ``max_prompt_tokens`` set, the
  oldest messages after the first are dropped until the prompt fits — the first message
  (what the thread is about) and everything from the newest user message on (the question and
  this run's own calls) are kept. A prompt that still does not fit is not sent: the run ends
  ``completed`` with ``incomplete_details.reason = max_prompt_tokens``, as the hosted API did.

Token counts here are estimates (a backend's tokenizer is its own): 4 characters a token plus 4
per message, the rule of thumb for English text with OpenAI-style chat templates.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from assistsync.server.runs.model import Failure, Incomplete, ModelRequest, Turn

Json = dict[str, Any]

CHARS_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 4


def estimate_tokens(text: str) -> int:
    """Tokens of ``text`` (an estimate: one per 4 characters, rounded up)."""
    return tokens_of_chars(len(text))


def tokens_of_chars(chars: int) -> int:
    """Estimated tokens of ``chars`` characters of text."""
    return math.ceil(chars / CHARS_PER_TOKEN)


def prompt_tokens(messages: Sequence[Json], tools: Sequence[Json] = ()) -> int:
    """Estimated prompt tokens of ``messages`` (and the tool definitions)."""
    total = 0
    for message in messages:
        total += TOKENS_PER_MESSAGE + estimate_tokens(message.get("content") or "")
        for call in message.get("tool_calls") or ():
            total += estimate_tokens(call["function"]["name"] + call["function"]["arguments"])
    if tools:
        total += estimate_tokens(json.dumps(list(tools)))
    return total


def system_text(request: ModelRequest) -> str:
    """The system message: instructions, then the extra context blocks."""
    parts = [request.config.instructions, *request.context]
    return "\n\n".join(part for part in parts if part)


def turn_messages(turns: Sequence[Turn]) -> list[Json]:
    """The conversation as chat messages (see the module docstring)."""
    messages: list[Json] = []
    for turn in turns:
        if not turn.tool_calls:
            messages.append({"role": turn.role, "content": turn.text})
            continue
        calls = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in turn.tool_calls
        ]
        previous = messages[-1] if messages else None
        if (
            previous is not None
            and previous["role"] == "assistant"
            and "tool_calls" not in previous
            and not turn.text
        ):
            # The text the assistant wrote before calling: one message, as it was produced.
            previous["tool_calls"] = calls
        else:
            messages.append(
                {"role": "assistant", "content": turn.text or None, "tool_calls": calls}
            )
        messages.extend(
            {"role": "tool", "tool_call_id": call.id, "content": call.output or ""}
            for call in turn.tool_calls
        )
    return messages


def fit(
    system: list[Json], messages: list[Json], tools: Sequence[Json], budget: int
) -> list[Json] | None:
    """``messages`` with the oldest after the first dropped until system + messages fit in
    ``budget`` tokens; None when even the kept ones do not fit. Kept always: the first
    message and everything from the newest ``user`` message on; a ``tool`` message is never
    separated from the ``assistant`` message that called it (they are dropped together)."""
    last_user = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=0)
    kept = list(messages)
    drop_at = 1
    while prompt_tokens(system + kept, tools) > budget:
        if drop_at >= len(kept) - (len(messages) - last_user) or drop_at >= len(kept):
            return None
        del kept[drop_at]
        while drop_at < len(kept) and kept[drop_at]["role"] == "tool":
            del kept[drop_at]
    return kept


def tools_of(request: ModelRequest) -> list[Json]:
    """The run's function tools, as chat-completions ``tools``."""
    return [
        {"type": "function", "function": tool["function"]}
        for tool in request.config.tools
        if tool.get("type") == "function"
    ]


def tool_choice_of(request: ModelRequest, tools: Sequence[Json]) -> str | Json | Failure | None:
    """The chat ``tool_choice`` (None: leave it out), or the reason the run cannot go on."""
    choice = request.config.tool_choice
    if isinstance(choice, dict):
        kind = choice.get("type")
        if kind == "function":
            return {"type": "function", "function": {"name": choice["function"]["name"]}}
        if kind == "code_interpreter":
            return Failure(
                "invalid_prompt",
                "tool_choice names code_interpreter, which this server does not run (chat "
                "backends are offered function tools only); use tool_choice 'auto' or a "
                "function.",
            )
        choice = "auto"  # retrieval: the server searches before asking the model
    if not tools:
        return None  # backends reject a tool_choice without tools
    return choice if choice in ("none", "auto") else "auto"


def chat_body(
    request: ModelRequest, model: str, *, include_usage: bool = True
) -> Json | Failure | Incomplete:
    """The ``/chat/completions`` body for this turn (always ``stream: true``), a
    :class:`Failure` when the run asks for something no chat backend can do, or
    :class:`Incomplete` when the prompt cannot fit ``max_prompt_tokens``."""
    config = request.config
    tools = tools_of(request)
    choice = tool_choice_of(request, tools)
    if isinstance(choice, Failure):
        return choice
    system_prompt = system_text(request)
    system = [{"role": "system", "content": system_prompt}] if system_prompt else []
    messages = turn_messages(request.conversation)
    budget = config.max_prompt_tokens
    if budget is not None:
        if config.truncation_strategy.get("type", "auto") == "auto":
            fitted = fit(system, messages, tools, budget)
        else:
            fitted = messages if prompt_tokens(system + messages, tools) <= budget else None
        if fitted is None:
            return Incomplete("max_prompt_tokens")
        messages = fitted
    body: Json = {"model": model, "messages": system + messages, "stream": True}
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    if tools:
        body["tools"] = tools
    if choice is not None:
        body["tool_choice"] = choice
    if config.wants_json:
        body["response_format"] = {"type": "json_object"}
    if config.temperature is not None:
        body["temperature"] = config.temperature
    if config.top_p is not None:
        body["top_p"] = config.top_p
    if config.max_completion_tokens is not None:
        body["max_tokens"] = config.max_completion_tokens
    return body
