"""Smoke test of ``python -m benchmarks.testcmd`` at a tiny size: it runs and counts requests.

No timing assertions: only that every test passed and a turn cost our floor of requests.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_testcmd_benchmark_runs_at_a_tiny_size() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.testcmd", "--tests", "3", "--concurrency", "2"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "| result | 3 passed, 0 failed |" in proc.stdout
    assert "| requests per turn (threads, runs) | 1.67 |" in proc.stdout
