"""The action's git side and fork pull requests, run for real on the simulated runner."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from actionkit import ROOT
from actionproject import PR, WD, Harness
from test_action_run import _git_workspace


def test_apply_commits_a_lock_that_git_ignores_and_says_so(
    harness: Harness, tmp_path: Path
) -> None:
    harness.write(".gitignore", "# local experiments\nassistsync.lock\n")
    origin = _git_workspace(harness, tmp_path)
    harness.event("push", {"ref": "refs/heads/main"})
    result = harness.run(command="apply", commit_lock="true")
    assert result.code == 0, result.log
    files = harness.git("show", "--name-only", "--format=", "main", cwd=origin).split()
    assert files == [f"{WD}/assistsync.lock"]
    [notice] = [n for n in result.annotations("notice") if "ignores" in n.message]
    assert "git ignores assistsync.lock" in notice.message
    assert ".gitignore:2" in notice.message  # which rule, so it can be removed
    assert "git add -f" in notice.message
    assert "Committed and pushed infra/assistsync.lock" in result.log

    # Tracked from now on: the next apply with changes commits it without a notice.
    harness.write("assistants/bots.yaml", "assistants:\n  triage-bot:\n    model: gpt-4\n")
    again = harness.run(command="apply", commit_lock="true")
    assert again.code == 0, again.log
    assert not [n for n in again.annotations("notice") if "ignores" in n.message]
    assert harness.git("rev-list", "--count", "main", cwd=origin).strip() == "3"


def test_the_quickstart_does_not_ignore_its_lock(tmp_path: Path) -> None:
    project = tmp_path / "quickstart"
    shutil.copytree(ROOT / "examples" / "quickstart", project)
    subprocess.run(["git", "init", "--quiet"], cwd=project, check=True)
    (project / "assistsync.lock").write_text("{}\n", encoding="utf-8")
    (project / ".assistsync").mkdir(exist_ok=True)
    (project / ".assistsync" / "sandbox.db").write_bytes(b"")

    def ignored(path: str) -> bool:
        check = subprocess.run(["git", "check-ignore", "-q", path], cwd=project, check=False)
        return check.returncode == 0

    assert not ignored("assistsync.lock")
    assert ignored(".assistsync/sandbox.db")


def test_a_fork_pull_request_with_a_bad_manifest_annotates_and_summarises(
    harness: Harness,
) -> None:
    harness.write("assistants/bots.yaml", "assistants:\n  triage-bot:\n    modle: gpt-4\n")
    result = harness.run(command="plan", openai_api_key="")  # forks get no secrets
    assert result.code == 1, result.log
    errors = [c for c in result.annotations("error") if "file" in c.props]
    assert errors
    assert all(e.props["file"] == f"{WD}/assistants/bots.yaml" for e in errors)
    assert "in the manifests" in result.summary
    assert f"{WD}/assistants/bots.yaml:3:" in result.summary
    assert "modle" in result.summary
    assert "<!--" not in result.summary  # the comment's marker stays out of the summary
    assert result.outputs["exitcode"] == "1"
    assert harness.github.ours(PR, "<!--") == []  # no comment from a fork


@pytest.mark.parametrize("key", ["", "sk-action-test-key"])
def test_errors_in_the_project_file_are_not_called_errors_in_the_manifests(
    harness: Harness, key: str
) -> None:
    harness.write("assistsync.yaml", "manifests: [assistants/*.yaml]\nlokc: x.lock\n")
    result = harness.run(command="plan", openai_api_key=key)
    assert result.code == 1, result.log
    assert "1 error in the project file (assistsync.yaml)." in result.summary
    assert "in the manifests" not in result.summary
