"""How the server reaches a chat-completions backend: address, key, model names, concurrency.

The same settings come from two front ends: ``assistsync server`` options
(``--chat-url``, ``--chat-key-env``, ``--model``, ``--chat-concurrency``) and, for the
``--sandbox`` server that commands start in-process, environment variables
(:data:`ENV_URL` and friends; the server options read the same variables as defaults).

The key itself is never a setting: only the *name* of the environment variable that holds it
is, and the key is read from the environment when the backend is built. It never appears in a
log line, an error message or a run object.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

ENV_URL = "ASSISTSYNC_CHAT_URL"
ENV_KEY_ENV = "ASSISTSYNC_CHAT_KEY_ENV"
ENV_MODELS = "ASSISTSYNC_CHAT_MODELS"
"""Comma-separated ``NAME=BACKEND_NAME`` pairs, as ``--model`` takes them."""
ENV_CONCURRENCY = "ASSISTSYNC_CHAT_CONCURRENCY"
DEFAULT_CONCURRENCY = 8
"""Backend calls in flight at once by default (a local model server rarely batches more)."""
DEFAULT_MODEL = "*"


class ChatSettingsError(ValueError):
    """A chat setting is wrong; the message says which, what is wrong and what to do."""


@dataclass(frozen=True)
class ChatSettings:
    """Where and how to call the backend.

    ``models`` maps assistant model names (``gpt-4-turbo``) to the backend's names
    (``llama3.1:8b``); the name ``*`` is the default for names not listed; without a default,
    unlisted names pass through unchanged.
    """

    url: str
    key_env: str | None = None
    models: tuple[tuple[str, str], ...] = ()
    concurrency: int = DEFAULT_CONCURRENCY
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 120.0
    """Longest wait for the next byte of an answer; a backend silent this long is retried."""

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ChatSettingsError(
                f"the chat backend URL '{self.url}' is not an http(s) URL; give its API root, "
                "e.g. http://127.0.0.1:11434/v1 (requests go to URL/chat/completions)"
            )
        if self.concurrency < 1:
            raise ChatSettingsError("the chat concurrency must be at least 1")

    @property
    def chat_url(self) -> str:
        """The ``/chat/completions`` endpoint under :attr:`url`."""
        return self.url.rstrip("/") + "/chat/completions"

    @property
    def shown_url(self) -> str:
        """:attr:`chat_url` without any ``user:password@`` part, for logs and messages."""
        scheme, _, rest = self.chat_url.partition("://")
        host, slash, path = rest.partition("/")
        return f"{scheme}://{host.rpartition('@')[2]}{slash}{path}"

    def backend_model(self, name: str) -> str:
        """The backend's name for the assistant model ``name``."""
        mapping = dict(self.models)
        return mapping.get(name, mapping.get(DEFAULT_MODEL, name))

    def key(self, environ: Mapping[str, str] = os.environ) -> str | None:
        """The backend key, read from the environment variable :attr:`key_env` (None when no
        variable is named). Raises :class:`ChatSettingsError` when it is named but unset."""
        if not self.key_env:
            return None
        key = environ.get(self.key_env, "").strip()
        if not key:
            raise ChatSettingsError(
                f"the chat backend key variable {self.key_env} is not set (or empty); export "
                "it, or leave out the key variable for a backend that needs no key"
            )
        return key


def parse_models(items: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """``NAME=BACKEND_NAME`` items (``*=NAME`` for the default) as pairs; a clear
    :class:`ChatSettingsError` for a malformed or repeated one."""
    pairs: dict[str, str] = {}
    for item in items:
        name, sep, backend = (part.strip() for part in item.partition("="))
        if not sep or not name or not backend:
            raise ChatSettingsError(
                f"model mapping '{item}' is not NAME=BACKEND_NAME (e.g. gpt-4-turbo=llama3.1, "
                "or *=llama3.1 for every other name)"
            )
        if name in pairs:
            raise ChatSettingsError(f"model name '{name}' is mapped twice")
        pairs[name] = backend
    return tuple(pairs.items())


def from_env(environ: Mapping[str, str] = os.environ) -> ChatSettings | None:
    """The settings from :data:`ENV_URL` and friends; None when :data:`ENV_URL` is unset."""
    url = environ.get(ENV_URL, "").strip()
    if not url:
        return None
    raw = environ.get(ENV_CONCURRENCY, "").strip()
    try:
        concurrency = int(raw) if raw else DEFAULT_CONCURRENCY
    except ValueError:
        raise ChatSettingsError(f"{ENV_CONCURRENCY} must be a whole number, got '{raw}'") from None
    models = [part for part in environ.get(ENV_MODELS, "").split(",") if part.strip()]
    return ChatSettings(
        url=url,
        key_env=environ.get(ENV_KEY_ENV, "").strip() or None,
        models=parse_models(models),
        concurrency=concurrency,
    )
