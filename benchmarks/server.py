"""Start and drive the server subprocess (:mod:`benchmarks.serve`) from the harness."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import httpx

API_KEY = "sk-bench-0123456789abcdef"
"""Any non-empty key works with the embedded server; this one is recognisable in logs."""


@dataclass(frozen=True)
class ServerStats:
    """What the server saw during one measured run."""

    requests: int
    by_route: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    span_s: float = 0.0
    handler_s: float = 0.0
    maxrss_kb: int = 0
    cpu_s: float = 0.0
    """The server process's CPU (user + system) since it started."""

    @property
    def rate_limited(self) -> int:
        """Requests answered 429."""
        return self.statuses.get("429", 0)


def _pythonpath() -> list[str]:
    return [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]


class ServerProcess:
    """An embedded server in a subprocess with live latency / rate-limit knobs.

    Use as a context manager; ``base_url`` is ready when ``__enter__`` returns.
    """

    def __init__(
        self, root: Path, *, latency_ms: float, rate_limit_rpm: int = 0, tree: Path | None = None
    ) -> None:
        """``tree``: run the server of another checkout of assistsync (its own ``benchmarks``
        and ``assistsync`` packages), for a before/after comparison in one run."""
        self.tree = tree or Path(__file__).resolve().parent.parent
        self.latency_ms = latency_ms
        self.rate_limit_rpm = rate_limit_rpm
        self._stderr_path = root / "server.stderr"
        root.mkdir(parents=True, exist_ok=True)
        self._stderr: IO[bytes] | None = None
        self._proc: subprocess.Popen[str] | None = None
        self.base_url = ""

    def __enter__(self) -> ServerProcess:
        self._stderr = self._stderr_path.open("wb")
        # This checkout's benchmarks/serve.py (by path) with the tree's assistsync first on the
        # path: both servers of a before/after run are driven and counted by the same harness.
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(self.tree), *_pythonpath()])}
        self._proc = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).with_name("serve.py")),
                "--latency-ms",
                str(self.latency_ms),
                "--rate-limit-rpm",
                str(self.rate_limit_rpm),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            cwd=self.tree,
            env=env,
        )
        self.base_url = str(self._read()["base_url"])
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        proc = self._proc
        if proc is not None:
            with contextlib.suppress(OSError, RuntimeError):
                self.command("quit")
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            for pipe in (proc.stdin, proc.stdout):  # the pipes are ours to close
                if pipe is not None:
                    with contextlib.suppress(OSError):
                        pipe.close()
            self._proc = None
        if self._stderr is not None:
            self._stderr.close()

    def _read(self) -> dict[str, Any]:
        assert self._proc is not None
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            detail = self._stderr_path.read_text(encoding="utf-8", errors="replace")[-2000:]
            raise RuntimeError(f"the benchmark server exited:\n{detail}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def command(self, name: str, **args: Any) -> dict[str, Any]:
        """Send one command and return the server's answer."""
        assert self._proc is not None
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps({"cmd": name, **args}) + "\n")
        self._proc.stdin.flush()
        return self._read()

    def reset(self) -> None:
        """Zero the request counters before a measured run."""
        self.command("reset")

    def stats(self) -> ServerStats:
        """The counters since the last :meth:`reset`."""
        a = self.command("stats")
        return ServerStats(
            requests=int(a["requests"]),
            by_route={str(k): int(v) for k, v in a["by_route"].items()},
            statuses={str(k): int(v) for k, v in a["statuses"].items()},
            span_s=float(a["span_s"]),
            handler_s=float(a["handler_s"]),
            maxrss_kb=int(a["maxrss_kb"]),
            cpu_s=float(a["cpu_s"]) if "cpu_s" in a else self._proc_cpu_s(),
        )

    def _proc_cpu_s(self) -> float:
        """The server process's CPU (user + system) as the kernel counts it: for a server of an
        older checkout whose ``benchmarks.serve`` does not report it (0 where unknown)."""
        assert self._proc is not None
        try:
            with open(f"/proc/{self._proc.pid}/stat", encoding="ascii") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        # Fields 14 and 15 of stat(5) (utime, stime), counted from after the command name.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def set_faults(self, *, latency_ms: float, rate_limit_rpm: int) -> None:
        """Change latency and rate limit while the server runs."""
        self.command("faults", latency_ms=latency_ms, rate_limit_rpm=rate_limit_rpm)

    def census(self, tag_key: str) -> tuple[int, int]:
        """(tagged assistants, files) on the server, read over HTTP with faults switched off.

        Call after :meth:`stats`: these reads are counted by the server too. The faults are
        restored afterwards.
        """
        self.set_faults(latency_ms=0, rate_limit_rpm=0)
        try:
            with httpx.Client(
                base_url=self.base_url + "/",
                headers={"Authorization": f"Bearer {API_KEY}", "OpenAI-Beta": "assistants=v1"},
                timeout=60,
            ) as http:
                tagged = 0
                after: str | None = None
                while True:
                    params: dict[str, str | int] = {"limit": 100, "order": "asc"}
                    if after:
                        params["after"] = after
                    page = http.get("assistants", params=params).raise_for_status().json()
                    tagged += sum(1 for a in page["data"] if tag_key in (a.get("metadata") or {}))
                    if not page["has_more"] or not page["data"]:
                        break
                    after = page["last_id"]
                files = http.get("files", params={"purpose": "assistants"}).raise_for_status()
                return tagged, len(files.json()["data"])
        finally:
            self.set_faults(latency_ms=self.latency_ms, rate_limit_rpm=self.rate_limit_rpm)
