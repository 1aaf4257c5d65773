"""The chat settings reach the server: ``assistsync server --chat-url …`` in a real process, and
the ``--sandbox`` server through ``ASSISTSYNC_CHAT_*``; settings that cannot work are refused
with one clear message."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from chat_fixtures import KEY, KEY_ENV
from chat_testkit import StandIn, text
from click.testing import CliRunner
from server_testkit import AUTH, BETA, REPO, free_port, server_process

from assistsync.cli.context import Settings, open_client
from assistsync.errors import ConfigError
from assistsync.server.command import server_command


@pytest.fixture
def standin() -> Iterator[StandIn]:
    backend = StandIn()
    yield backend
    backend.close()


def _answer(base_url: str, headers: dict[str, str], model: str = "gpt-4-turbo") -> str:
    """Run one assistant on a new thread until it ends; its answer's text."""
    with httpx.Client(base_url=base_url, headers={**headers, **BETA}, timeout=30) as c:
        assistant = c.post("/assistants", json={"model": model}).json()["id"]
        run = c.post(
            "/threads/runs",
            json={
                "assistant_id": assistant,
                "thread": {"messages": [{"role": "user", "content": "hi"}]},
            },
        ).json()
        path = f"/threads/{run['thread_id']}/runs/{run['id']}"
        for _ in range(60):
            run = c.get(path, headers={"X-Stainless-Poll-Helper": "true"}).json()
            if run["status"] not in ("queued", "in_progress"):
                break
        assert run["status"] == "completed", run
        messages = c.get(f"/threads/{run['thread_id']}/messages").json()["data"]
        value: str = messages[0]["content"][0]["text"]["value"]
        return value


def test_help_lists_the_chat_options() -> None:
    result = CliRunner().invoke(server_command, ["--help"])
    assert result.exit_code == 0
    for option in ("--chat-url", "--chat-key-env", "--model", "--chat-concurrency"):
        assert option in result.output
    assert "ASSISTSYNC_CHAT_URL" in result.output


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", "a=b"], "--model and --chat-key-env need --chat-url"),
        (["--chat-url", "http://127.0.0.1:9/v1", "--model", "gpt-4"], "is not NAME=BACKEND_NAME"),
        (["--chat-url", "http://127.0.0.1:9/v1", "--model", "a=b", "--model", "a=c"], "twice"),
        (["--chat-url", "ollama:11434"], "is not an http(s) URL"),
        (
            ["--chat-url", "http://127.0.0.1:9/v1", "--chat-key-env", "ASSISTSYNC_NO_SUCH_VAR"],
            "the chat backend key variable ASSISTSYNC_NO_SUCH_VAR is not set",
        ),
        (["--chat-url", "http://127.0.0.1:9/v1", "--chat-concurrency", "0"], "--chat-concurrency"),
    ],
)
def test_settings_that_cannot_work_are_refused(argv: list[str], message: str) -> None:
    result = CliRunner().invoke(server_command, argv, env={"ASSISTSYNC_NO_SUCH_VAR": ""})
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_the_server_command_answers_runs_with_the_backend(standin: StandIn) -> None:
    standin.script(text("from ", "the backend"))
    port = free_port()
    options = ["--chat-url", standin.url, "--chat-key-env", KEY_ENV]
    options += ["--model", "gpt-4-turbo=served-model", "--model", "*=fallback-model"]
    argv, env = server_process(port, *options, "--chat-concurrency", "2", env={KEY_ENV: KEY})
    with subprocess.Popen(
        argv, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=REPO, env=env
    ) as proc:
        try:
            assert proc.stderr is not None
            chat_line = proc.stderr.readline()
            banner = proc.stderr.readline()
            assert f"http://127.0.0.1:{port}/v1" in banner, banner
            base = f"http://127.0.0.1:{port}/v1"
            assert _answer(base, AUTH) == "from the backend"
            assert _answer(base, AUTH, model="gpt-3.5-turbo") == "ok"
            proc.send_signal(signal.SIGINT)
            _, stderr = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 0, stderr
    assert chat_line.startswith(
        f"assistsync server: runs answered by the chat backend at {standin.url}/chat/completions"
    )
    assert "gpt-4-turbo -> served-model, * -> fallback-model; 2 calls at once" in chat_line
    assert [r["model"] for r in standin.requests] == ["served-model", "fallback-model"]
    assert standin.headers[0]["authorization"] == f"Bearer {KEY}"
    assert KEY not in chat_line + stderr


def test_the_sandbox_server_uses_the_backend_from_the_environment(
    standin: StandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    standin.script(text("sandboxed"))
    monkeypatch.setenv("ASSISTSYNC_CHAT_URL", standin.url)
    monkeypatch.setenv("ASSISTSYNC_CHAT_MODELS", "*=local-model")
    monkeypatch.setenv("ASSISTSYNC_CHAT_KEY_ENV", KEY_ENV)
    monkeypatch.setenv(KEY_ENV, KEY)
    with open_client(Settings(root=tmp_path, sandbox=True)) as client:
        answer = _answer(client.base_url, {"Authorization": "Bearer sk-sandbox"})
    assert answer == "sandboxed"
    assert standin.requests[0]["model"] == "local-model"
    assert standin.headers[0]["authorization"] == f"Bearer {KEY}"


def test_the_sandbox_refuses_broken_chat_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASSISTSYNC_CHAT_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("ASSISTSYNC_CHAT_CONCURRENCY", "many")
    with (
        pytest.raises(ConfigError, match="ASSISTSYNC_CHAT_CONCURRENCY must be a whole number"),
        open_client(Settings(root=tmp_path, sandbox=True)),
    ):
        pass
