"""Smoke test of ``python -m benchmarks`` at tiny sizes: it completes and its table is sane.

No timing assertions (speed is what the benchmark reports, not what a test asserts): only that
every case ran, every apply succeeded, requests were counted, and a plan cost its floor.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchrun import run_benchmark

KINDS = {
    "apply-empty",
    "plan",
    "apply-edit",
    "apply-rate",
    "local-validate",
    "local-plan",
    "large",
    "help",
    "version",
    "plan-fresh",
    "growth-apply",
    "growth-plan",
    "server",
}


def test_benchmark_runs_at_tiny_sizes(tmp_path: Path) -> None:
    out_json = tmp_path / "results.json"
    proc = run_benchmark(
        "benchmarks",
        "--sizes",
        "5",
        "--latency-ms",
        "0",
        "--rate-limit-rpm",
        "60000",
        "--large-file-mb",
        "1",
        "--startup-runs",
        "1",
        "--repeats",
        "1",
        "--growth",
        "5",
        "--server-requests",
        "20",
        "--workdir",
        str(tmp_path / "work"),
        "--json",
        str(out_json),
        "--only-core",  # each companion case has a smoke test of its own
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "Traceback" not in proc.stderr

    data = json.loads(out_json.read_text(encoding="utf-8"))
    results: list[dict[str, Any]] = data["results"]
    assert {r["kind"] for r in results} == KINDS

    for r in results:
        ours = r["ours"]
        assert ours["ok"], (r["case"], ours["note"])
        assert ours["wall_s"] > 0
        assert ours["maxrss_bytes"] > 0
        if r["kind"] in ("help", "version", "local-validate"):
            continue
        if r["kind"] == "server":
            assert ours["failures"] == 0, r
            assert r["extra"]["rps"] > 0
            continue
        assert ours["requests"] > 0, r["case"]
        assert r["floor"]["requests"] > 0
        assert ours["requests"] >= r["floor"]["requests"], r["case"]
        # Either each SDK script ran and succeeded, or its columns say why not.
        for sdk in (r["baseline"], r["threaded"]):
            assert sdk["ok"] if sdk["wall_s"] is not None else sdk["note"]
        assert ours["cpu_s"] > 0

    for r in results:
        if r["kind"] in ("plan", "local-plan", "plan-fresh", "growth-plan"):
            assert r["ours"]["requests"] == r["floor"]["requests"] == 2, r

    # The markdown on stdout has a row per case and the targets section.
    text = proc.stdout
    for r in results:
        assert f"| {r['case']} |" in text
    for t in data["targets"]:
        assert f"| {t['target']} |" in text
    assert "### Targets" in text
    assert "### Machine" in text
