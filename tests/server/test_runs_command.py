"""``assistsync server`` run options, end to end: a real process, a real run, the SDK's poller."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import httpx
from click.testing import CliRunner
from server_testkit import AUTH, BETA, REPO, free_port, server_process

from assistsync.server.app import start_server
from assistsync.server.command import server_command
from assistsync.server.routes import GROUPS
from assistsync.server.runs.endpoints import RunOptions, configured, engine_of


def test_help_lists_the_runs_group_and_its_options() -> None:
    result = CliRunner().invoke(server_command, ["--help"])
    assert result.exit_code == 0
    for text in [
        "GET/POST /v1/threads/{thread_id}/runs",
        "POST /v1/threads/{thread_id}/runs/{run_id}/submit_tool_outputs",
        "GET /v1/threads/{thread_id}/runs/{run_id}/steps/{step_id}",
        "POST /v1/threads/runs",
        "--max-concurrent-runs",
        "--run-expiry-s",
        "echo",
    ]:
        assert text in result.output, text


def test_run_options_reach_the_engine() -> None:
    groups = configured(GROUPS, RunOptions(max_concurrent_runs=2, run_expiry_s=30))
    with start_server(port=0, groups=groups) as handle:
        engine = engine_of(handle.context)
        assert engine.workers == 2
        assert engine.run_expiry_s == 30


def test_the_server_command_runs_assistants(tmp_path: Path) -> None:
    port = free_port()
    options = ("--db", str(tmp_path / "s.db"), "--max-concurrent-runs", "1", "--run-expiry-s", "45")
    argv, env = server_process(port, *options)
    with subprocess.Popen(
        argv, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=REPO, env=env
    ) as proc:
        try:
            assert proc.stderr is not None
            banner = proc.stderr.readline()
            assert f"http://127.0.0.1:{port}/v1" in banner, banner
            with httpx.Client(
                base_url=f"http://127.0.0.1:{port}/v1", headers={**AUTH, **BETA}, timeout=30
            ) as c:
                assistant = c.post("/assistants", json={"model": "gpt-4"}).json()["id"]
                created = c.post(
                    "/threads/runs",
                    json={
                        "assistant_id": assistant,
                        "thread": {"messages": [{"role": "user", "content": "hi"}]},
                    },
                ).json()
                assert created["expires_at"] == created["created_at"] + 45
                path = f"/threads/{created['thread_id']}/runs/{created['id']}"
                done = c.get(path, headers={"X-Stainless-Poll-Helper": "true"}).json()
                for _ in range(20):
                    if done["status"] == "completed":
                        break
                    done = c.get(path, headers={"X-Stainless-Poll-Helper": "true"}).json()
                assert done["status"] == "completed"
            proc.send_signal(signal.SIGINT)
            _, stderr = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert any(line.startswith("POST /v1/threads/runs 200 ") for line in stderr.splitlines())


def test_invalid_run_options_are_refused() -> None:
    for option in (["--max-concurrent-runs", "0"], ["--run-expiry-s", "0"]):
        result = CliRunner().invoke(server_command, option)
        assert result.exit_code == 2
        assert option[0] in result.output
