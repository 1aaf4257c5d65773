"""Fixtures shared by the chat-backend tests: the stand-in backend, a server on a manual clock
whose runs it answers, and the official SDK 1.20 pointed at that server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from chat_testkit import StandIn
from openai import AssistantEventHandler, OpenAI
from openai.types.beta.threads import Text, TextDelta
from runs_testkit import FUNCTIONS, WAIT_S, sdk_for
from server_testkit import ServerFactory

from assistsync.server.backends import ChatBackend, ChatSettings
from assistsync.server.routes import GROUPS
from assistsync.server.runs.clock import ManualClock
from assistsync.server.runs.endpoints import RunOptions, configured, engine_of

KEY = "sk-backend-secret-5f1d2c9a"
"""The backend key the tests hand the server (through an environment mapping)."""
KEY_ENV = "STANDIN_CHAT_KEY"
BACKEND_MODEL = "standin-model"


class Log(list[str]):
    """Log lines (the server's and the backend's), with a wait for one to appear."""

    def __init__(self) -> None:
        super().__init__()
        self._cond = threading.Condition()

    def append(self, line: str) -> None:
        with self._cond:
            super().append(line)
            self._cond.notify_all()

    def wait_for(self, text: str, count: int = 1) -> None:
        """Return once ``count`` lines contain ``text``."""
        with self._cond:
            assert self._cond.wait_for(lambda: sum(text in line for line in self) >= count, WAIT_S)


class ChatServer:
    """The real server, its runs answered by the stand-in (or the backend at a URL) through a
    real :class:`ChatBackend`."""

    def __init__(
        self,
        make_server: ServerFactory,
        backend: StandIn | str,
        *,
        run_expiry_s: int = 600,
        max_concurrent_runs: int | None = None,
        **settings: Any,
    ) -> None:
        self.logs = Log()
        self.backend = ChatBackend(
            ChatSettings(
                url=backend if isinstance(backend, str) else backend.url,
                key_env=KEY_ENV,
                models=(("gpt-4-turbo", BACKEND_MODEL),),
                **settings,
            ),
            environ={KEY_ENV: KEY},
            log=self.logs.append,
        )
        self.clock = ManualClock()
        options = RunOptions(
            max_concurrent_runs, run_expiry_s=run_expiry_s, models=self.backend.source
        )
        self.handle = make_server(
            clock=self.clock, groups=configured(GROUPS, options), log=self.logs.append
        )
        self.engine = engine_of(self.handle.context)

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.engine.tick()

    def sdk(self) -> OpenAI:
        return sdk_for(self.handle.base_url)

    def close(self) -> None:
        self.handle.stop()
        self.backend.close()


class Deltas(AssistantEventHandler):
    """Records the text deltas the SDK hands a stream's event handler."""

    def __init__(self) -> None:
        super().__init__()
        self.deltas: list[str] = []

    def on_text_delta(self, delta: TextDelta, snapshot: Text) -> None:
        self.deltas.append(delta.value or "")


@pytest.fixture
def standin() -> Iterator[StandIn]:
    backend = StandIn()
    yield backend
    backend.close()


@pytest.fixture
def chat(make_server: ServerFactory, standin: StandIn) -> Iterator[ChatServer]:
    server = ChatServer(make_server, standin)
    yield server
    server.close()


@pytest.fixture
def sdk(chat: ChatServer) -> Iterator[OpenAI]:
    client = chat.sdk()
    yield client
    client.close()


__all__ = ["BACKEND_MODEL", "FUNCTIONS", "KEY", "KEY_ENV", "ChatServer", "Deltas"]
