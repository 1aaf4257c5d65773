"""A stand-in chat-completions backend: a small real HTTP server on loopback.

It speaks the real protocol (``POST /v1/chat/completions``; server-sent events with
``choices[0].delta`` chunks and ``data: [DONE]`` when the request says ``stream: true``, one
JSON ``chat.completion`` otherwise), records every request it receives (body and headers), and
answers from a script the test writes: text in chunks, tool calls (argument fragments
streamed), error statuses with headers (429 with retry-after, 500s, 400s), a dropped
connection, an answer that stalls until the test releases it (or the client hangs up, which it
records), and a fixed latency. With nothing scripted it answers :attr:`StandIn.answer` (``ok``).

``python tests/server/chat_testkit.py [LATENCY_S] [CHUNK ...]`` serves one on a free port and
prints its URL (the benchmark runs it so, in a process of its own).

The benchmark (``python -m benchmarks.chat``) serves its backend with this same class.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Json = dict[str, Any]

WAIT_S = 30
"""A safety net for waits on other threads; never reached when the code is right."""


@dataclass(frozen=True)
class Reply:
    """One scripted answer (build them with the functions below)."""

    kind: str  # text | calls | error | drop | stall
    chunks: tuple[str, ...] = ()
    calls: tuple[tuple[str, str], ...] = ()
    finish: str = "stop"
    status: int = 200
    body: Json | str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    usage: tuple[int, int] | None = (11, 7)
    interleave: bool = False
    held: int = 0  # stall: call fragments streamed before the wait


def text(*chunks: str, finish: str = "stop", usage: tuple[int, int] | None = (11, 7)) -> Reply:
    """An answer streamed in these pieces (whole when the request did not stream)."""
    return Reply("text", chunks=chunks, finish=finish, usage=usage)


def calls(*pairs: tuple[str, str], finish: str = "tool_calls", interleave: bool = False) -> Reply:
    """Tool calls ``(name, arguments)``, parallel when several; arguments stream in pieces
    (with ``interleave``, in thirds taking turns between the calls, as some servers do)."""
    return Reply("calls", calls=pairs, finish=finish, interleave=interleave)


def error(status: int, message: str = "", **headers: str) -> Reply:
    """An error status with an OpenAI-style error body (and headers, ``_`` as ``-``)."""
    return Reply(
        "error",
        status=status,
        body={"error": {"message": message or f"status {status}", "type": "error"}},
        headers=tuple((k.replace("_", "-"), v) for k, v in headers.items()),
    )


def drop(*chunks: str) -> Reply:
    """Stream ``chunks`` (none: not even the status line), then cut the connection."""
    return Reply("drop", chunks=chunks)


def stall(*chunks: str, calls: tuple[tuple[str, str], ...] = (), fragments: int = 0) -> Reply:
    """Stream ``chunks`` (and the first ``fragments`` argument fragments of ``calls``, two per
    call), then wait: until :meth:`StandIn.release` (then the answer ends as usual) or until
    the client hangs up (recorded in :attr:`StandIn.hangups`)."""
    finish = "tool_calls" if calls else "stop"
    return Reply("stall", chunks=chunks, calls=calls, finish=finish, held=fragments)


@dataclass
class StandIn:
    """The stand-in backend; ``url`` is its API root (``http://127.0.0.1:PORT/v1``)."""

    latency_s: float = 0.0
    """Wait this long before each answer (a benchmark's slow backend)."""
    reject_stream_options: bool = False
    """Answer 400 to a request with ``stream_options`` (as some servers do)."""
    send_usage: bool = True
    answer: tuple[str, ...] = ("ok",)
    """The chunks of the answer when nothing is scripted."""
    requests: list[Json] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    hangups: int = 0
    """Answers whose client hung up before their end (stalled ones, mostly)."""
    in_flight: int = 0
    max_in_flight: int = 0
    """The most requests it was answering at once."""

    def __post_init__(self) -> None:
        self._script: deque[Reply] = deque()
        self._cond = threading.Condition()
        self._released = threading.Event()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # each chunk leaves at once, as real servers send

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                stand_in._handle(self)

        class Server(ThreadingHTTPServer):
            request_queue_size = 256  # 64 clients connecting at once must not wait on SYN retries

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # close() waits for the serving loop to look again: every 20 ms, not the default 0.5 s.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    # -- what the test does ---------------------------------------------------------------------

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with ``replies``, in order."""
        with self._cond:
            self._script.extend(replies)

    def release(self) -> None:
        """Let stalled answers finish."""
        self._released.set()

    def wait_requests(self, count: int) -> list[Json]:
        """The recorded requests, once there are at least ``count``."""
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.requests) >= count, WAIT_S)
            return list(self.requests)

    def wait_hangups(self, count: int) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: self.hangups >= count, WAIT_S)

    def close(self) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()

    # -- the server side ------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("content-length") or 0)
        body = json.loads(handler.rfile.read(length) or b"{}")
        with self._cond:
            self.requests.append(body)
            self.headers.append({k.lower(): v for k, v in handler.headers.items()})
            self._cond.notify_all()
            reply = self._script.popleft() if self._script else text(*self.answer)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            self._answer(handler, body, reply)
        finally:
            with self._cond:
                self.in_flight -= 1

    def _answer(self, handler: BaseHTTPRequestHandler, body: Json, reply: Reply) -> None:
        if self.latency_s:
            time.sleep(self.latency_s)
        if handler.path.rstrip("/") != "/v1/chat/completions":
            return _send_json(handler, 404, {"error": {"message": f"no route {handler.path}"}})
        if self.reject_stream_options and "stream_options" in body:
            message = "Unrecognized request argument supplied: stream_options"
            return _send_json(handler, 400, {"error": {"message": message}})
        if reply.kind == "error":
            return _send_json(handler, reply.status, reply.body, reply.headers)
        if reply.kind == "drop" and not reply.chunks:
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
            return None
        chunks = list(self._chunks(body, reply))
        if not body.get("stream"):
            return _send_json(handler, 200, _whole(body, reply))
        handler.send_response(200)
        handler.send_header("content-type", "text/event-stream")
        handler.send_header("transfer-encoding", "chunked")
        handler.end_headers()
        if reply.kind in ("drop", "stall"):
            sent = 1 + len(reply.chunks) + reply.held  # the role chunk, the text, fragments
            for chunk in chunks[:sent]:
                _write_chunk(handler, f"data: {json.dumps(chunk)}\n\n")
            chunks = chunks[sent:]
            if reply.kind == "drop" or not self._stall(handler):
                handler.close_connection = True
                handler.connection.shutdown(socket.SHUT_RDWR)
                return None
        try:
            for chunk in chunks:
                _write_chunk(handler, f"data: {json.dumps(chunk)}\n\n")
            _write_chunk(handler, "data: [DONE]\n\n")
            _write_chunk(handler, "")
        except (BrokenPipeError, ConnectionResetError):
            # Hung up on after all (a release racing the hang-up): recorded the same way.
            handler.close_connection = True
            self._hung_up()
        return None

    def _stall(self, handler: BaseHTTPRequestHandler) -> bool:
        """Wait for :meth:`release` (True: finish the answer) or the client hanging up."""
        conn = handler.connection
        while not self._released.wait(0.01):
            readable, _, _ = select.select([conn], [], [], 0)
            if readable and not conn.recv(1, socket.MSG_PEEK):
                self._hung_up()
                return False
        return True

    def _hung_up(self) -> None:
        with self._cond:
            self.hangups += 1
            self._cond.notify_all()

    def _chunks(self, body: Json, reply: Reply) -> list[Json]:
        base = {
            "id": "chatcmpl-standin",
            "object": "chat.completion.chunk",
            "created": 1_714_000_000,
            "model": body.get("model"),
        }

        def chunk(delta: Json, finish: str | None = None) -> Json:
            return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

        out = [chunk({"role": "assistant", "content": ""})]
        out += [chunk({"content": piece}) for piece in reply.chunks]
        if reply.interleave:
            out += [chunk({"tool_calls": [part]}) for part in _interleaved(reply.calls)]
        for index, (name, arguments) in enumerate(() if reply.interleave else reply.calls):
            half = len(arguments) // 2
            head = {"name": name, "arguments": arguments[:half]}
            call = {"index": index, "id": f"backend-{index}", "type": "function", "function": head}
            out.append(chunk({"tool_calls": [call]}))
            rest = {"index": index, "function": {"arguments": arguments[half:]}}
            out.append(chunk({"tool_calls": [rest]}))
        out.append(chunk({}, reply.finish))
        wants_usage = (body.get("stream_options") or {}).get("include_usage")
        if wants_usage and self.send_usage and reply.usage is not None:
            prompt, completion = reply.usage
            usage = {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            }
            out.append({**base, "choices": [], "usage": usage})
        return out


def _interleaved(pairs: tuple[tuple[str, str], ...]) -> list[Json]:
    """The calls' fragments, arguments in thirds, taking turns: first thirds, then second..."""
    out: list[Json] = []
    for third in range(3):
        for index, (name, arguments) in enumerate(pairs):
            size = -(-len(arguments) // 3)
            function: Json = {"arguments": arguments[third * size : (third + 1) * size]}
            call: Json = {"index": index, "function": function}
            if third == 0:
                call.update(id=f"backend-{index}", type="function")
                function["name"] = name
            out.append(call)
    return out


def _whole(body: Json, reply: Reply) -> Json:
    message: Json = {"role": "assistant", "content": "".join(reply.chunks) or None}
    if reply.calls:
        message["tool_calls"] = [
            {"id": f"backend-{i}", "type": "function", "function": {"name": n, "arguments": a}}
            for i, (n, a) in enumerate(reply.calls)
        ]
    prompt, completion = reply.usage or (0, 0)
    return {
        "id": "chatcmpl-standin",
        "object": "chat.completion",
        "created": 1_714_000_000,
        "model": body.get("model"),
        "choices": [{"index": 0, "message": message, "finish_reason": reply.finish}],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }


def _send_json(
    handler: BaseHTTPRequestHandler,
    status: int,
    data: Any,
    headers: tuple[tuple[str, str], ...] = (),
) -> None:
    raw = json.dumps(data).encode()
    handler.send_response(status)
    handler.send_header("content-type", "application/json")
    handler.send_header("content-length", str(len(raw)))
    for name, value in headers:
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(raw)


def _write_chunk(handler: BaseHTTPRequestHandler, data: str) -> None:
    raw = data.encode()
    handler.wfile.write(f"{len(raw):x}\r\n".encode() + raw + b"\r\n")
    handler.wfile.flush()


if __name__ == "__main__":
    import sys

    latency = float(sys.argv[1]) if len(sys.argv) > 1 else 0.0
    served = StandIn(latency_s=latency, answer=tuple(sys.argv[2:]) or ("ok",))
    print(served.url, flush=True)
    threading.Event().wait()
