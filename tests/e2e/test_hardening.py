"""State safety end to end: retired uploads, a lock that cannot be written (a full disk for
real, a read-only project), a lock path leading out of the project, leftovers of killed writes,
merge conflicts, and where a saved plan may be applied."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from e2ekit import Api, Project, run_cli

from assistsync.server import ServerHandle, start_server


def applied(project: Project) -> None:
    result = project.run("apply", "--auto-approve")
    assert result.code == 0, result.all


def sha12(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


# --- 1. retired uploads --------------------------------------------------------------------


def test_retired_uploads_that_are_gone_are_forgotten_and_their_content_recovered(
    project: Project, api: Api
) -> None:
    faq_v1 = (project.root / "docs/faq.md").read_text()
    applied(project)
    old_id = next(f["id"] for f in api.files() if f["filename"] == "faq.md")
    project.write("docs/faq.md", "# FAQ\n\nShipping takes 2 days now.\n")
    applied(project)
    assert api.http.get(f"/files/{old_id}").status_code == 404

    # the state an apply killed after DELETE /files/<old> but before its lock write leaves:
    # the old upload still listed, here in version 1's form (<path>@<sha256 prefix>)
    lock = project.lock()
    lock["version"] = 1
    lock.pop("retired", None)
    lock["files"][f"docs/faq.md@{sha12(faq_v1)}"] = {
        "id": old_id,
        "sha256": hashlib.sha256(faq_v1.encode()).hexdigest(),
        "size": len(faq_v1.encode()),
    }
    (project.root / "assistsync.lock").write_text(json.dumps(lock))
    plan = project.run("plan", "--detailed-exitcode")
    assert plan.code == 0, plan.all
    applied(project)  # records the lock without the gone upload
    assert old_id not in (project.root / "assistsync.lock").read_text()
    assert project.lock()["version"] == 2

    # the old content comes back, and an apply dies right after uploading it (before its lock
    # write): the next apply adopts that upload instead of uploading it again
    retired_lock = project.lock()
    project.write("docs/faq.md", faq_v1)
    with (project.root / "docs/faq.md").open("rb") as f:
        api.http.post(
            "/files", data={"purpose": "assistants"}, files={"file": ("faq.md", f)}
        ).raise_for_status()
    (project.root / "assistsync.lock").write_text(json.dumps(retired_lock))
    plan = project.run("plan")
    assert "will be adopted" in plan.out, plan.out
    assert "will be uploaded" not in plan.out
    applied(project)
    owned = {f["id"] for f in project.lock()["files"].values()} | set(project.lock()["retired"])
    assert {f["id"] for f in api.files()} == owned, "an upload nobody owns"
    assert project.run("plan", "--detailed-exitcode").code == 0


# --- 2. the lock cannot be written ------------------------------------------------------------


@contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A real small filesystem (tmpfs) at ``where``; skips where mounting is not allowed."""
    where.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def many_bots(n: int) -> str:
    text = "assistants:\n"
    for i in range(n):
        text += (
            f"  bot-{i:03d}:\n    model: gpt-4\n    name: Bot number {i} with a long name\n"
            f"    description: {'d' * 200}\n"
        )
    return text


def test_a_full_disk_stops_the_apply_and_says_what_is_recorded(
    tmp_path: Path, server: ServerHandle, api: Api
) -> None:
    n = 80
    with tmpfs(tmp_path / "disk", "512k") as disk:
        project = Project(disk / "proj", server)
        project.write("assistsync.yaml", "manifests: [bots.yaml]\n")
        project.write("bots.yaml", many_bots(n))
        (project.root / ".assistsync").mkdir()
        (project.root / ".assistsync" / ".gitignore").write_text("*\n")
        stat = os.statvfs(disk)
        free = stat.f_bavail * stat.f_frsize
        ballast = disk / "ballast"
        ballast.write_bytes(b"\0" * (free - 7 * 4096))  # room for a lock of a few pages

        result = project.run("apply", "--auto-approve", "--concurrency", "2")
        assert result.code == 1, result.all
        assert "No space left on device" in result.err
        made_recorded = [
            line for line in result.err.splitlines() if "recorded; free space and run apply" in line
        ]
        assert made_recorded, result.err
        made, recorded = (int(w) for w in made_recorded[0].split() if w.isdigit())
        live = api.by_key()
        assert len(live) == made
        assert 0 < made < n, "the apply did not stop at the first failed lock write"
        assert len(project.lock()["assistants"]) == recorded <= made

        ballast.unlink()  # free space, run apply again: nothing is created twice
        applied(project)
        keys = [a["metadata"]["assistsync_key"] for a in api.assistants()]
        assert sorted(keys) == [f"bot-{i:03d}" for i in range(n)]
        assert project.run("plan", "--detailed-exitcode").code == 0


@contextmanager
def read_only(path: Path, keep: Path | None = None) -> Iterator[None]:
    """Make ``path`` read-only for real: a read-only bind mount as root (permissions do not
    stop root), ``chmod`` otherwise. ``keep``, a directory inside it, stays writable."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(0o555)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    bind = subprocess.run(["mount", "--bind", str(path), str(path)], capture_output=True)
    if bind.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {bind.stderr.decode().strip()}")
    try:
        remount = subprocess.run(
            ["mount", "-o", "remount,bind,ro", str(path)], capture_output=True, check=False
        )
        if remount.returncode != 0:
            pytest.skip(f"cannot remount read-only: {remount.stderr.decode().strip()}")
        if keep is not None:  # the same directory, reached through a writable mount
            writable = path.parent / f".{path.name}-writable"
            writable.mkdir()
            subprocess.run(["mount", "--bind", str(path), str(writable)], check=True)
            subprocess.run(
                ["mount", "--bind", str(writable / keep.relative_to(path)), str(keep)], check=True
            )
        yield
    finally:
        if keep is not None:
            subprocess.run(["umount", "-l", str(keep)], check=False)
            subprocess.run(
                ["umount", "-l", str(path.parent / f".{path.name}-writable")], check=False
            )
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_read_only_project_changes_nothing_and_exits_1(project: Project, api: Api) -> None:
    with read_only(project.root):
        result = project.run("apply", "--auto-approve")
        assert result.code == 1, result.all
        assert ".assistsync" in result.err
        assert api.assistants() == []
        assert api.files() == []
        saved = project.run("plan", "--out", str(project.root / "x.plan"))
        assert saved.code == 1, saved.all
        assert "cannot save the plan" in saved.err
        sandbox = project.run("--sandbox", "plan")
        assert sandbox.code == 1, sandbox.all
        assert "state directory" in sandbox.err

    applied(project)  # .assistsync/ is writable, the lock's directory is not
    project.write("prompts/helper.md", "Changed.\n")
    before = api.by_key()
    with read_only(project.root, keep=project.root / ".assistsync"):
        result = project.run("apply", "--auto-approve")
    assert result.code == 1, result.all
    assert "Nothing was changed" in result.err
    assert api.by_key() == before


def test_plan_out_into_a_missing_directory_is_a_plain_error(project: Project) -> None:
    result = project.run("plan", "--out", "/no/such/dir/x.plan")
    assert result.code == 1, result.all
    assert "/no/such/dir: cannot save the plan: the directory does not exist" in result.err


# --- 3. a lock path through a symlink -------------------------------------------------------


def test_a_lock_path_through_a_symlink_leaving_the_project_is_refused(
    project: Project, api: Api, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (project.root / "state").symlink_to(outside, target_is_directory=True)
    project.write(
        "assistsync.yaml", "manifests:\n  - assistants/*.yaml\nlock: state/assistsync.lock\n"
    )
    for command in (["validate"], ["plan"], ["apply", "--auto-approve"]):
        result = project.run(*command)
        assert result.code == 1, result.all
        assert "outside the project" in result.err
    assert list(outside.iterdir()) == []
    assert api.assistants() == []


# --- 5. leftovers of a killed lock write --------------------------------------------------


def test_stale_temp_files_of_the_lock_are_cleaned_up_by_the_next_apply(project: Project) -> None:
    killed = project.root / ".assistsync.lock.a1b2c3d4.tmp"
    killed.write_text('{"half": ')
    mine = project.root / "notes.tmp"
    mine.write_text("not assistsync's")
    applied(project)
    assert not killed.exists()
    assert mine.exists()


# --- 6. merge conflicts -------------------------------------------------------------------


def test_a_lock_with_merge_conflicts_says_how_to_resolve_them(project: Project) -> None:
    applied(project)
    lock = (project.root / "assistsync.lock").read_text().splitlines()
    lock[1:1] = ["<<<<<<< HEAD", "=======", ">>>>>>> feature"]
    (project.root / "assistsync.lock").write_text("\n".join(lock) + "\n")
    result = project.run("plan")
    assert result.code == 1
    assert "merge conflicts" in result.err
    assert "Take either side" in result.err
    # the path is shown relative to the project, as manifest errors show theirs
    assert "Error: assistsync.lock:2: " in result.err
    assert str(project.root) not in result.err


# --- 7. saved plans and the lock's mode ------------------------------------------------------


def test_plan_out_prints_a_command_that_works_when_copied(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    (root / "assistants").mkdir(parents=True)
    (root / "assistsync.yaml").write_text("manifests: [assistants/*.yaml]\n")
    (root / "assistants" / "a.yaml").write_text("assistants:\n  x:\n    model: gpt-4\n")
    planned = run_cli("-C", "proj", "--sandbox", "plan", "--out", "my plan.json", cwd=tmp_path)
    assert planned.returncode == 0, planned.stderr
    line = planned.stdout.strip().splitlines()[-1]
    command = line.split("To carry it out: ", 1)[1]
    assert command == "assistsync -C proj --sandbox apply 'my plan.json'"
    words = shlex.split(command)
    assert words[0] == "assistsync"
    copied = run_cli(*words[1:], cwd=tmp_path)
    assert copied.returncode == 0, copied.stdout + copied.stderr
    assert "Apply complete! Resources: 1 added, 0 changed, 0 destroyed." in copied.stdout


def test_a_saved_plan_applied_against_another_endpoint_says_so(
    project: Project, tmp_path: Path
) -> None:
    saved = tmp_path / "tfplan.json"
    assert project.run("plan", "--out", str(saved)).code == 0
    with start_server(port=0) as other:
        result = project.run("apply", str(saved), env={"OPENAI_BASE_URL": other.base_url})
        assert result.code == 1
        assert f"made against {project.server.base_url}" in result.err
        assert other.base_url in result.err
        assert "live assistants or files changed" not in result.err
        other_api = Api(other.base_url)
        try:
            assert other_api.assistants() == []
        finally:
            other_api.http.close()


def test_the_lock_keeps_its_mode(project: Project) -> None:
    applied(project)
    lock = project.root / "assistsync.lock"
    assert lock.stat().st_mode & 0o777 == 0o644
    lock.chmod(0o640)
    project.write("prompts/helper.md", "Changed.\n")
    applied(project)
    assert lock.stat().st_mode & 0o777 == 0o640
