"""The embedded server in its own process, driven by JSON lines on stdin.

:class:`benchmarks.server.ServerProcess` runs this file by path with the measured checkout's
``assistsync`` first on ``PYTHONPATH``, so a before/after pair is counted by the same code.

Why a separate process: the measured clients (the assistsync CLI, the SDK baseline) already run
as subprocesses, but the harness itself must not share a GIL with the server either, or its own
bookkeeping would slow the server's handler threads. Here the server owns an interpreter; the
harness only sleeps in ``wait4`` while a client runs.

Protocol: on start one line ``{"base_url": ...}``. Then one JSON command per line, one JSON
answer per line:

* ``{"cmd": "stats"}`` -> requests (the server's ``stats.requests``), ``by_route``, ``statuses``
  (counted from the per-request log line), ``span_s`` (first request start to last response
  end), ``handler_s`` (the sum of every request's time in the server, injected latency
  included), ``maxrss_kb`` and ``cpu_s`` (user + system since it started) of this process;
* ``{"cmd": "reset"}`` -> forget counts and the span;
* ``{"cmd": "faults", "latency_ms": F, "rate_limit_rpm": N}`` -> change the live faults;
* ``{"cmd": "quit"}`` or end of input -> stop.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from typing import Any

from assistsync.server import Faults, start_server


class Recorder:
    """Status counts and the active span, from the server's one log line per request.

    ``log`` runs on the server's request path, so it only keeps the line and the time (a list
    append, atomic under the interpreter lock); the lines are parsed when stats are asked for.
    """

    def __init__(self) -> None:
        self._lines: list[tuple[float, str]] = []
        self.statuses: dict[str, int] = {}
        self.first_start: float | None = None
        self.last_end: float | None = None
        self.elapsed_total = 0.0

    def log(self, line: str) -> None:
        self._lines.append((time.monotonic(), line))

    def _parse(self) -> None:
        """Take in the lines kept so far: ``METHOD PATH STATUS 12.3ms[ (...)]``, others ignored."""
        lines, self._lines = self._lines, []
        for end, line in lines:
            parts = line.split(" ")
            if len(parts) < 4 or not parts[3].endswith("ms"):
                continue
            try:
                elapsed = float(parts[3][:-2]) / 1000
            except ValueError:
                continue
            status = parts[2]
            self.statuses[status] = self.statuses.get(status, 0) + 1
            self.elapsed_total += elapsed
            start = end - elapsed
            if self.first_start is None or start < self.first_start:
                self.first_start = start
            if self.last_end is None or end > self.last_end:
                self.last_end = end

    def reset(self) -> None:
        self._lines = []
        self.statuses = {}
        self.first_start = self.last_end = None
        self.elapsed_total = 0.0

    def span(self) -> float:
        self._parse()
        if self.first_start is None or self.last_end is None:
            return 0.0
        return self.last_end - self.first_start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--rate-limit-rpm", type=int, default=0)
    args = parser.parse_args(argv)
    recorder = Recorder()
    faults = Faults(latency_ms=args.latency_ms, rate_limit_rpm=args.rate_limit_rpm)
    with start_server(port=0, faults=faults, log=recorder.log) as handle:
        print(json.dumps({"base_url": handle.base_url}), flush=True)
        for raw in sys.stdin:
            if not raw.strip():
                continue
            command: dict[str, Any] = json.loads(raw)
            name = command.get("cmd")
            answer: dict[str, Any] = {"ok": True}
            if name == "stats":
                stats = handle.stats
                usage = resource.getrusage(resource.RUSAGE_SELF)
                span = recorder.span()
                answer = {
                    "requests": stats.requests,
                    "by_route": dict(stats.by_route),
                    "statuses": dict(recorder.statuses),
                    "span_s": span,
                    "handler_s": recorder.elapsed_total,
                    "maxrss_kb": usage.ru_maxrss,
                    "cpu_s": usage.ru_utime + usage.ru_stime,
                }
            elif name == "reset":
                handle.stats.reset()
                recorder.reset()
            elif name == "faults":
                handle.faults.latency_ms = float(command.get("latency_ms", 0))
                handle.faults.rate_limit_rpm = int(command.get("rate_limit_rpm", 0))
            elif name == "quit":
                print(json.dumps(answer), flush=True)
                break
            else:
                answer = {"ok": False, "error": f"unknown command {name!r}"}
            print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
