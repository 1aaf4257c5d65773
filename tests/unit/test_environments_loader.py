"""Environments in the loader: variables ahead of the process environment, a lock each, and a
clear error for every way the choice can miss."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from assistsync.errors import AssistsyncError, ManifestError
from assistsync.manifest import load_project, locate_lock, project_environments
from assistsync.manifest.environments import default_lock

CONFIG = """\
environments:
  staging:
    variables: {MODEL: gpt-4-turbo, SUFFIX: " (staging)"}
  prod:
    variables: {MODEL: gpt-4, SUFFIX: ""}
    lock: locks/prod.lock
"""

MANIFEST = """\
assistants:
  bot:
    name: "Bot${SUFFIX}"
    model: ${MODEL}
    description: ${TEAM}
"""


def write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    write(tmp_path, "assistsync.yaml", CONFIG)
    write(tmp_path, "assistants/a.yaml", MANIFEST)
    return tmp_path


def test_variables_come_before_the_process_environment(root: Path) -> None:
    env = {"MODEL": "from-process", "TEAM": "support"}
    staging = load_project(root, env, environment="staging")
    prod = load_project(root, env, environment="prod")
    assert staging.desired.assistants["bot"].model == "gpt-4-turbo"
    assert staging.desired.assistants["bot"].name == "Bot (staging)"
    assert prod.desired.assistants["bot"].model == "gpt-4"
    assert prod.desired.assistants["bot"].name == "Bot"
    # what no environment sets still comes from the process
    assert prod.desired.assistants["bot"].description == "support"
    assert (staging.environment, prod.environment) == ("staging", "prod")


def test_each_environment_has_its_own_lock(root: Path) -> None:
    assert locate_lock(root, {}, "staging") == root.resolve() / "assistsync.staging.lock"
    assert locate_lock(root, {}, "prod") == root.resolve() / "locks" / "prod.lock"


def test_default_lock_names() -> None:
    assert default_lock("assistsync.lock", "prod") == "assistsync.prod.lock"
    assert default_lock("state/x.lock", "qa") == "state/x.qa.lock"
    assert default_lock("lockfile", "qa") == "lockfile.qa"


def test_no_environment_chosen_lists_them(root: Path) -> None:
    with pytest.raises(AssistsyncError) as err:
        load_project(root, {"TEAM": "x"})
    assert "declares environments (staging, prod)" in err.value.message
    assert "--env NAME" in err.value.message
    assert project_environments(root) == ("staging", "prod")


def test_unknown_environment_is_named(root: Path) -> None:
    with pytest.raises(AssistsyncError, match=r"no environment 'qa'.*staging, prod"):
        locate_lock(root, {}, "qa")


def test_without_environments_nothing_changes(tmp_path: Path) -> None:
    write(tmp_path, "assistsync.yaml", "manifests: [assistants/*.yaml]\n")
    write(tmp_path, "assistants/a.yaml", "assistants:\n  bot: {model: gpt-4}\n")
    project = load_project(tmp_path, {})
    assert project.environment is None
    assert project.lock_path.name == "assistsync.lock"
    assert project_environments(tmp_path) == ()
    with pytest.raises(AssistsyncError, match="declares no environments"):
        load_project(tmp_path, {}, environment="prod")


def test_a_bad_environment_is_located(tmp_path: Path) -> None:
    write(tmp_path, "assistsync.yaml", "environments:\n  Prod!:\n    variables: {A: 1}\n")
    with pytest.raises(ManifestError) as err:
        project_environments(tmp_path)
    text = err.value.message
    assert "assistsync.yaml:2:" in text
    assert "assistsync.yaml:3:" in text  # a variable must be a string


def test_the_plan_names_its_environment() -> None:
    from assistsync.model import Lock, Plan
    from assistsync.render import plan_json, render_markdown, render_text

    plan = Plan(lock=Lock(lineage=""), environment="prod")
    assert render_text(plan).startswith("Environment: prod\n\nNo changes.")
    assert "Environment: `prod`" in render_markdown(plan)
    assert plan_json(plan)["environment"] == "prod"
    assert "environment" not in plan_json(Plan(lock=Lock(lineage="")))
