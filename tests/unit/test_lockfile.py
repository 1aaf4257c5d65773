"""The lock file: deterministic text, atomic writes with a backup, clear errors, one writer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistsync.errors import AssistsyncError, LockBusyError
from assistsync.lockfile import (
    exclusive,
    lock_text,
    read_lock,
    state_dir,
    with_lineage,
    write_lock,
)
from assistsync.model import AssistantConfig, Lock, LockedAssistant, LockedFile


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
