"""An apply killed with SIGKILL at random points loses nothing and duplicates nothing.

The lock is written by a writer thread of its own, many changes to a write (``LockRecorder``),
so a kill can fall between a change on the server and the write that records it. What must
hold after any kill: the lock names nothing the server does not have (it never runs ahead),
and the next apply finds what the lock missed by its tag (an import, not a second create), so
that in the end the server holds each assistant exactly once and the lock names exactly what
the server holds.

Kill points come from the apply's own output (after the k-th finished change, k drawn from a
seeded ``random.Random``), not from sleeps.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from e2ekit import API_KEY, Api, Project

from assistsync.server import Faults, start_server

N = 40
FILES = 6


def _write_project(p: Project) -> None:
    p.write("assistsync.yaml", "manifests:\n  - assistants/*.yaml\n")
    for i in range(FILES):
        p.write(f"docs/d{i}.md", f"document {i}\n" * (i + 1))
    body = ["assistants:"]
    for i in range(N):
        body += [
            f"  a{i:03d}:",
            f"    name: Assistant {i}",
            "    model: gpt-4-turbo",
            f"    instructions: Help with topic {i}.",
            "    tools: [{type: retrieval}]",
            f"    files: [../docs/d{i % FILES}.md]",
        ]
    p.write("assistants/all.yaml", "\n".join(body) + "\n")


def _apply_killed_after(p: Project, finished: int) -> None:
    """Start ``apply --auto-approve``; SIGKILL it once ``finished`` changes have completed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env.update({"OPENAI_BASE_URL": p.server.base_url, "OPENAI_API_KEY": API_KEY, "NO_COLOR": "1"})
    proc = subprocess.Popen(
        [sys.executable, "-m", "assistsync", "-C", str(p.root), "apply", "--auto-approve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    seen = 0
    for line in proc.stdout:
        if " complete after " in line:
            seen += 1
            if seen >= finished:
                proc.send_signal(signal.SIGKILL)
                break
    proc.stdout.close()
    proc.wait(timeout=120)


def _lock_ids(p: Project) -> tuple[dict[str, str], set[str]]:
    path = p.root / "assistsync.lock"
    if not path.exists():
        return {}, set()
    lock = p.lock()
    assistants = {key: entry["id"] for key, entry in lock["assistants"].items()}
    files = {entry["id"] for entry in lock["files"].values()}
    return assistants, files


def test_apply_killed_at_random_points_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    rng = random.Random(12)
    # a little latency so that a kill lands while changes are in flight
    with start_server(port=0, faults=Faults(latency_ms=3)) as server:
        api = Api(server.base_url)
        p = Project(tmp_path / "proj", server)
        _write_project(p)
        partial = 0
        for _round in range(4):
            _apply_killed_after(p, rng.randint(1, N // 3))
            locked, locked_files = _lock_ids(p)
            live = {a["id"]: a for a in api.assistants()}
            live_files = {f["id"] for f in api.files()}
            # the lock never runs ahead of the server
            for key, assistant_id in locked.items():
                assert assistant_id in live, key
                assert live[assistant_id]["metadata"]["assistsync_key"] == key
            assert locked_files <= live_files
            # and nothing was created twice
            keys = Counter(a["metadata"].get("assistsync_key") for a in live.values())
            assert all(count == 1 for count in keys.values()), keys
            partial += len(live) < N
        assert partial, "no kill landed before the apply had finished"

        finish = p.run("apply", "--auto-approve")
        assert finish.code == 0, finish.all
        live_by_key = api.by_key()
        assert len(live_by_key) == N
        assert len(api.assistants()) == N
        locked, locked_files = _lock_ids(p)
        assert locked == {key: a["id"] for key, a in live_by_key.items()}
        used = {fid for a in live_by_key.values() for fid in a["file_ids"]}
        assert used <= locked_files
        assert len(used) == FILES
        assert len(api.files()) == len(locked_files) == FILES
        assert "No changes." in p.run("plan").out
        api.http.close()
