"""``assistsync server`` as a user runs it: a real process, stopped with Ctrl-C or SIGTERM."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from server_testkit import AUTH, BETA, REPO, free_port, server_process

from assistsync.server.command import server_command


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_server_command_serves_logs_and_stops_cleanly(tmp_path: Path, stop: signal.Signals) -> None:
    port = free_port()
    db = tmp_path / "s.db"
    argv, env = server_process(port, "--db", str(db))
    with subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=env,
    ) as proc:
        try:
            assert proc.stderr is not None
            banner = proc.stderr.readline()  # written once the socket is listening
            assert f"http://127.0.0.1:{port}/v1" in banner, banner
            with httpx.Client(
                base_url=f"http://127.0.0.1:{port}/v1", headers={**AUTH, **BETA}
            ) as c:
                created = c.post("/assistants", json={"model": "gpt-4"})
                assert created.status_code == 200
                assert c.get("/assistants").json()["data"][0]["id"] == created.json()["id"]
            proc.send_signal(stop)
            _, stderr = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 0, stderr
    lines = stderr.splitlines()
    assert any(line.startswith("POST /v1/assistants 200 ") for line in lines), stderr
    assert any(line.startswith("GET /v1/assistants 200 ") for line in lines), stderr
    assert "Traceback" not in stderr
    assert db.exists()


def test_help_documents_endpoints_faults_and_persistence() -> None:
    result = CliRunner().invoke(server_command, ["--help"])
    assert result.exit_code == 0
    for text in [
        "/v1",
        "/v1/assistants/{assistant_id}/files/{file_id}",
        "/v1/files/{file_id}/content",
        "--latency-ms",
        "--rate-limit-rpm",
        "--error-rate",
        "--lost-response-rate",
        "--seed",
        "--api-key",
        "--db",
        "OpenAI-Beta: assistants=v1",
        "FILE.files/",
    ]:
        assert text in result.output, text


def test_bad_option_values_are_refused() -> None:
    result = CliRunner().invoke(server_command, ["--error-rate", "2"])
    assert result.exit_code == 2
    assert "--error-rate" in result.output
