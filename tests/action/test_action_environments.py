"""The action's ``environment`` input: each environment plans and applies on its own, with a
comment of its own on the pull request."""

from __future__ import annotations

from actionproject import PR, WD, Harness

CONFIG = """\
environments:
  staging:
    variables: {SUFFIX: " (staging)"}
  prod:
    variables: {SUFFIX: ""}
"""

BOT = """\
assistants:
  bot:
    name: "Bot${SUFFIX}"
    model: gpt-4-turbo
"""


def test_each_environment_plans_applies_and_comments_apart(harness: Harness) -> None:
    harness.write("assistsync.yaml", CONFIG)
    harness.write("assistants/bots.yaml", BOT)
    for env in ("staging", "prod"):
        planned = harness.run(command="plan", environment=env)
        assert planned.code == 0, planned.log
        assert planned.outputs["summary"] == "Plan: 1 to add, 0 to change, 0 to destroy."
        assert f"Environment: {env}" in planned.log
    staging = harness.github.ours(PR, f"<!-- assistsync plan: {WD} (environment staging) -->")
    prod = harness.github.ours(PR, f"<!-- assistsync plan: {WD} (environment prod) -->")
    assert len(staging) == len(prod) == 1
    assert 'name         = "Bot (staging)"' in staging[0]["body"]

    applied = harness.run(command="apply", environment="staging")
    assert applied.code == 0, applied.log
    assert (harness.workspace / WD / "assistsync.staging.lock").exists()
    assert not (harness.workspace / WD / "assistsync.prod.lock").exists()
    again = harness.run(command="plan", environment="staging")
    assert again.outputs["exitcode"] == "0", again.log
    assert harness.run(command="plan", environment="prod").outputs["exitcode"] == "2"


def test_a_project_with_environments_needs_the_input(harness: Harness) -> None:
    harness.write("assistsync.yaml", CONFIG)
    harness.write("assistants/bots.yaml", BOT)
    result = harness.run(command="plan")
    assert result.code == 1
    assert "declares environments (staging, prod)" in result.log
