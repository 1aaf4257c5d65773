"""The chat-completions backend: a run's turn sent to ``POST {url}/chat/completions``.

Layers, one concern each (as httpx's own sending is layered):

- :meth:`ChatBackend.respond` — the retry policy: a failed attempt is tried again after
  ``retry-after-ms`` / ``retry-after`` (when the backend gives one) or ``min(0.5 × 2^n, 8)`` s
  less up to 25 % jitter (the SDK 1.20's schedule), for as long as the run's budget allows: an
  attempt that could not finish before the run's ``expires_at`` is not started, and the run
  fails with the last problem (``rate_limit_exceeded`` for 429, ``server_error`` otherwise),
  naming the backend's status. Retried: 408, 409, 429, 5xx, timeouts, refused and dropped
  connections (``x-should-retry`` overrides), but never once any part of the answer has
  reached the run (that would repeat it).
- :meth:`ChatBackend._attempt` — one call: a slot of the ``--chat-concurrency`` bound, the
  request, the stream read as it arrives (:mod:`.stream`), and a watcher that closes the
  connection as soon as the run is cancelled or expires, so a silent backend cannot hold a
  cancelled run.
- error mapping: a backend status becomes a :class:`Problem` (retry) or a
  :class:`~assistsync.server.runs.model.Failure` with a message that says what the backend
  refused (its function tools, ``response_format``, the key, the model name) and what to do.
  Backend text is cut short and scrubbed of the key before it goes anywhere.

``httpx`` exceptions are caught here and nowhere above (the house rule for foreign errors).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from assistsync.server.backends.settings import ChatSettings
from assistsync.server.backends.stream import Answer, BadAnswer, sse_data
from assistsync.server.backends.translate import chat_body, prompt_tokens
from assistsync.server.runs.model import (
    Failure,
    FailureCode,
    Incomplete,
    Model,
    ModelEvent,
    ModelRequest,
)

Json = dict[str, Any]

RETRY_STATUSES = frozenset({408, 409, 429})
MAX_BACKOFF_S = 8.0
WATCH_INTERVAL_S = 0.05
"""How often a call in flight checks whether its run must stop (cancel → closed within this)."""
DETAIL_CHARS = 300
"""Backend error text kept in a run's ``last_error`` (enough to read, never a whole page)."""


@dataclass(frozen=True)
class Problem:
    """A failed attempt that may be tried again."""

    code: FailureCode
    message: str
    delay_s: float | None = None
    """What the backend asked us to wait (None: our own backoff)."""
    retry: bool = True
    usage_unsupported: bool = False
    """The backend rejected ``stream_options``: ask again without it (not counted)."""


Attempt = Generator[ModelEvent, None, Problem | None]


class Slots:
    """A bounded semaphore whose waiters give up when their run must stop."""

    def __init__(self, size: int) -> None:
        self._free = size
        self._cond = threading.Condition()

    def acquire(self, stopped: Callable[[], bool]) -> bool:
        """Take a slot; False (none taken) when ``stopped()`` turns true first."""
        with self._cond:
            while self._free == 0:
                if stopped():
                    return False
                self._cond.wait(WATCH_INTERVAL_S)
            self._free -= 1
            return True

    def release(self) -> None:
        with self._cond:
            self._free += 1
            self._cond.notify()


class _Watch:
    """Closes ``response`` from another thread when the run must stop."""

    def __init__(self, request: ModelRequest, response: httpx.Response) -> None:
        self.stopped = False
        self._done = threading.Event()
        self._request = request
        self._response = response
        self._thread = threading.Thread(target=self._run, name="assistsync-chat-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.wait(WATCH_INTERVAL_S):
            if _stopped(self._request):
                self.stopped = True
                # Shutting the socket down wakes the worker's blocked read at once (closing
                # it alone would not, on Linux); then the connection is closed for good.
                network = self._response.extensions.get("network_stream")
                sock = network.get_extra_info("socket") if network is not None else None
                with contextlib.suppress(OSError):
                    if sock is not None:
                        sock.shutdown(socket.SHUT_RDWR)
                return

    def end(self) -> None:
        self._done.set()
        self._thread.join()


class ChatBackend:
    """A :class:`~assistsync.server.runs.model.Model` answered by a chat-completions server.

    One instance serves every run of a server (its connection pool and concurrency bound are
    shared); :meth:`source` is the engine's ``ModelSource``. Close it after the server stops.
    """

    def __init__(
        self,
        settings: ChatSettings,
        *,
        environ: Mapping[str, str] = os.environ,
        transport: httpx.BaseTransport | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        """Reads the key now (a :class:`~.settings.ChatSettingsError` when its variable is
        named but unset)."""
        self.settings = settings
        self._key = settings.key(environ)
        headers = {"accept": "text/event-stream, application/json"}
        if self._key:
            headers["authorization"] = f"Bearer {self._key}"
        limit = settings.concurrency
        self._http = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(
                connect=settings.connect_timeout_s,
                read=settings.read_timeout_s,
                write=settings.read_timeout_s,
                pool=None,
            ),
            limits=httpx.Limits(max_connections=limit, max_keepalive_connections=limit),
            transport=transport,
        )
        self._slots = Slots(limit)
        self._log = log or (lambda _: None)
        self.streamed_usage = True
        """Whether ``stream_options.include_usage`` is sent (off once the backend refuses it)."""

    def source(self, name: str) -> Model:
        """The engine's ``ModelSource``: this backend answers every model name."""
        return self

    def close(self) -> None:
        self._http.close()

    # -- retry policy ---------------------------------------------------------------------------

    def respond(self, request: ModelRequest) -> Iterator[ModelEvent]:
        model = self.settings.backend_model(request.config.model)
        attempts = 0
        while True:
            body = chat_body(request, model, include_usage=self.streamed_usage)
            if isinstance(body, Failure | Incomplete):
                yield body
                return
            problem = yield from self._attempt(request, body)
            if problem is None:
                return
            if problem.usage_unsupported:
                self.streamed_usage = False
                continue
            attempts += 1
            if not problem.retry:
                yield Failure(problem.code, problem.message)
                return
            delay = problem.delay_s if problem.delay_s is not None else backoff(attempts)
            retry_at = request.now() + delay
            if request.expires_at is not None and retry_at >= request.expires_at:
                tries = "1 attempt" if attempts == 1 else f"{attempts} attempts"
                yield Failure(
                    problem.code,
                    f"{problem.message} (gave up after {tries}: the run expires before "
                    "another could finish)",
                )
                return
            self._log(f"chat backend: {problem.message}; retrying in {delay:.2f} s")
            if not request.sleep_until(retry_at):
                return  # the run was cancelled or expired while waiting

    # -- one call ------------------------------------------------------------------------------

    def _attempt(self, request: ModelRequest, body: Json) -> Attempt:
        answer = Answer(prompt_estimate=prompt_tokens(body["messages"], body.get("tools", ())))
        if not self._slots.acquire(lambda: _stopped(request)):
            return None
        try:
            try:
                response = self._http.send(
                    self._http.build_request("POST", self.settings.chat_url, json=body),
                    stream=True,
                )
            except httpx.TimeoutException as exc:
                return Problem("server_error", f"The chat backend timed out ({_name(exc)})")
            except httpx.ConnectError as exc:
                return Problem(
                    "server_error", f"The chat backend could not be reached ({_name(exc)})"
                )
            except httpx.TransportError as exc:
                return Problem(
                    "server_error",
                    f"The chat backend's connection broke before it answered ({_name(exc)})",
                )
            watch = _Watch(request, response)
            try:
                if response.status_code != 200:
                    response.read()
                    return self._refusal(response, body)
                if "text/event-stream" in response.headers.get("content-type", ""):
                    lines = response.iter_lines()
                    for data in sse_data(lines):
                        yield from answer.chunk(data)
                    _drain(lines)
                else:
                    response.read()
                    yield from answer.whole(response.json())
                if watch.stopped:
                    return None  # the stream ended because we shut it: the run is stopping
                yield from answer.finish()
                return None
            except (httpx.TransportError, httpx.StreamError) as exc:
                if watch.stopped:
                    return None  # we closed it: the run was cancelled or expired
                broke = (
                    f"The chat backend sent nothing for {self.settings.read_timeout_s:g} s"
                    if isinstance(exc, httpx.TimeoutException)
                    else f"The chat backend's connection broke ({_name(exc)})"
                )
                if answer.started:
                    yield Failure("server_error", f"{broke} in the middle of its answer")
                    return None
                return Problem("server_error", broke)
            except (BadAnswer, ValueError) as exc:
                if watch.stopped:
                    return None
                yield Failure("server_error", self._scrub(f"The chat backend's answer: {exc}"))
                return None
            finally:
                watch.end()
                response.close()
        finally:
            self._slots.release()

    # -- error mapping ---------------------------------------------------------------------------

    def _refusal(self, response: httpx.Response, body: Json) -> Problem:
        status = response.status_code
        said = self._scrub(_error_text(response))
        named = f"The chat backend answered {status} {response.reason_phrase}".rstrip()
        message = f"{named}: {said}" if said else named
        should = response.headers.get("x-should-retry")
        retry = status in RETRY_STATUSES or status >= 500
        if should in ("true", "false"):
            retry = should == "true"
        code: FailureCode = "rate_limit_exceeded" if status == 429 else "server_error"
        if retry:
            return Problem(code, message, retry_after(response.headers))
        lowered = said.lower()
        if status == 400 and "stream_options" in lowered and "stream_options" in body:
            return Problem(code, message, usage_unsupported=True)
        if status in (400, 422):
            if "tools" in body and ("tool" in lowered or "function" in lowered):
                message = (
                    f"The chat backend rejected the run's function tools ({status}: {said}); "
                    "its model may not support tool calling: use a model that does, or run "
                    "without function tools"
                )
            elif "response_format" in body and ("response_format" in lowered or "json" in lowered):
                message = (
                    f"The chat backend rejected response_format json_object ({status}: {said}); "
                    "use a backend or model that supports JSON mode, or run without it"
                )
        elif status in (401, 403):
            variable = self.settings.key_env
            where = f"the key in {variable}" if variable else "no key (none configured)"
            message = f"{message} (the server sent {where})"
        elif status == 404:
            message = f"{message} (model '{body['model']}' at {self.settings.shown_url})"
        return Problem(code, message, retry=False)

    def _scrub(self, text: str) -> str:
        """``text`` cut short, with the key removed wherever the backend echoed it."""
        if self._key:
            text = text.replace(self._key, "[key]")
        text = " ".join(text.split())
        return text if len(text) <= DETAIL_CHARS else text[: DETAIL_CHARS - 1] + "…"


def backoff(attempt: int) -> float:
    """Our own delay before retry ``attempt`` (1-based): the SDK 1.20's schedule."""
    delay: float = min(0.5 * 2.0 ** (attempt - 1), MAX_BACKOFF_S)
    return delay * (1 - 0.25 * random.random())


def retry_after(headers: httpx.Headers) -> float | None:
    """The backend's requested delay: ``retry-after-ms``, else ``retry-after`` (seconds or an
    HTTP date) when within (0, 60] s; None otherwise."""
    with contextlib.suppress(ValueError):
        if "retry-after-ms" in headers:
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(raw).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return seconds if 0 < seconds <= 60 else None


def _error_text(response: httpx.Response) -> str:
    """What the backend said: its error message when JSON, else its text."""
    try:
        data = response.json()
    except ValueError:
        return response.text
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):
            return error
        if isinstance(data.get("detail"), str):
            return str(data["detail"])
    return json.dumps(data)


def _drain(lines: Iterator[str]) -> None:
    """Read what follows ``[DONE]`` (the end of the body), so the connection goes back to the
    pool instead of being closed, as the SDK does; the answer is whole already, so a
    connection that breaks here changes nothing."""
    with contextlib.suppress(httpx.TransportError, httpx.StreamError):
        for _ in lines:
            pass


def _stopped(request: ModelRequest) -> bool:
    """Whether the run must stop now (a wait that is already over answers at once)."""
    return not request.sleep_until(0.0)


def _name(exc: Exception) -> str:
    return type(exc).__name__
