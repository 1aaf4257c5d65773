"""Smoke test of ``python -m benchmarks.testcmd`` at a tiny size: it runs and counts requests.

No timing assertions: only that every test passed and a turn cost our floor of requests.
"""

from __future__ import annotations

import sys

from benchrun import REPO, run_benchmark


def test_testcmd_benchmark_runs_at_a_tiny_size() -> None:
    proc = run_benchmark("benchmarks.testcmd", "--tests", "3", "--concurrency", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "| result | 3 passed, 0 failed |" in proc.stdout
    assert "| requests per turn (threads, runs) | 1.67 |" in proc.stdout


def test_python_m_benchmarks_reports_the_companion_cases_in_its_own_output() -> None:
    # One run of python -m benchmarks reports everything side by side: a companion's markdown
    # becomes a section of the main report (here the assistsync test case, kept tiny).
    sys.path.insert(0, str(REPO))
    try:
        from benchmarks.cli import COMPANIONS, _companion
    finally:
        sys.path.remove(str(REPO))
    assert {name for name, _, _ in COMPANIONS} == {"chat", "retrieval", "testcmd", "importing"}
    text = _companion("testcmd", ["--tests", "2", "--concurrency", "2"])
    assert "| result | 2 passed, 0 failed |" in text
