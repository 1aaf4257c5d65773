"""Markdown: the results table, the targets, the machine; and the JSON dump of the raw values."""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.runs import table as runs_table
from benchmarks.suite import REPO, CaseResult, Options, Side


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _mem_total() -> str:
    try:
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _git() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" + uncommitted changes" if dirty else "")


def machine() -> dict[str, str]:
    """The facts a reader needs to compare numbers across machines."""
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cores": str(os.cpu_count()),
        "memory": _mem_total(),
        "os": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "assistsync": f"{_version('assistsync')} (git {_git()})",
        "httpx": _version("httpx"),
        "openai (baseline)": _version("openai"),
    }


def _t(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.2f} s"


def _mb(n: int | None) -> str:
    return "–" if n is None else f"{n / 1024 / 1024:.0f} MB"


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b <= 0:
        return "–"
    return f"{a / b:.2f}×"


def _req(side: Side) -> str:
    if side.requests is None:
        return "–"
    return f"{side.requests} ({side.rate_limited}×429)" if side.rate_limited else str(side.requests)


def _status(side: Side) -> str:
    if side.wall_s is None:
        return side.note or "–"
    return "ok" if side.ok else f"**{side.note}**"


HEADER = (
    "| case | N | changes | assistsync wall | CPU | API span | requests | peak RSS "
    "| floor wall | floor req | wall ÷ floor | req ÷ floor "
    "| SDK wall | SDK req | SDK RSS | SDK ÷ assistsync "
    "| SDK×{threads} wall | SDK×{threads} CPU | SDK×{threads} ÷ assistsync "
    "| status (assistsync / SDK / SDK×{threads}) |"
)

GROWTH_KINDS = ("growth-apply", "growth-plan")


def table(results: list[CaseResult], threads: int = 8) -> str:
    """One row per case, assistsync, its floor and the SDK baselines side by side."""
    header = HEADER.format(threads=threads)
    lines = [header, _rule(header)]
    for r in results:
        if r.kind in GROWTH_KINDS or r.kind == "server":
            continue
        o, b, f, t = r.ours, r.baseline, r.floor, r.threaded
        if b.wall_s is None:
            b_cells = [b.note or "–", "–", "–", "–"]
        else:
            b_cells = [_t(b.wall_s), _req(b), _mb(b.maxrss_bytes), _ratio(b.wall_s, o.wall_s)]
        if t.wall_s is None:
            t_cells = [t.note or "–", "–", "–"]
        else:
            t_cells = [_t(t.wall_s), _t(t.cpu_s), _ratio(t.wall_s, o.wall_s)]
        cells = [
            r.case,
            str(r.n) if r.n else "–",
            "–" if r.changes is None else str(r.changes),
            _t(o.wall_s),
            _t(o.cpu_s),
            _t(o.span_s) if o.span_s else "–",
            _req(o),
            _mb(o.maxrss_bytes),
            _t(f.seconds) if f is not None else "–",
            str(f.requests) if f is not None and f.requests else "–",
            _ratio(o.wall_s, f.seconds if f else None),
            _ratio(o.requests, f.requests if f and f.requests else None),
            *b_cells,
            *t_cells,
            f"{_status(o)} / {_status(b)} / {_status(t)}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def growth_table(results: list[CaseResult]) -> str:
    """The growth rows: wall, CPU and memory per assistant as N grows (assistsync alone)."""
    rows = [r for r in results if r.kind in GROWTH_KINDS]
    if not rows:
        return ""
    lines = [
        "| case | N | wall | floor | wall ÷ floor | requests | client CPU | CPU per assistant "
        "| peak RSS | RSS per assistant | status |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        o, f = r.ours, r.floor
        cpu = o.cpu_s or 0.0
        lines.append(
            f"| {r.case} | {r.n} | {_t(o.wall_s)} | {_t(f.seconds if f else None)} "
            f"| {_ratio(o.wall_s, f.seconds if f else None)} | {_req(o)} | {_t(cpu)} "
            f"| {cpu / r.n * 1000:.2f} ms | {_mb(o.maxrss_bytes)} "
            f"| {(o.maxrss_bytes or 0) / r.n / 1024:.0f} KB | {_status(o)} |"
        )
    return "\n".join(lines)


def _per_request(ms: float) -> str:
    # an older server reports no CPU: shown as unknown, not as free
    return f"{ms:.2f} ms" if ms > 0 else "–"


def server_table(results: list[CaseResult]) -> str:
    """Throughput of the server under the load generator; each process's CPU apart."""
    rows = [r for r in results if r.kind == "server"]
    if not rows:
        return ""
    lines = [
        "| case | requests | errors | wall | requests/s | server CPU / request "
        "| load generator CPU / request |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        o, x = r.ours, r.extra
        lines.append(
            f"| {r.case} | {o.requests} | {o.failures} | {_t(o.wall_s)} | {x['rps']:.0f} "
            f"| {_per_request(x['server_cpu_ms_per_request'])} "
            f"| {x['generator_cpu_ms_per_request']:.2f} ms |"
        )
    return "\n".join(lines)


def _rule(header: str) -> str:
    return "|" + "---|" * (header.count("|") - 1)


def _find(results: list[CaseResult], kind: str) -> list[CaseResult]:
    return [r for r in results if r.kind == kind]


def _within(r: CaseResult, factor: float, name: str) -> tuple[str, str, bool | None]:
    f = r.floor
    assert f is not None
    if r.ours.wall_s is None or f.seconds <= 0:
        return (name, "floor is 0 s", None)
    x = r.ours.wall_s / f.seconds
    return (
        name,
        f"{_t(r.ours.wall_s)} = {x:.2f}× floor {_t(f.seconds)}",
        r.ours.ok and x <= factor,
    )


def _startup(r: CaseResult, kind: str) -> tuple[str, str, bool | None]:
    """Start-up against ``python -c pass``, judged on CPU time: a few tens of milliseconds of
    wall time move with the machine's load far more than the CPU they take."""
    name = f"assistsync --{kind} ≤ 2× python -c pass (CPU)"
    bare, ours = r.extra.get("floor_cpu_s", 0.0), r.ours.cpu_s
    if not bare or ours is None or r.floor is None or r.ours.wall_s is None:
        return (name, "not measured", None)
    return (
        name,
        f"CPU {_t(ours)} = {ours / bare:.2f}× {_t(bare)}; wall {_t(r.ours.wall_s)} = "
        f"{r.ours.wall_s / r.floor.seconds:.2f}× {_t(r.floor.seconds)}",
        r.ours.ok and ours <= 2 * bare,
    )


def _per_assistant(results: list[CaseResult], kind: str, n: int) -> float | None:
    for r in _find(results, kind):
        if r.n == n and r.ours.cpu_s is not None:
            return r.ours.cpu_s / n
    return None


def targets(results: list[CaseResult], options: Options) -> list[tuple[str, str, bool | None]]:
    """(target, what was measured, met) for each target of issue 12; None: not measured."""
    out: list[tuple[str, str, bool | None]] = []
    k = options.threads
    for r in _find(results, "apply-empty"):
        out.append(_within(r, 1.15, f"apply from empty ≤ 1.15× floor (N={r.n})"))
        t, o = r.threaded.wall_s, r.ours.wall_s
        name = f"apply from empty ≥ 1.25× faster than the SDK×{k} script (N={r.n})"
        if t is None or o is None:
            out.append((name, r.threaded.note, None))
        else:
            out.append((name, f"{t / o:.2f}× ({_t(t)} vs {_t(o)})", t / o >= 1.25))
    for r in _find(results, "apply-edit"):
        out.append(_within(r, 1.3, f"edit apply ≤ 1.3× floor (N={r.n})"))
        t, o = r.threaded.wall_s, r.ours.wall_s
        name = f"edit apply ahead of the SDK×{k} script (N={r.n})"
        if t is None or o is None:
            out.append((name, r.threaded.note, None))
        else:
            out.append((name, f"{t / o:.2f}× ({_t(t)} vs {_t(o)})", o < t))
    for r in _find(results, "plan-fresh"):
        out.append(_within(r, 2.0, f"plan ≤ 2× floor, fresh checkout (N={r.n})"))
    for r in _find(results, "plan"):
        out.append(_within(r, 1.3, f"plan ≤ 1.3× floor, same checkout again (N={r.n})"))
        f = r.floor
        assert f is not None
        out.append(
            (
                f"plan requests = floor (N={r.n})",
                f"{r.ours.requests} vs {f.requests}",
                r.ours.requests == f.requests,
            )
        )
    for kind, what in (("growth-apply", "apply"), ("growth-plan", "plan")):
        low, high = _per_assistant(results, kind, 1000), _per_assistant(results, kind, 10000)
        name = f"{what}: client CPU per assistant at N=10000 ≤ 1.2× that at N=1000"
        if low is None or high is None:
            out.append((name, "not measured (run with --growth)", None))
        else:
            out.append(
                (
                    name,
                    f"{high * 1000:.2f} ms vs {low * 1000:.2f} ms = {high / low:.2f}×",
                    high <= 1.2 * low,
                )
            )
    big = [r for r in _find(results, "growth-apply") if r.n == 10000]
    name = "apply at N=10000: client peak RSS < 400 MB"
    if big and big[0].ours.maxrss_bytes:
        rss = big[0].ours.maxrss_bytes
        out.append((name, _mb(rss), big[0].ours.ok and rss < 400 * 1024 * 1024))
    else:
        out.append((name, "not measured (run with --growth)", None))
    for kind in ("help", "version"):
        for r in _find(results, kind):
            out.append(_startup(r, kind))
    servers = _find(results, "server")
    before = {
        ("POST" if r.extra["method_post"] else "GET", int(r.extra["concurrency"])): r.extra["rps"]
        for r in servers
        if r.extra.get("before")
    }
    for r in servers:
        x = r.extra
        if x.get("before"):
            continue
        method = "POST" if x["method_post"] else "GET"
        concurrency = int(x["concurrency"])
        if concurrency == 8:
            then = before.get((method, 8), 0.0)
            name = f"server: {method} /assistants ≥ 2× the requests/s before, concurrency 8"
            if then <= 0:
                out.append((name, f"{x['rps']:.0f}/s (run with --server-before)", None))
            else:
                out.append(
                    (
                        name,
                        f"{x['rps']:.0f}/s vs {then:.0f}/s = {x['rps'] / then:.2f}×",
                        r.ours.ok and x["rps"] >= 2 * then,
                    )
                )
        else:
            out.append(
                (
                    f"server: {method} /assistants, concurrency {concurrency}: no error",
                    f"{r.ours.failures} errors" + (f" ({r.ours.note})" if r.ours.note else ""),
                    r.ours.ok,
                )
            )
    for r in _find(results, "apply-rate"):
        assert r.changes is not None
        assert r.ours.wall_s is not None
        bound = 1.2 * r.changes / (options.rate_limit_rpm / 60)
        out.append(
            (
                f"rate limit: 0 failed, wall ≤ 1.2 × changes / rate (N={r.n})",
                f"{r.ours.failures} failed, {r.ours.rate_limited}×429; {_t(r.ours.wall_s)} vs "
                f"{_t(bound)} (= {r.ours.wall_s / bound * 1.2:.2f} × changes / rate)",
                r.ours.failures == 0 and r.ours.ok and r.ours.wall_s <= bound,
            )
        )
    for r in _find(results, "large"):
        rss = r.ours.maxrss_bytes or 0
        out.append(
            (
                f"{options.large_file_mb} MB upload: client peak RSS < 100 MB",
                _mb(rss),
                r.ours.ok and rss < 100 * 1024 * 1024,
            )
        )
    return out


def markdown(
    results: list[CaseResult],
    options: Options,
    elapsed_s: float,
    runs: list[dict[str, Any]] | None = None,
) -> str:
    """The whole report: options, table, targets, the runs case, machine."""
    opts = (
        f"sizes {', '.join(map(str, options.sizes))}; latency {options.latency_ms:g} ms/request; "
        f"rate limit {options.rate_limit_rpm} req/min; assistsync --concurrency "
        f"{options.concurrency}; large file {options.large_file_mb} MB; start-up: median of "
        f"{options.startup_runs}; plans and validate: median of {options.repeats}; seed "
        f"{options.seed}; whole run {elapsed_s:.0f} s; load average at the end "
        f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    rows = ["| target | measured | met |", "|---|---|---|"]
    for name, measured, met in targets(results, options):
        verdict = "n/a" if met is None else ("yes" if met else "**no**")
        rows.append(f"| {name} | {measured} | {verdict} |")
    facts = "\n".join(f"- {k}: {v}" for k, v in machine().items())
    growth, server = growth_table(results), server_table(results)
    return (
        f"Run: {opts}.\n\n{table(results, options.threads)}\n\n"
        + (f"Growth (assistsync alone):\n\n{growth}\n\n" if growth else "")
        + (f"Server throughput (latency 0):\n\n{server}\n\n" if server else "")
        + "Start-up rows: floor = `python -c pass`, SDK = `python -c 'import openai, httpx'`.\n\n"
        "### Targets\n\n"
        + "\n".join(rows)
        + "\n\n"
        + runs_table(runs or [])
        + f"\n### Machine\n\n{facts}\n"
    )


def to_json(
    results: list[CaseResult], options: Options, runs: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Raw values (seconds, bytes) for tools and the smoke test."""
    return {
        "runs": runs or [],
        "options": {
            k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(options).items()
        },
        "machine": machine(),
        "python": sys.version,
        "results": [dataclasses.asdict(r) for r in results],
        "targets": [
            {"target": t, "measured": m, "met": ok} for t, m, ok in targets(results, options)
        ],
    }
