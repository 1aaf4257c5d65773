"""How the bench smoke tests start a benchmark: ``python -m MODULE ARGS`` from the repository
root, output captured, never raising on a non-zero exit (each test asserts on it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_benchmark(
    module: str, *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m module *args`` in the repository root and return what it printed."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
