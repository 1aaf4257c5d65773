"""What answers a run: the model interface every backend implements.

The engine hands a backend one :class:`ModelRequest` per turn: the run's effective
configuration (:class:`RunConfig`) and the conversation (:class:`Turn` values: the thread's
messages after truncation, then this run's own earlier tool calls and the outputs submitted for
them). The backend answers with an iterator of :data:`ModelEvent` values, produced as the
answer is produced so that streaming clients see text as it is written:

- :class:`TextDelta` — a piece of the assistant's message text;
- :class:`ToolCallDelta` — optional: a fragment of a call being written, so that streaming
  clients see the call as it is written (fragments of call ``index`` concatenate to its
  arguments; calls are numbered 0, 1, … in the order their first fragment comes);
- :class:`ToolCallRequest` — a function the model wants called (several per turn are parallel
  calls; the engine gives each its unique ``call_…`` id). The whole calls are the source of
  truth: the ``k``-th request is the call whose fragments had ``index`` ``k`` (if any were
  sent), and a call that was streamed but never requested (cut off) is dropped;
- :class:`Usage` — tokens used by this turn (sent once, last; the engine sums turns);
- :class:`Incomplete` — the answer was cut short by ``max_prompt_tokens`` /
  ``max_completion_tokens`` (the run still ends ``completed``, with ``incomplete_details``);
- :class:`Failure` — the turn failed; the run fails with this ``last_error``.

The shape follows chat completions (system + user/assistant/tool messages, tools,
tool_choice, response_format, sampling, max tokens), so a chat-completions backend is a
translation, not a redesign. A backend must never hang: anything it cannot do (a tool type it
does not support, an unreachable server) is a :class:`Failure` with a clear message.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Json = dict[str, Any]

FailureCode = Literal["server_error", "rate_limit_exceeded", "invalid_prompt"]
IncompleteReason = Literal["max_completion_tokens", "max_prompt_tokens"]


@dataclass(frozen=True)
class RunConfig:
    """The effective configuration of a run, after every create-run override.

    ``instructions`` already carries ``additional_instructions``; ``tools`` are the run's tools
    (the assistant's unless overridden); ``tool_choice`` is ``"none"``, ``"auto"`` or a named
    tool object; ``response_format`` is ``"none"``, ``"auto"`` or ``{"type": ...}``.
    """

    model: str
    instructions: str
    tools: tuple[Json, ...] = ()
    tool_choice: str | Json = "auto"
    response_format: str | Json = "auto"
    temperature: float | None = None
    top_p: float | None = None
    max_prompt_tokens: int | None = None
    max_completion_tokens: int | None = None
    truncation_strategy: Json = field(default_factory=lambda: {"type": "auto"})

    def functions(self) -> dict[str, Json]:
        """The run's function tools by name (their ``function`` objects)."""
        return {
            tool["function"]["name"]: tool["function"]
            for tool in self.tools
            if tool.get("type") == "function"
        }

    @property
    def wants_json(self) -> bool:
        """Whether ``response_format`` is ``{"type": "json_object"}``."""
        return isinstance(self.response_format, dict) and (
            self.response_format.get("type") == "json_object"
        )


@dataclass(frozen=True)
class ToolCall:
    """A function call the assistant made earlier in this run, and its submitted output."""

    id: str
    name: str
    arguments: str
    output: str | None = None


@dataclass(frozen=True)
class Turn:
    """One entry of the conversation.

    ``role`` is ``user`` or ``assistant`` for thread messages (``text`` is their text content,
    parts joined by blank lines); an ``assistant`` turn with ``tool_calls`` is this run's
    earlier request for calls, each carrying the output submitted for it.
    """

    role: Literal["user", "assistant"]
    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()


@dataclass(frozen=True)
class ModelRequest:
    """Everything a backend gets for one turn of a run."""

    config: RunConfig
    conversation: tuple[Turn, ...]
    sleep: Callable[[float], bool] = lambda seconds: True
    """Wait ``seconds`` on the run's clock, counted (with any earlier waits of the turn) from
    the moment the turn started; False means stop now (the run was cancelled or expired, or
    the server is stopping). Backends that wait on the network do not need it."""
    sleep_until: Callable[[float], bool] = lambda deadline: True
    """Wait until the run's clock reads ``deadline`` (an absolute time, unlike :attr:`sleep`);
    False means stop now, as for :attr:`sleep`. A backend backing off between retries uses it."""
    expires_at: float | None = None
    """The run's ``expires_at`` (on :attr:`now`'s clock): a backend that retries a failing
    call gives up in time to fail the run before it would expire."""
    now: Callable[[], float] = time.time
    """The run's clock, in Unix seconds."""
    context: tuple[str, ...] = ()
    """Extra system context for this turn, after the instructions, in order (a retrieval step
    puts its numbered passages here; backends that have a system prompt append them)."""


@dataclass(frozen=True)
class TextDelta:
    """A piece of the assistant's message text."""

    text: str


@dataclass(frozen=True)
class ToolCallRequest:
    """The model asks for a call of the function ``name`` with JSON ``arguments``."""

    name: str
    arguments: str


@dataclass(frozen=True)
class ToolCallDelta:
    """A fragment of call ``index`` (0, 1, … in order of first fragment): ``name`` comes with
    its first fragment only, ``arguments`` is the next piece of its JSON arguments."""

    index: int
    name: str | None
    arguments: str


@dataclass(frozen=True)
class Usage:
    """Tokens this turn used."""

    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class Incomplete:
    """The answer stopped at a token limit (the run ends ``completed`` with this reason)."""

    reason: IncompleteReason


@dataclass(frozen=True)
class Failure:
    """The turn failed; the run fails with ``last_error = {code, message}``."""

    code: FailureCode
    message: str


ModelEvent = TextDelta | ToolCallDelta | ToolCallRequest | Usage | Incomplete | Failure


class Model(Protocol):
    """A backend: produces one turn of a run, as it goes."""

    def respond(self, request: ModelRequest) -> Iterator[ModelEvent]:
        """The events of this turn, in order (see the module docstring)."""
        ...


ModelSource = Callable[[str], Model]
"""Picks the backend for a run's ``model`` name."""


def truncate(turns: Sequence[Turn], strategy: Json) -> tuple[Turn, ...]:
    """Apply ``truncation_strategy`` to the thread's messages.

    ``last_messages`` keeps the ``n`` most recent; ``auto`` keeps everything here and leaves
    fitting the context to the backend (the echo model has no context limit).
    """
    if strategy.get("type") == "last_messages" and strategy.get("last_messages"):
        keep = int(strategy["last_messages"])
        return tuple(turns[-keep:])
    return tuple(turns)
