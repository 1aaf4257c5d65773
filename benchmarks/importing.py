"""``python -m benchmarks.importing``: ``assistsync import`` of N live assistants vs the floor.

An account of N assistants is made with plain HTTP (the setup is not measured): every fifth
has long instructions (a prompt file), every third a function tool (a schema file), and each
attaches one or two of ``N/20`` shared files, so most files are shared by several assistants.
Then ``assistsync import --all`` runs as a subprocess against the embedded server (its own
process, ``--latency-ms`` per request) and is measured, and a ``plan`` afterwards must say
"No changes".

The request floor, as the issue states it: a plan's reads (``ceil(N/100)`` pages + one /files
list) plus one content download per distinct file. An import must also tag every assistant it
takes (``assistsync_key``), one modify each, which no client can avoid; the table shows that
floor too. Time floors assume ``--concurrency`` calls at once, as the import runs them.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from benchmarks.floors import plan_floor
from benchmarks.measure import run_measured
from benchmarks.server import ServerProcess

BENCH_KEY = "sk-bench"


def _seed(base_url: str, n: int) -> int:
    """Make ``n`` assistants sharing ``max(1, n // 20)`` files; returns the file count."""
    headers = {"Authorization": f"Bearer {BENCH_KEY}", "OpenAI-Beta": "assistants=v1"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as http:
        n_files = max(1, n // 20)

        def upload(i: int) -> str:
            body = f"# Document {i}\n\n" + "Some knowledge. " * 200
            files = {"file": (f"doc-{i}.md", body.encode())}
            r = http.post("/files", files=files, data={"purpose": "assistants"})
            return str(r.raise_for_status().json()["id"])

        def create(i: int) -> None:
            body: dict[str, object] = {
                "model": "gpt-4-turbo",
                "name": f"Assistant {i}",
                "instructions": ("Long instructions. " * 200) if i % 5 == 0 else "Be brief.",
                "file_ids": sorted({file_ids[i % n_files], file_ids[(i * 7) % n_files]}),
                "metadata": {"team": f"team-{i % 10}"},
            }
            if i % 3 == 0:
                body["tools"] = [
                    {"type": "retrieval"},
                    {
                        "type": "function",
                        "function": {
                            "name": f"fn_{i}",
                            "parameters": {
                                "type": "object",
                                "properties": {"q": {"type": "string"}},
                            },
                        },
                    },
                ]
            http.post("/assistants", json=body).raise_for_status()

        with ThreadPoolExecutor(max_workers=8) as pool:
            file_ids = list(pool.map(upload, range(n_files)))
            list(pool.map(create, range(n)))
        return n_files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.importing", description=__doc__)
    parser.add_argument("--size", type=int, default=1000, help="assistants (default 1000)")
    parser.add_argument("--latency-ms", type=float, default=25, help="per request (default 25)")
    parser.add_argument("--concurrency", type=int, default=8, help="import's (default 8)")
    args = parser.parse_args(argv)
    n, latency = args.size, args.latency_ms / 1000
    with tempfile.TemporaryDirectory(prefix="assistsync-bench-import-") as tmp:
        work = Path(tmp)
        with ServerProcess(work, latency_ms=0) as server:
            started = time.monotonic()
            n_files = _seed(server.base_url, n)
            seeded = time.monotonic() - started
            server.set_faults(latency_ms=args.latency_ms, rate_limit_rpm=0)
            project = work / "project"
            project.mkdir()
            env = {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": BENCH_KEY, "NO_COLOR": "1"}
            env["PATH"] = "/usr/bin:/bin"
            server.reset()
            cmd = [sys.executable, "-m", "assistsync", "-C", str(project)]
            run = run_measured(
                [*cmd, "import", "--all", "--concurrency", str(args.concurrency)],
                env=env,
                out_dir=work / "logs",
                label="import",
            )
            stats = server.stats()
            plan = run_measured([*cmd, "plan"], env=env, out_dir=work / "logs", label="plan")
    if run.returncode != 0:
        print(run.stderr[-3000:], file=sys.stderr)
        return 1
    reads = plan_floor(n, latency)
    downloads = stats.by_route.get("GET /v1/files/{file_id}/content", 0)
    tags = stats.by_route.get("POST /v1/assistants/{assistant_id}", 0)
    floor = reads.requests + n_files
    floor_s = reads.seconds + math.ceil(n_files / args.concurrency) * latency
    tag_s = math.ceil(n / args.concurrency) * latency
    empty = "No changes." in plan.stdout
    print(
        f"## assistsync import: {n:,} assistants, {n_files} shared files, {args.latency_ms:g} ms\n"
    )
    print("| measure | import | floor | floor with tags |")
    print("|---|---:|---:|---:|")
    print(f"| requests | {stats.requests:,} | {floor:,} | {floor + n:,} |")
    print(f"| content downloads | {downloads:,} | {n_files:,} | {n_files:,} |")
    print(f"| tag writes | {tags:,} | 0 | {n:,} |")
    print(f"| wall time | {run.wall_s:.2f} s | {floor_s:.2f} s | {floor_s + tag_s:.2f} s |")
    print(f"| peak memory | {run.maxrss_bytes / 2**20:.0f} MB | | |")
    print(f"\nThe next plan: {'empty' if empty else 'NOT EMPTY'} ({plan.wall_s:.2f} s).")
    print(f"Setup (not measured): {seeded:.1f} s to make the account.")
    return 0 if empty else 1


if __name__ == "__main__":
    raise SystemExit(main())
