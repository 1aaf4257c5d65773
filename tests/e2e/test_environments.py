"""Environments end to end: one set of manifests applied to one server as staging and prod."""

from __future__ import annotations

import json
from pathlib import Path

from e2ekit import Api, Project

from assistsync.server import ServerHandle

CONFIG = """\
environments:
  staging:
    variables: {MODEL: gpt-4-turbo, SUFFIX: " (staging)"}
  prod:
    variables: {MODEL: gpt-4, SUFFIX: ""}
"""

MANIFEST = """\
assistants:
  bot:
    name: "Support${SUFFIX}"
    model: ${MODEL}
    files: [../docs/faq.md]
  helper:
    model: ${MODEL}
    instructions: Help.
"""


def make(root: Path, server: ServerHandle) -> Project:
    p = Project(root, server)
    p.write("assistsync.yaml", CONFIG)
    p.write("assistants/a.yaml", MANIFEST)
    p.write("docs/faq.md", "# FAQ\n")
    return p


def lock_of(p: Project, env: str) -> dict[str, object]:
    return dict(json.loads((p.root / f"assistsync.{env}.lock").read_text(encoding="utf-8")))


def test_two_environments_on_one_server_keep_apart(
    tmp_path: Path, server: ServerHandle, api: Api
) -> None:
    p = make(tmp_path / "proj", server)
    for env in ("staging", "prod"):
        result = p.run("--env", env, "apply", "--auto-approve")
        assert result.code == 0, result.all
        assert f"Environment: {env}" in result.out
        # prod did not take staging's assistants for its own: it made two of its own
        assert result.out.count("Creation complete") == 2, result.out

    staging, prod = lock_of(p, "staging"), lock_of(p, "prod")
    assert not (p.root / "assistsync.lock").exists()
    ids = {
        env: {k: v["id"] for k, v in lock["assistants"].items()}  # type: ignore[attr-defined]
        for env, lock in (("staging", staging), ("prod", prod))
    }
    assert set(ids["staging"]) == set(ids["prod"]) == {"bot", "helper"}
    assert not set(ids["staging"].values()) & set(ids["prod"].values())
    assert staging["lineage"] != prod["lineage"]

    live = {a["id"]: a for a in api.assistants()}
    assert len(live) == 4
    assert live[ids["staging"]["bot"]]["name"] == "Support (staging)"
    assert live[ids["staging"]["bot"]]["model"] == "gpt-4-turbo"
    assert live[ids["prod"]["bot"]]["name"] == "Support"
    assert live[ids["prod"]["bot"]]["model"] == "gpt-4"
    assert live[ids["prod"]["bot"]]["metadata"]["assistsync_key"] == "bot@prod"

    for env in ("staging", "prod"):
        result = p.run("plan", "--env", env, "--detailed-exitcode")
        assert result.code == 0, result.all
        assert "No changes." in result.out

    # ASSISTSYNC_ENV selects too; a change in one environment leaves the other alone
    p.write("assistants/a.yaml", MANIFEST.replace("Help.", "Help more."))
    result = p.run("apply", "--auto-approve", env={"ASSISTSYNC_ENV": "staging"})
    assert result.code == 0, result.all
    assert "Resources: 0 added, 1 changed, 0 destroyed." in result.out
    assert (
        live[ids["prod"]["helper"]] == api.http.get(f"/assistants/{ids['prod']['helper']}").json()
    )


def test_environments_need_a_choice(tmp_path: Path, server: ServerHandle) -> None:
    p = make(tmp_path / "proj", server)
    result = p.run("plan")
    assert result.code == 1
    assert "declares environments (staging, prod)" in result.err
    assert "--env NAME" in result.err
    result = p.run("plan", "--env", "qa")
    assert result.code == 1
    assert "no environment 'qa'" in result.err


def test_each_environment_has_its_own_sandbox(tmp_path: Path, server: ServerHandle) -> None:
    p = make(tmp_path / "proj", server)
    assert p.run("--sandbox", "--env", "staging", "apply", "--auto-approve").code == 0
    state = p.root / ".assistsync"
    assert (state / "sandbox.staging.db").exists()
    result = p.run("--sandbox", "--env", "prod", "plan")
    assert "Plan: 0 to import, 3 to add" in result.out or "3 to add" in result.out, result.all
    result = p.run("--sandbox", "--env", "staging", "plan", "--detailed-exitcode")
    assert result.code == 0, result.all


def test_validate_checks_every_environment(tmp_path: Path, server: ServerHandle) -> None:
    p = make(tmp_path / "proj", server)
    assert "in each of 2 environments (staging, prod)" in p.run("validate").out
    p.write(
        "assistsync.yaml",
        CONFIG.replace('SUFFIX: ""}', "}"),  # prod leaves SUFFIX unset
    )
    result = p.run("validate")
    assert result.code == 1
    assert (
        "assistants/a.yaml:3:11: environment variable SUFFIX is not set (in environment prod)"
        in result.err
    ), result.err
    assert "staging" not in result.err.split("(in environment")[1].split(")")[0]
    assert p.run("validate", "--env", "staging").code == 0


def test_a_project_moves_to_environments_without_recreating(
    tmp_path: Path, server: ServerHandle, api: Api
) -> None:
    p = make(tmp_path / "proj", server)
    p.write("assistsync.yaml", "manifests: [assistants/*.yaml]\n")
    p.write("assistants/a.yaml", MANIFEST.replace("${SUFFIX}", "").replace("${MODEL}", "gpt-4"))
    assert p.run("apply", "--auto-approve").code == 0
    ids = {a["id"] for a in api.assistants()}
    p.write(
        "assistsync.yaml", CONFIG.replace('SUFFIX: ""}', 'SUFFIX: ""}\n    lock: assistsync.lock')
    )
    p.write("assistants/a.yaml", MANIFEST)
    plan = p.run("plan", "--env", "prod")
    assert "0 to add, 2 to change, 0 to destroy" in plan.out, plan.all
    assert p.run("apply", "--env", "prod", "--auto-approve").code == 0
    assert {a["id"] for a in api.assistants()} == ids
    assert {a["metadata"]["assistsync_key"] for a in api.assistants()} == {
        "bot@prod",
        "helper@prod",
    }
    assert p.run("plan", "--env", "prod", "--detailed-exitcode").code == 0
