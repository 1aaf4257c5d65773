"""``python -m benchmarks.testcmd``: ``assistsync test`` at scale on the echo model.

100 tests of 3 turns each (a question, a function call answered by a stub, a follow-up) run by
the real CLI against the embedded server in its own process (:mod:`benchmarks.serve`). Reported:
the wall time of ``assistsync test`` (process start to exit: loading, the plan it checks first,
every test), and the requests the server saw per turn beside the floor.

The floor, per turn, of a v1 client that polls or streams is three requests: create message,
create run (then the polls, or the stream in the same response), list messages. ``assistsync
test`` sends one streamed request per turn (create thread and run, or create run with the message
in ``additional_messages``; the stream carries the final message), one streamed submit per round
of function calls, and one delete per test for its thread.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.server import API_KEY, ServerProcess

NAIVE_FLOOR = 3
"""create message, create run (+ polls or the stream), list messages."""

PARAMS = '{"type": "object", "properties": {"order_id": {"type": "string"}}}'


def write_project(root: Path, tests: int, concurrency: int) -> None:
    (root / "assistants").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "assistsync.yaml").write_text("manifests: [assistants/*.yaml]\n")
    (root / "assistants/bot.yaml").write_text(
        "assistants:\n"
        "  bot:\n"
        "    model: gpt-4\n"
        "    instructions: Answer briefly.\n"
        "    tools:\n"
        "      - type: function\n"
        f"        function: {{name: lookup_order, parameters: {PARAMS}}}\n"
    )
    lines = ["tests:"]
    for i in range(tests):
        lines += [
            f"  t{i:03d}:",
            "    assistant: bot",
            "    turns:",
            f"      - user: Where is my order {i}?",
            "        expect: [{contains: order}]",
            f'      - user: \'call lookup_order {{"order_id": "{i}"}}\'',
            "        tools: {lookup_order: [{output: {status: shipped}}]}",
            "        expect: [{calls: lookup_order}, {contains: shipped}]",
            "      - user: Thanks",
            "        expect: [{equals: 'echo: Thanks'}]",
        ]
    (root / "tests/bench.yaml").write_text("\n".join(lines) + "\n")


def cli(root: Path, base_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env.update({"OPENAI_BASE_URL": base_url, "OPENAI_API_KEY": API_KEY, "NO_COLOR": "1"})
    argv = [sys.executable, "-m", "assistsync", "-C", str(root), *args]
    return subprocess.run(argv, capture_output=True, text=True, env=env, check=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tests", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args(argv)
    turns = args.tests * 3
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "project"
        write_project(root, args.tests, args.concurrency)
        with ServerProcess(Path(tmp) / "server", latency_ms=0) as server:
            applied = cli(root, server.base_url, "apply", "--auto-approve")
            if applied.returncode != 0:
                print(applied.stderr, file=sys.stderr)
                return 1
            server.reset()
            start = time.perf_counter()
            result = cli(root, server.base_url, "test", "--concurrency", str(args.concurrency))
            wall = time.perf_counter() - start
            stats = server.stats()
    last = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr
    run_requests = sum(n for route, n in stats.by_route.items() if "/threads" in route)
    ours_floor = (turns + args.tests + args.tests) / turns  # + submits + thread deletes
    print(f"| measure | {args.tests} tests x 3 turns on echo (concurrency {args.concurrency}) |")
    print("| --- | --- |")
    print(f"| result | {last} |")
    print(f"| wall time of `assistsync test` | {wall:.2f} s (target < 5 s) |")
    print(f"| requests, all | {stats.requests} (plan's listing included) |")
    print(f"| requests per turn (threads, runs) | {run_requests / turns:.2f} |")
    print(f"| our floor per turn | {ours_floor:.2f} (1 per turn, +1 per call round, +1 per test) |")
    naive = (NAIVE_FLOOR * turns + args.tests) / turns
    why = f"{NAIVE_FLOOR} per turn, +1 per call round"
    print(f"| create message, run, list messages | {naive:.2f} ({why}) |")
    for route, count in sorted(stats.by_route.items()):
        print(f"| {route} | {count} |")
    return 0 if result.returncode == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
