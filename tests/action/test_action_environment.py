"""What a runner's environment can get wrong is a clear error, never a crash (exit 3) or a leak."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from actionkit import serving
from actionproject import Harness

from assistsync.github.event import EventError, Runner
from assistsync.github.gitlock import GitError, commit_lock
from assistsync.github.rest import GitHubClient, GitHubError

TOKEN = "ghs_secret_token_0123456789abcdef"


@pytest.mark.parametrize("token", [TOKEN + "\nX", TOKEN + "é", TOKEN + "\x00"])
def test_a_token_that_cannot_be_sent_is_refused_without_showing_it(token: str) -> None:
    with pytest.raises(GitHubError) as info:
        GitHubClient("http://127.0.0.1:9", token, "octo/repo")
    assert "the github-token contains" in info.value.message
    assert "ghs_secret" not in info.value.message


def _answer(status: int, body: bytes) -> Any:
    def handle(method: str, target: str, headers: Any, payload: bytes) -> Any:
        return status, {}, body

    return handle


def test_a_token_quoted_back_by_github_is_redacted() -> None:
    echo = f'{{"message": "Bad credentials for {TOKEN}"}}'.encode()
    with (
        serving(_answer(401, echo)) as url,
        GitHubClient(url, TOKEN, "octo/repo") as client,
        pytest.raises(GitHubError) as info,
    ):
        client.comments(1)
    assert info.value.status == 401
    assert TOKEN not in info.value.message
    assert "ghs_secret_t" not in info.value.message


@pytest.mark.parametrize("body", [b"<html>maintenance</html>", b'{"not": "a list"}'])
def test_github_answering_nonsense_is_a_github_error(body: bytes) -> None:
    with (
        serving(_answer(200, body)) as url,
        GitHubClient(url, TOKEN, "octo/repo") as client,
        pytest.raises(GitHubError, match="GET /repos/octo/repo/issues/1/comments"),
    ):
        client.comments(1)


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe\x00", b""])
def test_an_unreadable_event_file_names_the_variable(tmp_path: Path, content: bytes) -> None:
    event = tmp_path / "event.json"
    event.write_bytes(content)
    with pytest.raises(EventError, match="GITHUB_EVENT_PATH="):
        Runner.from_env({"GITHUB_EVENT_PATH": str(event), "GITHUB_WORKSPACE": str(tmp_path)})


def test_no_git_on_the_runner_is_a_git_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = tmp_path / "assistsync.lock"
    lock.write_text("{}\n", encoding="utf-8")
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    with pytest.raises(GitError, match="cannot run git"):
        commit_lock(lock, "message")


def test_a_key_with_a_line_break_is_masked_line_by_line_and_refused(harness: Harness) -> None:
    key = "sk-action-odd-0123456789\nabcdef-9876543210"
    result = harness.run(command="plan", openai_api_key=key)
    assert result.code == 1, result.log
    masks = [c.message for c in result.annotations("add-mask")]
    assert masks == key.split("\n")
    for line in result.log.splitlines():
        if not line.startswith("::add-mask::"):
            assert "0123456789" not in line
            assert "9876543210" not in line
    assert "9876543210" not in result.summary
    [error] = [c for c in result.annotations("error") if "OPENAI_API_KEY" in c.message]
    assert "contains a line break" in error.message


def test_git_output_that_is_not_utf8_is_still_a_git_error(tmp_path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "--quiet", "--initial-branch=main")
    lock = tmp_path / "assistsync.lock"
    lock.write_text("{}\n", encoding="utf-8")
    git("add", ".")
    git("-c", "user.name=dev", "-c", "user.email=dev@example.com", "commit", "-qm", "init")
    git("remote", "add", "origin", os.fsdecode(b"/no/such/remote-\xff"))  # a Latin-1 path
    lock.write_text('{"serial": 2}\n', encoding="utf-8")
    with pytest.raises(GitError) as info:
        commit_lock(lock, "message")
    assert "remote-" in info.value.message
