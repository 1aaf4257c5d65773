"""The lock file: deterministic text, atomic writes with a backup, clear errors, one writer."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from assistsync.errors import AssistsyncError, LockBusyError, LockWriteError
from assistsync.lockfile import (
    check_location,
    exclusive,
    lock_text,
    read_lock,
    state_dir,
    with_lineage,
    write_lock,
)
from assistsync.model import AssistantConfig, Lock, LockedAssistant, LockedFile, RetiredFile


def sample() -> Lock:
    cfg = AssistantConfig(model="gpt-4", name="Bot", metadata={"b": "2", "a": "1"})
    return Lock(
        lineage="l-1",
        serial=7,
        assistants={
            "zeta": LockedAssistant(id="asst_2", applied=cfg),
            "alpha": LockedAssistant(id="asst_1", applied=cfg.digest()),
        },
        files={"docs/a.md": LockedFile(id="file-1", sha256="a" * 64, size=3)},
    )


def test_text_is_deterministic_json_one_line_per_entry() -> None:
    text = lock_text(sample())
    assert json.loads(text) == sample().model_dump(mode="json")
    assert text == lock_text(sample())
    lines = text.splitlines()
    assert lines[2].startswith('    "alpha": {"applied": ')  # sorted, one line each
    assert lines[3].startswith('    "zeta": ')
    assert '"metadata": {"a": "1", "b": "2"}' in text
    assert text.endswith("}\n")


def test_round_trip_and_backup(tmp_path: Path) -> None:
    path = tmp_path / "assistsync.lock"
    assert read_lock(path) == Lock(lineage="")  # no lock yet: empty, lineage set on first write
    write_lock(path, sample())
    second = sample().model_copy(update={"serial": 8})
    write_lock(path, second)
    assert read_lock(path) == second
    assert read_lock(tmp_path / ".assistsync" / "assistsync.lock.backup") == sample()
    assert not path.with_name("assistsync.lock.backup").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_lineage_is_set_once() -> None:
    fresh = with_lineage(Lock(lineage=""))
    assert len(fresh.lineage) == 36
    assert with_lineage(fresh) is fresh


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"version": 99, "lineage": "x"}', "newer than this assistsync understands"),
        (
            '{"version": 1, "lineage": "x", "assistants": {"a": {"id": 3}}}',
            "damaged at assistants.a",
        ),
    ],
)
def test_bad_lock_gives_one_clear_message(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "assistsync.lock"
    path.write_text(text)
    with pytest.raises(AssistsyncError, match=message):
        read_lock(path)


def test_one_writer_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "assistsync.lock"
    with (
        exclusive(path),
        pytest.raises(LockBusyError, match="another apply is running"),
        exclusive(path),
    ):
        pass
    with exclusive(path):  # released again
        pass


def test_a_lock_that_cannot_be_written_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with pytest.raises(AssistsyncError, match="cannot write the lock file"):
        write_lock(blocker / "assistsync.lock", sample())


def test_state_dir_ignores_itself_in_git(tmp_path: Path) -> None:
    state = state_dir(tmp_path)
    assert state == tmp_path / ".assistsync"
    assert (state / ".gitignore").read_text().splitlines()[-1] == "*"


SHA_OLD = "0123456789ab" + "c" * 52


def test_version_1_is_read_retired_uploads_become_typed_and_at_signs_stay_in_paths(
    tmp_path: Path,
) -> None:
    path = tmp_path / "assistsync.lock"
    v1 = {
        "version": 1,
        "lineage": "l",
        "serial": 3,
        "assistants": {},
        "files": {
            "docs/faq.md": {"id": "file-new", "sha256": "d" * 64, "size": 2},
            "docs/faq.md@0123456789ab": {"id": "file-old", "sha256": SHA_OLD, "size": 1},
            "docs/team@acme.md": {"id": "file-team", "sha256": "e" * 64, "size": 4},
        },
    }
    path.write_text(json.dumps(v1))
    lock = read_lock(path)
    assert sorted(lock.files) == ["docs/faq.md", "docs/team@acme.md"]
    assert lock.retired == {"file-old": RetiredFile(path="docs/faq.md", sha256=SHA_OLD, size=1)}
    assert lock.file_ids() == {"file-new", "file-old", "file-team"}
    write_lock(path, lock)
    again = json.loads(path.read_text())
    assert again["version"] == 2
    assert again["retired"] == {"file-old": {"path": "docs/faq.md", "sha256": SHA_OLD, "size": 1}}


def test_merge_conflict_markers_say_how_to_resolve(tmp_path: Path) -> None:
    path = tmp_path / "assistsync.lock"
    text = lock_text(sample())
    lines = text.splitlines()
    lines[2:3] = [
        "<<<<<<< HEAD",
        lines[2],
        "=======",
        lines[2].replace("asst_1", "asst_9"),
        ">>>>>>> b",
    ]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(AssistsyncError, match="merge conflicts") as caught:
        read_lock(path)
    assert f"{path}:3:" in caught.value.message
    assert "Take either side" in caught.value.message
    assert "run plan again" in caught.value.message


def test_a_lock_that_is_not_utf8_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "assistsync.lock"
    path.write_bytes(b'{"version": 2, "lineage": "\xff"}')
    with pytest.raises(AssistsyncError, match="not UTF-8"):
        read_lock(path)


def test_the_lock_keeps_its_mode_and_a_new_one_is_0644(tmp_path: Path) -> None:
    path = tmp_path / "assistsync.lock"
    write_lock(path, sample())
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    path.chmod(0o600)
    write_lock(path, sample().model_copy(update={"serial": 9}))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_stale_temp_files_of_our_lock_are_removed_while_holding_it(tmp_path: Path) -> None:
    path = tmp_path / "assistsync.lock"
    ours = tmp_path / ".assistsync.lock.k2_x9abc.tmp"
    not_ours = [
        tmp_path / ".assistsync.lock.notmkstemp.tmp",
        tmp_path / ".other.lock.k2_x9abc.tmp",
        tmp_path / "notes.tmp",
    ]
    for p in [ours, *not_ours]:
        p.write_text("half a lock")
    with exclusive(path):
        assert not ours.exists()
        assert all(p.exists() for p in not_ours)


def test_a_lock_path_through_a_symlink_out_of_the_project_is_refused(tmp_path: Path) -> None:
    project = tmp_path / "project"
    outside = tmp_path / "elsewhere"
    project.mkdir()
    outside.mkdir()
    (project / "state").symlink_to(outside, target_is_directory=True)
    with pytest.raises(AssistsyncError, match="outside the project directory"):
        check_location(project, project / "state" / "assistsync.lock")
    check_location(project, project / "assistsync.lock")  # inside: fine


def test_an_unwritable_state_directory_is_a_lock_write_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(LockWriteError, match="cannot create assistsync's state directory"):
        state_dir(blocker)
