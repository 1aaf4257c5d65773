"""A tiny launcher: spawn a command, wait for it, write its wall time, CPU time
(user + system) and *own* peak RSS as JSON.

Usage (by path, so it imports nothing but the standard library)::

    python benchmarks/launch.py RESULT.json -- ARGV...

Why not measure from the harness directly: on Linux a process's ``ru_maxrss`` includes the
high-water RSS of the memory image it had *before* ``execve`` — for a child of the harness, the
harness's own peak (tens of MB once it has generated a 1,000-assistant project). Spawned from
this launcher instead, the measured command inherits only the launcher's few MB, which any
Python program exceeds anyway, so its peak RSS is its own.
"""

import json
import os
import sys
import time


def main() -> int:
    result_path = sys.argv[1]
    argv = sys.argv[3:]
    started = time.perf_counter()
    pid = os.posix_spawnp(argv[0], argv, os.environ)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - started
    maxrss = usage.ru_maxrss if sys.platform == "darwin" else usage.ru_maxrss * 1024
    code = os.waitstatus_to_exitcode(status)
    with open(result_path, "w", encoding="utf-8") as f:
        json.dump(
            {
                "wall_s": wall,
                "cpu_s": usage.ru_utime + usage.ru_stime,
                "maxrss_bytes": maxrss,
                "returncode": code,
            },
            f,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
