"""The runs case: the official SDK running assistants on the echo model, beside plain GETs.

Per concurrency level (1, 16, 64), each mode drives a server subprocess over loopback with the
SDK 1.20, from one load-generator subprocess (``python -m benchmarks.runs --base-url URL
MODE:CONCURRENCY:COUNT ...`` prints one JSON line):

* ``get``    — the same SDK retrieving an assistant: the server's request floor (requests/s);
* ``poll``   — ``runs.create_and_poll`` then ``messages.list(run_id=...)``: what most v1 code
  does (the SDK's poller sends ``X-Stainless-Poll-Helper``, so the server holds its GET until
  the run ends);
* ``poll-plain`` — create, then GETs without that header, sleeping ``openai-poll-after-ms``
  between them: a poller the server does not hold (to measure the hold against);
* ``stream`` — ``runs.stream`` (``create_and_stream`` in older code) until
  ``thread.message.completed``: time to the first text delta and to the final message.

Each run gets its own thread (created before timing: one active run per thread). Reported:
runs/s over the level's wall time, p50/p99 from create to the final message, p50/p99 to the
first delta (streams), and errors.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MODES = ("get", "poll", "poll-plain", "stream")
API_KEY = "sk-bench-0123456789abcdef"
QUESTION = "Where is my order? It was due on Monday."


@dataclass
class Level:
    """One (mode, concurrency) measurement."""

    mode: str
    concurrency: int
    count: int = 0
    wall_s: float = 0.0
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    first_delta_ms: list[float] = field(default_factory=list)
    client_cpu_s: float = 0.0
    """CPU the load generator itself used during the level: near ``wall_s`` means the
    client (the SDK under one GIL), not the server, set the pace."""
    note: str = ""

    @property
    def rate(self) -> float | None:
        """Runs (or GETs) per second."""
        return self.count / self.wall_s if self.wall_s else None

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "concurrency": self.concurrency,
            "count": self.count,
            "wall_s": self.wall_s,
            "errors": self.errors,
            "rate": self.rate,
            "p50_ms": _pct(self.latencies_ms, 50),
            "p99_ms": _pct(self.latencies_ms, 99),
            "first_delta_p50_ms": _pct(self.first_delta_ms, 50),
            "first_delta_p99_ms": _pct(self.first_delta_ms, 99),
            "client_cpu_pct": 100 * self.client_cpu_s / self.wall_s if self.wall_s else None,
            "note": self.note,
        }


def _pct(values: list[float], pct: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


# -- the load generator (runs in its own process) -------------------------------------------------


def load(base_url: str, mode: str, concurrency: int, count: int) -> Level:
    """Drive ``count`` runs (or GETs) at ``concurrency`` and measure them."""
    import httpx
    from openai import OpenAI

    limits = httpx.Limits(
        max_connections=concurrency + 8, max_keepalive_connections=concurrency + 8
    )
    http = httpx.Client(limits=limits, timeout=120)
    client = OpenAI(base_url=base_url, api_key=API_KEY, http_client=http, max_retries=0)
    assistant = client.beta.assistants.create(model="gpt-4-turbo", instructions="Be brief.")
    level = Level(mode, concurrency)
    if mode == "get":
        # both variants take the job as Any: mypy wants one signature for conditional variants
        def one(job: Any) -> tuple[float, float | None]:
            t0 = time.perf_counter()
            client.beta.assistants.retrieve(assistant.id)
            return (time.perf_counter() - t0) * 1000, None

        jobs: list[Any] = list(range(count))
    else:
        with ThreadPoolExecutor(min(concurrency, 16)) as pool:
            jobs = list(
                pool.map(
                    lambda _: (
                        client.beta.threads.create(
                            messages=[{"role": "user", "content": QUESTION}]
                        ).id
                    ),
                    range(count),
                )
            )

        def one(job: Any) -> tuple[float, float | None]:
            return _one_run(client, mode, str(job), assistant.id)

    def guarded(job: Any) -> tuple[float, float | None] | None:
        try:
            return one(job)
        except Exception as exc:
            level.note = f"{type(exc).__name__}: {exc}"[:200]
            return None

    started, cpu = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(concurrency) as pool:
        outcomes = list(pool.map(guarded, jobs))
    level.wall_s = time.perf_counter() - started
    level.client_cpu_s = time.process_time() - cpu
    for outcome in outcomes:
        if outcome is None:
            level.errors += 1
            continue
        level.count += 1
        level.latencies_ms.append(outcome[0])
        if outcome[1] is not None:
            level.first_delta_ms.append(outcome[1])
    http.close()
    return level


def _one_run(
    client: Any, mode: str, thread_id: str, assistant_id: str
) -> tuple[float, float | None]:
    runs = client.beta.threads.runs
    t0 = time.perf_counter()
    first: float | None = None
    if mode == "stream":
        done = None
        text = ""
        with runs.stream(thread_id=thread_id, assistant_id=assistant_id) as stream:
            for event in stream:
                if event.event == "thread.message.delta" and first is None:
                    first = (time.perf_counter() - t0) * 1000
                elif event.event == "thread.message.completed":
                    done = time.perf_counter()
                    text = event.data.content[0].text.value
        if done is None or not text.startswith("echo: "):
            raise RuntimeError("the stream ended without the answer")
        return (done - t0) * 1000, first
    if mode == "poll":
        run = runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id)
    else:
        run = runs.create(thread_id, assistant_id=assistant_id)
        while run.status not in ("completed", "failed", "cancelled", "expired", "requires_action"):
            raw = runs.with_raw_response.retrieve(run.id, thread_id=thread_id)
            run = raw.parse()
            if run.status in ("queued", "in_progress"):
                time.sleep(int(raw.headers.get("openai-poll-after-ms", "1000")) / 1000)
    if run.status != "completed":
        raise RuntimeError(f"run ended {run.status}")
    answer = client.beta.threads.messages.list(thread_id, run_id=run.id, limit=1).data
    if not answer:
        raise RuntimeError("no final message")
    return (time.perf_counter() - t0) * 1000, None


# -- the harness side ---------------------------------------------------------------------------

LEVELS = (1, 16, 64)


def runs_per_level(concurrency: int, sizes: tuple[int, ...]) -> int:
    """Runs measured per level: 4 per assistant of the smallest size, 64 to 256, and never
    fewer than the concurrency (so tiny smoke runs stay quick)."""
    return max(concurrency, min(256, 4 * min(sizes)))


def measure(
    work: Path, log: Callable[[str], None], sizes: tuple[int, ...], missing: str | None
) -> list[dict[str, Any]]:
    """Every (concurrency, mode) level against one fresh server subprocess (no latency)."""
    from benchmarks.measure import run_measured
    from benchmarks.server import ServerProcess

    if missing:
        return [{"mode": "all", "concurrency": 0, "note": f"SDK {missing}"}]
    plan = [
        f"{mode}:{concurrency}:{runs_per_level(concurrency, sizes) * (4 if mode == 'get' else 1)}"
        for concurrency in LEVELS
        for mode in MODES
    ]
    with ServerProcess(work / "logs" / "runs", latency_ms=0) as server:
        log(f"runs: {len(plan)} levels ({', '.join(plan)})")
        # One load-generator process for every level: the SDK is imported once.
        run = run_measured(
            [sys.executable, "-m", "benchmarks.runs", "--base-url", server.base_url, *plan],
            cwd=Path(__file__).resolve().parent.parent,
            out_dir=work / "logs",
            label="runs",
        )
    lines = run.stdout.strip().splitlines()
    if run.returncode != 0 or not lines:
        return [
            {"mode": "all", "concurrency": 0, "note": f"exit {run.returncode}: {run.stderr[-300:]}"}
        ]
    levels: list[dict[str, Any]] = json.loads(lines[-1])
    return levels


def _ms(value: Any) -> str:
    return "—" if value is None else f"{value:.1f} ms"


def _pct_text(value: Any) -> str:
    return "—" if value is None else f"{value:.0f} %"


def _rate(value: Any) -> str:
    return "—" if value is None else f"{value:,.0f}/s"


def table(levels: list[dict[str, Any]]) -> str:
    """The runs case as a markdown section: one row per level, then its targets."""
    if not levels:
        return ""
    head = (
        "### Runs (echo model, SDK 1.20, no latency)\n\n"
        "| mode | concurrency | runs (GETs) | rate | create → final p50 | p99 "
        "| first delta p50 | p99 | client CPU | errors |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n"
    )
    rows = [
        f"| {lv['mode']} | {lv['concurrency']} | {lv.get('count', '—')} | {_rate(lv.get('rate'))} "
        f"| {_ms(lv.get('p50_ms'))} | {_ms(lv.get('p99_ms'))} "
        f"| {_ms(lv.get('first_delta_p50_ms'))} | {_ms(lv.get('first_delta_p99_ms'))} "
        f"| {_pct_text(lv.get('client_cpu_pct'))} "
        f"| {lv.get('errors', 0)}{' — ' + lv['note'] if lv.get('note') else ''} |"
        for lv in levels
    ]
    note = (
        "\nclient CPU: the load generator's CPU time over the level's wall time; near 100 % "
        "the SDK client (one process, one GIL), not the server, set the pace.\n\n"
    )
    return head + "\n".join(rows) + "\n" + note + "\n".join(targets(levels)) + "\n"


def targets(levels: list[dict[str, Any]]) -> list[str]:
    """The issue's targets for runs, each met or not."""

    def find(mode: str, concurrency: int) -> dict[str, Any] | None:
        return next(
            (lv for lv in levels if lv["mode"] == mode and lv["concurrency"] == concurrency),
            None,
        )

    out = []
    poll1 = find("poll", 1)
    p50 = poll1.get("p50_ms") if poll1 else None
    out.append(
        f"- polling SDK sees a finished run ≤ 20 ms after create (p50, concurrency 1): "
        f"{_ms(p50)} — {'met' if p50 is not None and p50 <= 20 else 'not met'}"
    )
    stream64 = find("stream", 64)
    clean = stream64 is not None and stream64.get("errors", 1) == 0 and stream64.get("count")
    out.append(f"- 64 concurrent streaming runs without error: {'met' if clean else 'not met'}")
    for concurrency in LEVELS:
        get, poll = find("get", concurrency), find("poll", concurrency)
        if not get or not poll or not get.get("rate") or not poll.get("rate"):
            continue
        share = poll["rate"] / get["rate"]
        out.append(
            f"- runs/s ≥ 1/4 of plain GETs/s at concurrency {concurrency}: "
            f"{poll['rate']:.0f} vs {get['rate']:.0f} ({share:.2f}) — "
            f"{'met' if share >= 0.25 else 'not met'}"
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.runs", description=__doc__)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("levels", nargs="+", help="MODE:CONCURRENCY:COUNT, run in order")
    args = parser.parse_args(argv)
    out = []
    for level in args.levels:
        mode, concurrency, count = level.split(":")
        if mode not in MODES:
            parser.error(f"unknown mode {mode!r} (one of {', '.join(MODES)})")
        out.append(load(args.base_url, mode, int(concurrency), int(count)).to_json())
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
