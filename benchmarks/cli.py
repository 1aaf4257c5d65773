"""``python -m benchmarks``: options, the run, the markdown on stdout (progress on stderr)."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.report import markdown, to_json
from benchmarks.suite import Options, Suite


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"sizes must be integers, got {text!r}") from exc
    if not sizes or any(n < 1 for n in sizes):
        raise argparse.ArgumentTypeError("sizes must be positive integers")
    return sizes


def parse(argv: list[str] | None) -> tuple[Options, argparse.Namespace]:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=(
            "Run assistsync (the real CLI, in a subprocess) and a hand-written openai-SDK script "
            "against the embedded server (in its own subprocess) over loopback, and print a "
            "markdown table with the request/time floors and the ratios."
        ),
    )
    parser.add_argument(
        "--sizes", type=_sizes, default=None, help="assistant counts (default 100,1000)"
    )
    parser.add_argument(
        "--latency-ms", type=float, default=25.0, help="server latency per request (25)"
    )
    parser.add_argument(
        "--rate-limit-rpm", type=int, default=3000, help="limit of the rate-limit case (3000)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=8, help="assistsync apply --concurrency (8)"
    )
    parser.add_argument(
        "--large-file-mb", type=int, default=None, help="size of the large file (200)"
    )
    parser.add_argument(
        "--startup-runs", type=int, default=None, help="runs per start-up case, median (5)"
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="runs per read-only case, median (3)"
    )
    parser.add_argument("--seed", type=int, default=1, help="workload seed (1)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="sizes 100, a 20 MB large file, 3 start-up runs, 1 run per read-only case "
        "(each unless given explicitly)",
    )
    parser.add_argument("--no-baseline", action="store_true", help="skip the SDK baselines")
    parser.add_argument(
        "--threads", type=int, default=8, help="pool size of the threaded SDK baseline (8)"
    )
    parser.add_argument(
        "--growth",
        nargs="?",
        const=(100, 1000, 5000, 10000),
        type=_sizes,
        default=(),
        help="also the growth rows (assistsync alone, apply and plan) at these sizes "
        "(default when given without a value: 100,1000,5000,10000; takes ~10 minutes)",
    )
    parser.add_argument(
        "--server-before",
        type=Path,
        default=None,
        help="a checkout of an earlier assistsync whose server is measured first, for a "
        "before/after of the server rows in one run",
    )
    parser.add_argument(
        "--growth-only",
        action="store_true",
        help="run only the growth rows (with --growth; the other cases are skipped)",
    )
    parser.add_argument(
        "--server-only",
        action="store_true",
        help="run only the server-throughput rows (with --server-before: before and after); "
        "the other cases and the companions are skipped",
    )
    parser.add_argument(
        "--server-requests",
        type=int,
        default=None,
        help="requests per server-throughput case (2000; 0 skips them)",
    )
    parser.add_argument(
        "--only-core",
        action="store_true",
        help="skip the companion cases (chat backends, retrieval, assistsync test, import), "
        "each of which also runs alone as python -m benchmarks.NAME",
    )
    parser.add_argument("--out", type=Path, help="also write the markdown here")
    parser.add_argument("--json", type=Path, help="write the raw results (seconds, bytes) here")
    parser.add_argument(
        "--workdir", type=Path, help="where projects and logs go (default: a temporary directory)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    quick = args.quick
    options = Options(
        sizes=args.sizes or ((100,) if quick else (100, 1000)),
        latency_ms=args.latency_ms,
        rate_limit_rpm=args.rate_limit_rpm,
        concurrency=args.concurrency,
        large_file_mb=args.large_file_mb or (20 if quick else 200),
        startup_runs=args.startup_runs or (3 if quick else 5),
        repeats=args.repeats or (1 if quick else 3),
        seed=args.seed,
        baseline=not args.no_baseline,
        growth=args.growth,
        server_load=(
            args.server_requests if args.server_requests is not None else (500 if quick else 2000)
        ),
        threads=args.threads,
        only_growth=args.growth_only,
        only_server=args.server_only,
        server_before=args.server_before,
    )
    if options.rate_limit_rpm < 1:
        parser.error("--rate-limit-rpm must be at least 1")
    return options, args


COMPANIONS: tuple[tuple[str, str, list[str]], ...] = (
    ("chat", "Chat-completions backends", ["--runs", "20", "--concurrency", "8"]),
    ("retrieval", "Retrieval index", ["--text-mb", "2", "--chunks", "1000", "--queries", "100"]),
    ("testcmd", "assistsync test", ["--tests", "10"]),
    ("importing", "assistsync import", ["--size", "100"]),
)
"""Cases with a runner of their own, run after the core cases so that one
``python -m benchmarks`` reports everything side by side (``--quick`` runs them small)."""


def _companion(name: str, argv: list[str]) -> str:
    """Run ``benchmarks.NAME``'s main in this process and return the markdown it printed."""
    import contextlib
    import importlib
    import io

    module = importlib.import_module(f"benchmarks.{name}")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = module.main(argv)
    if code:
        return f"{out.getvalue()}\n(exited {code})\n"
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    options, args = parse(argv)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="assistsync-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f} s] {message}", file=sys.stderr, flush=True)

    log(f"work directory: {work}")
    suite = Suite(options, work, log)
    try:
        results = suite.run()
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    text = markdown(results, options, time.perf_counter() - started, suite.runs)
    print(text)
    if not args.only_core and not args.server_only:
        for name, title, quick_args in COMPANIONS:
            log(f"companion case: python -m benchmarks.{name}")
            section = _companion(name, quick_args if args.quick else [])
            section = f"## {title} (`python -m benchmarks.{name}`)\n\n{section}"
            print(section)
            text += "\n" + section
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    if args.json:
        args.json.write_text(
            json.dumps(to_json(results, options, suite.runs), indent=2), encoding="utf-8"
        )
    return 0
