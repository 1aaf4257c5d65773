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
    "| case | N | changes | assistsync wall | API span | requests | peak RSS "
    "| floor wall | floor req | wall ÷ floor | req ÷ floor "
    "| SDK wall | SDK req | SDK RSS | SDK ÷ assistsync | status (assistsync / SDK) |"
)


def table(results: list[CaseResult]) -> str:
    """One row per case, assistsync, its floor and the SDK baseline side by side."""
    lines = [HEADER, _rule(HEADER)]
    for r in results:
        o, b, f = r.ours, r.baseline, r.floor
        if b.wall_s is None:
            b_cells = [b.note or "–", "–", "–", "–"]
        else:
            b_cells = [_t(b.wall_s), _req(b), _mb(b.maxrss_bytes), _ratio(b.wall_s, o.wall_s)]
        cells = [
            r.case,
            str(r.n) if r.n else "–",
            "–" if r.changes is None else str(r.changes),
            _t(o.wall_s),
            _t(o.span_s) if o.span_s else "–",
            _req(o),
            _mb(o.maxrss_bytes),
            _t(f.seconds) if f is not None else "–",
            str(f.requests) if f is not None and f.requests else "–",
            _ratio(o.wall_s, f.seconds if f else None),
            _ratio(o.requests, f.requests if f and f.requests else None),
            *b_cells,
            f"{_status(o)} / {_status(b)}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _rule(header: str) -> str:
    return "|" + "---|" * (header.count("|") - 1)


def _find(results: list[CaseResult], kind: str) -> list[CaseResult]:
    return [r for r in results if r.kind == kind]


def targets(results: list[CaseResult], options: Options) -> list[tuple[str, str, bool | None]]:
    """(target, what was measured, met) for each target of the issue; None: not measured."""
    out: list[tuple[str, str, bool | None]] = []
    for r in _find(results, "plan"):
        f = r.floor
        assert f is not None
        out.append(
            (
                f"plan requests = floor (N={r.n})",
                f"{r.ours.requests} vs {f.requests}",
                r.ours.requests == f.requests,
            )
        )
    plans = _find(results, "plan")
    if plans:
        r = max(plans, key=lambda r: r.n)
        f = r.floor
        assert f is not None
        assert r.ours.wall_s is not None
        span = r.ours.span_s or 0.0
        name = f"plan wall ≤ 1.5 × floor (N={r.n})"
        if f.seconds <= 0:
            out.append((name, f"{_t(r.ours.wall_s)}; the floor is 0 s at 0 ms latency", None))
        else:
            out.append(
                (
                    name,
                    f"{_t(r.ours.wall_s)} = {r.ours.wall_s / f.seconds:.1f}× floor "
                    f"{_t(f.seconds)} (API span {_t(span)} = {span / f.seconds:.2f}×)",
                    r.ours.wall_s <= 1.5 * f.seconds,
                )
            )
    for r in _find(results, "apply-empty"):
        if r.baseline.wall_s is None or r.ours.wall_s is None:
            out.append((f"apply from empty ≥ 8× the SDK (N={r.n})", r.baseline.note, None))
            continue
        x = r.baseline.wall_s / r.ours.wall_s
        out.append(
            (
                f"apply from empty ≥ 8× faster than the SDK (N={r.n}, parallelism "
                f"{options.concurrency})",
                f"{x:.1f}× ({_t(r.baseline.wall_s)} vs {_t(r.ours.wall_s)})",
                x >= 8,
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
    for r in _find(results, "version"):
        assert r.ours.wall_s is not None
        out.append(
            ("assistsync --version < 0.3 s", _t(r.ours.wall_s), r.ours.ok and r.ours.wall_s < 0.3)
        )
    local = _find(results, "local-plan")
    if local:
        r = max(local, key=lambda r: r.n)
        assert r.ours.wall_s is not None
        out.append(
            (
                f"validate + plan, 0 ms latency < 2 s (N={r.n})",
                _t(r.ours.wall_s),
                r.ours.ok and r.ours.wall_s < 2,
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
        f"{options.seed}; whole run {elapsed_s:.0f} s"
    )
    rows = ["| target | measured | met |", "|---|---|---|"]
    for name, measured, met in targets(results, options):
        verdict = "n/a" if met is None else ("yes" if met else "**no**")
        rows.append(f"| {name} | {measured} | {verdict} |")
    facts = "\n".join(f"- {k}: {v}" for k, v in machine().items())
    return (
        f"Run: {opts}.\n\n{table(results)}\n\n"
        "Start-up rows: floor = `python -c pass`, SDK = `python -c 'import openai, httpx'`.\n\n"
        f"### Targets\n\n"
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
        "options": dataclasses.asdict(options),
        "machine": machine(),
        "python": sys.version,
        "results": [dataclasses.asdict(r) for r in results],
        "targets": [
            {"target": t, "measured": m, "met": ok} for t, m, ok in targets(results, options)
        ],
    }
