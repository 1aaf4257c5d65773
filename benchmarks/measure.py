"""Run one measured subprocess: wall time, exit code, the tail of its output, its own peak RSS.

The command is started through :mod:`benchmarks.launch` (see there why: on Linux a child's
``ru_maxrss`` includes the RSS its parent had when it forked, so measuring from the harness
would report the harness's peak for every small command). The launcher times the command from
spawn to exit and takes its rusage from ``wait4`` on its pid: that child's peak alone.
``getrusage(RUSAGE_CHILDREN)`` would not do either: its ``ru_maxrss`` is the largest of *all*
children waited for so far.

Output goes to files, never pipes, so a plan of many megabytes can neither block the command
nor grow the harness; only the last 256 KiB of each stream are read back.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

LAUNCHER = Path(__file__).resolve().with_name("launch.py")
TAIL_BYTES = 256 * 1024


@dataclass(frozen=True)
class Run:
    """The outcome of one measured subprocess."""

    argv: tuple[str, ...]
    wall_s: float
    returncode: int
    maxrss_bytes: int
    cpu_s: float
    """User + system CPU of the command (its own, from ``wait4``)."""
    stdout: str
    """The last 256 KiB of standard output."""
    stderr: str
    """The last 256 KiB of standard error."""


def _tail(path: Path) -> str:
    with path.open("rb") as f:
        size = f.seek(0, os.SEEK_END)
        f.seek(max(0, size - TAIL_BYTES))
        return f.read().decode("utf-8", errors="replace")


def run_measured(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    out_dir: Path,
    label: str,
    timeout_s: float = 1800,
) -> Run:
    """Run ``argv`` to completion; stdout/stderr go to ``out_dir/label.{out,err}``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    out_path = out_dir / f"{label}.out"
    err_path = out_dir / f"{label}.err"
    result_path = out_dir / f"{label}.rusage.json"
    result_path.unlink(missing_ok=True)
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, str(LAUNCHER), str(result_path), "--", *argv],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,  # one process group: a timeout ends the command too
        )
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise RuntimeError(f"{label} did not finish in {timeout_s:.0f} s") from None
    if proc.returncode != 0 or not result_path.exists():
        raise RuntimeError(f"the launcher failed for {label}:\n{_tail(err_path)[-3000:]}")
    measured = json.loads(result_path.read_text(encoding="utf-8"))
    return Run(
        argv=tuple(argv),
        wall_s=float(measured["wall_s"]),
        returncode=int(measured["returncode"]),
        maxrss_bytes=int(measured["maxrss_bytes"]),
        cpu_s=float(measured["cpu_s"]),
        stdout=_tail(out_path),
        stderr=_tail(err_path),
    )
