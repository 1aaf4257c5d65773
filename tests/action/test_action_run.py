"""The action's shell steps run for real: simulated runner, embedded server, fake GitHub API."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

from actionkit import ROOT, ActionRunner, FaultProxy, load_action, serving
from actionproject import MARKER, PR, WD, Harness


def test_plan_comments_once_then_updates_the_same_comment(harness: Harness) -> None:
    github = harness.github
    github.page_size = 2  # three comments by people first: ours lands on page 2
    for n in range(3):
        github.add(PR, f"Looks good {n}")

    first = harness.run(command="plan")
    assert first.code == 0, first.log
    assert first.outputs["exitcode"] == "2"
    assert first.outputs["has-changes"] == "true"
    assert first.outputs["summary"] == "Plan: 2 to add, 0 to change, 0 to destroy."
    plan = json.loads(Path(first.outputs["plan-json"]).read_text(encoding="utf-8"))
    assert plan["summary"] == first.outputs["summary"]
    assert sorted(c["address"] for c in plan["resource_changes"]) == [
        "assistant.returns-bot",
        "assistant.triage-bot",
    ]
    [created] = github.ours(PR, MARKER)
    assert "**Plan: 2 to add, 0 to change, 0 to destroy.**" in created["body"]
    assert "```diff" in created["body"]
    assert "commit abcdef1" in created["body"]
    assert "<details>" in first.summary
    assert "Plan: 2 to add" in first.summary

    applied = harness.run(command="apply")
    assert applied.code == 0, applied.log
    assert applied.outputs["summary"] == (
        "Apply complete! Resources: 2 added, 0 changed, 0 destroyed."
    )
    assert applied.outputs["has-changes"] == "true"
    assert (harness.workspace / WD / "assistsync.lock").exists()
    # the apply runs in-process and logs what the CLI prints: one line per resource
    assert "assistant.triage-bot: Creating..." in applied.log
    assert "assistant.triage-bot: Creation complete after " in applied.log

    harness.write("assistants/bots.yaml", BOTS_EDITED)
    second = harness.run(command="plan")
    assert second.code == 0, second.log
    assert second.outputs["summary"] == "Plan: 0 to add, 1 to change, 0 to destroy."
    [updated] = github.ours(PR, MARKER)
    assert updated["id"] == created["id"]
    assert "1 to change" in updated["body"]
    assert "+ " in updated["body"]
    assert "Be brief and kind." in updated["body"]
    assert len(github.comments[PR]) == 4
    lists = [t for m, t in github.requests if m == "GET"]
    assert "per_page=100" in lists[0]
    assert any("page=2" in t for t in lists), "the Link: rel=next page was not followed"
    assert [m for m, _ in github.requests if m != "GET"] == ["POST", "PATCH"]


BOTS_EDITED = """\
assistants:
  triage-bot:
    name: Triage Bot
    model: gpt-4-turbo
    instructions: |
      Sort incoming tickets.
      Be brief and kind.
  returns-bot:
    name: Returns Bot
    model: gpt-4-turbo
    instructions: You handle returns politely.
"""


def test_no_changes_outputs_and_no_comment_when_disabled(harness: Harness) -> None:
    assert harness.run(command="apply").code == 0
    result = harness.run(command="plan", comment="false")
    assert result.code == 0, result.log
    assert result.outputs["exitcode"] == "0"
    assert result.outputs["has-changes"] == "false"
    assert result.outputs["summary"] == "No changes. Your assistants match the configuration."
    assert harness.github.requests == []


def test_bad_manifest_gives_annotations_relative_to_the_repository(harness: Harness) -> None:
    harness.write(
        "assistants/bots.yaml",
        """\
        assistants:
          triage-bot:
            name: Triage Bot
            modle: gpt-4-turbo
        """,
    )
    result = harness.run(command="plan")
    assert result.code == 1
    errors = [c for c in result.annotations("error") if "file" in c.props]
    assert errors, result.log
    for error in errors:
        assert error.props["file"] == "infra/assistants/bots.yaml"
        assert int(error.props["line"]) >= 1
        assert int(error.props["col"]) >= 1
    assert any("modle" in e.message for e in errors)
    assert result.outputs["exitcode"] == "1"
    assert result.outputs["has-changes"] == "false"
    [comment] = harness.github.ours(PR, MARKER)
    assert "The plan failed" in comment["body"]
    assert "infra/assistants/bots.yaml:" in comment["body"]


def test_missing_key_is_a_notice_and_success(harness: Harness) -> None:
    result = harness.run(command="plan", openai_api_key="")
    assert result.code == 0, result.log
    [notice] = result.annotations("notice")
    assert "forks" in notice.message
    assert result.outputs["exitcode"] == "0"
    assert result.outputs["has-changes"] == "false"
    assert not result.annotations("error")
    assert harness.github.requests == []


def test_unknown_command_fails_clearly(harness: Harness) -> None:
    result = harness.run(command="destroy")
    assert result.code == 1
    [error] = result.annotations("error")
    assert "plan, apply or test" in error.message


def _git_workspace(harness: Harness, tmp_path: Path) -> Path:
    origin = tmp_path / "origin.git"
    harness.git("init", "--quiet", "--bare", "--initial-branch=main", str(origin))
    harness.git("init", "--quiet", "--initial-branch=main")
    harness.git("remote", "add", "origin", str(origin))
    harness.git("add", ".")
    harness.git("-c", "user.name=dev", "-c", "user.email=dev@example.com", "commit", "-qm", "init")
    harness.git("push", "--quiet", "origin", "main")
    return origin


def test_apply_commits_and_pushes_the_lock(harness: Harness, tmp_path: Path) -> None:
    origin = _git_workspace(harness, tmp_path)
    harness.event("push", {"ref": "refs/heads/main"})
    result = harness.run(command="apply", commit_lock="true")
    assert result.code == 0, result.log
    pushed = harness.git("log", "-1", "--format=%an <%ae>%n%B", "main", cwd=origin)
    assert pushed.startswith("github-actions[bot] <41898282+github-actions[bot]@users")
    assert "Apply complete! Resources: 2 added, 0 changed, 0 destroyed. [skip ci]" in pushed
    files = harness.git("show", "--name-only", "--format=", "main", cwd=origin).split()
    assert files == ["infra/assistsync.lock"]

    again = harness.run(command="apply", commit_lock="true")
    assert again.code == 0, again.log
    assert again.outputs["has-changes"] == "false"
    assert harness.git("rev-list", "--count", "main", cwd=origin).strip() == "2"


def test_partial_failure_annotates_and_commits_what_succeeded(
    harness: Harness, tmp_path: Path
) -> None:
    origin = _git_workspace(harness, tmp_path)
    harness.event("push", {"ref": "refs/heads/main"})

    def reject(method: str, target: str, body: bytes) -> bool:
        return method == "POST" and target.endswith("/assistants") and b"Returns Bot" in body

    upstream = harness.server.base_url.removesuffix("/v1")
    fault_proxy = FaultProxy(upstream, reject)
    try:
        with serving(fault_proxy.handle) as proxy:
            result = harness.run(command="apply", commit_lock="true", openai_base_url=proxy + "/v1")
    finally:
        fault_proxy.http.close()
    assert result.code == 1
    assert result.outputs["exitcode"] == "1"
    titles = {c.props.get("title") for c in result.annotations("error")}
    assert "assistsync apply failed" in titles
    assert any("returns-bot" in c.message for c in result.annotations("error"))
    lock = json.loads((harness.workspace / WD / "assistsync.lock").read_text(encoding="utf-8"))
    assert list(lock["assistants"]) == ["triage-bot"]
    message = harness.git("log", "-1", "--format=%B", "main", cwd=origin)
    assert message.startswith("assistsync: apply partly failed; Resources: 1 added")
    assert "[skip ci]" in message


def test_install_step_installs_the_action_checkout(tmp_path: Path) -> None:
    """The install step, run for real with ``python3`` stubbed: a venv, pip install of the
    action's own directory, and the venv's python as the output the next step runs."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    stub = bin_dir / "python3"
    stub.write_text(
        f"""#!/usr/bin/env bash
echo "python3 $*" >> {calls}
if [ "$1" = -c ]; then exec {sys.executable} "$@"; fi
if [ "$1 $2" = "-m venv" ]; then
  mkdir -p "$3/bin"
  printf '#!/usr/bin/env bash\\necho "venv-python $*" >> {calls}\\n' > "$3/bin/python"
  chmod +x "$3/bin/python"
fi
""",
        encoding="utf-8",
    )
    stub.chmod(stub.stat().st_mode | stat.S_IEXEC)
    temp = tmp_path / "temp"
    temp.mkdir()
    runner = ActionRunner(
        workspace=tmp_path,
        temp=temp,
        env={"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"},
        skip={"run": {}},
    )
    result = runner.run({"command": "plan"})
    assert result.code == 0, result.log
    venv = temp / "assistsync-venv"
    log = calls.read_text(encoding="utf-8")
    assert f"python3 -m venv {venv}" in log
    assert f"venv-python -m pip install --quiet --disable-pip-version-check {ROOT}" in log
    [install] = result.steps
    assert install.outputs == {"python": f"{venv}/bin/python"}
    run_step = load_action()["runs"]["steps"][1]
    assert run_step["env"]["ASSISTSYNC_PYTHON"] == "${{ steps.install.outputs.python }}"
    assert '"${ASSISTSYNC_PYTHON}" -m assistsync.github plan' in run_step["run"]


def test_action_metadata_follows_the_conventions() -> None:
    action = load_action()
    assert action["runs"]["using"] == "composite"
    assert action["branding"]["icon"]
    assert action["branding"]["color"]
    for name in (
        "command",
        "working-directory",
        "openai-api-key",
        "openai-base-url",
        "github-token",
        "comment",
        "commit-lock",
    ):
        spec = action["inputs"][name]
        assert spec["description"]
        assert "default" in spec
    assert action["inputs"]["github-token"]["default"] == "${{ github.token }}"
    assert set(action["outputs"]) == {
        "exitcode",
        "has-changes",
        "plan-json",
        "summary",
        "tests-passed",
        "tests-failed",
    }
    for step in action["runs"]["steps"]:
        assert step["shell"] == "bash"
        assert "${{" not in step["run"], "inputs reach scripts through env:, never interpolated"
