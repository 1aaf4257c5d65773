"""The CLI with the cache of loaded projects (``.assistsync/cache/``): the same output with or
without it, edits always seen, and a read-only checkout planned without one."""

from __future__ import annotations

import shutil
from pathlib import Path

from e2ekit import Project
from test_hardening import read_only

from assistsync.server import start_server

CACHE = ".assistsync/cache"


def test_a_plan_from_the_cache_is_the_plan_without_it(project: Project) -> None:
    first = project.run("plan", "--format", "json")
    assert first.code == 0, first.all
    assert (project.root / CACHE).is_dir()
    again = project.run("plan", "--format", "json")
    assert again.out == first.out

    applied = project.run("apply", "--auto-approve")
    assert applied.code == 0, applied.all
    assert project.run("plan", "--detailed-exitcode").code == 0

    # an edit of a file a manifest names is seen, whatever the cache holds
    project.write("prompts/helper.md", "Help with orders, briefly.\n")
    cached = project.run("plan")
    shutil.rmtree(project.root / CACHE)
    fresh = project.run("plan")
    assert cached.code == fresh.code == 0
    assert "Help with orders, briefly." in cached.out
    assert cached.out == fresh.out


def test_a_read_only_checkout_plans_without_a_cache(project: Project) -> None:
    expected = project.run("plan")
    assert expected.code == 0, expected.all
    shutil.rmtree(project.root / ".assistsync")
    with read_only(project.root):
        result = project.run("plan")
        validated = project.run("validate")
    assert result.code == 0, result.all
    assert validated.code == 0, validated.all
    assert result.out == expected.out
    assert not (project.root / ".assistsync").exists()


def test_the_api_error_comes_before_a_damaged_lock(tmp_path: Path) -> None:
    # the lock is read while the account is listed; what the user is told first is unchanged
    with start_server(port=0, api_key="sk-the-right-one") as strict:
        p = Project(tmp_path / "p", strict)
        p.write("assistsync.yaml", "manifests: [a.yaml]\n")
        p.write("a.yaml", "assistants:\n  x:\n    model: gpt-4\n")
        p.write("assistsync.lock", "<<<<<<< HEAD\n{}\n=======\n{}\n>>>>>>> other\n")
        result = p.run("plan")
    assert result.code == 1
    assert "401" in result.err
    assert "merge conflicts" not in result.err
