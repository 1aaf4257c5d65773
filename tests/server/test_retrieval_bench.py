"""Smoke test of ``python -m benchmarks.retrieval`` at tiny sizes: it runs and reports every
measure beside its target. No timing assertions: speed is what the benchmark reports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_retrieval_benchmark_reports_every_measure(tmp_path: Path) -> None:
    out = tmp_path / "rows.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.retrieval",
            "--text-mb",
            "0.3",
            "--chunks",
            "300",
            "--queries",
            "60",
            "--repeat",
            "1",
            "--no-documents",
            "--json",
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(out.read_text(encoding="utf-8"))
    measures = [row["measure"] for row in rows]
    assert [m.split(",")[0] for m in measures] == [
        "indexing throughput",
        "indexing throughput",
        "query latency p50 / p99",
        "query latency p50 / p99",
        "recall@5",
        "recall@5",
    ]
    assert all(row["met"] in {"yes", "NO", "NO (yes in CPU time)", "-"} for row in rows)
    # The shipped question set is answerable from the shipped documents: most are found.
    found, asked = rows[4]["result"].split("(")[1].rstrip(")").split("/")
    assert int(asked) >= 30
    assert int(found) >= int(asked) * 3 // 4
    assert "| measure | result | target | met |" in proc.stdout
