"""Model backends other than the built-in ``echo``: OpenAI-compatible chat-completions servers.

Teams host their models behind ``POST {url}/chat/completions`` (vLLM, Ollama, llama.cpp's
server, LiteLLM, LocalAI). :class:`~.chat.ChatBackend` implements the run engine's model
interface (:mod:`assistsync.server.runs.model`) over one such server:

- :mod:`.settings` — address, key variable, model-name mapping, concurrency (from the server
  command's options or the environment);
- :mod:`.translate` — a run's turn as a request body (pure);
- :mod:`.stream` — the streamed (or whole) answer as model events (pure);
- :mod:`.chat` — the HTTP calls: retries within the run's budget, the concurrency bound,
  closing the stream when a run is cancelled, error mapping.

This package is the only part of the server that makes outgoing HTTP calls (with ``httpx``);
it imports only the model interface of the runs group, so the engine never learns the wire
format of a backend.
"""

from __future__ import annotations

from assistsync.server.backends.chat import ChatBackend
from assistsync.server.backends.settings import (
    ChatSettings,
    ChatSettingsError,
    from_env,
    parse_models,
)

__all__ = ["ChatBackend", "ChatSettings", "ChatSettingsError", "from_env", "parse_models"]
