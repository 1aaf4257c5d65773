"""Smoke test of ``python -m benchmarks.importing`` at a tiny size: it completes, the next plan
is empty, and the import's requests are exactly the floor with tags (no timing assertions)."""

from __future__ import annotations

import re

from benchrun import run_benchmark


def test_import_benchmark_runs_at_the_request_floor() -> None:
    proc = run_benchmark("benchmarks.importing", "--size", "40", "--latency-ms", "0")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "The next plan: empty" in proc.stdout
    row = re.search(r"\| requests \| ([\d,]+) \| ([\d,]+) \| ([\d,]+) \|", proc.stdout)
    assert row is not None, proc.stdout
    measured, floor, with_tags = (int(g.replace(",", "")) for g in row.groups())
    assert floor == 1 + 1 + 2  # one page, one /files list, two distinct files
    assert measured == with_tags == floor + 40
