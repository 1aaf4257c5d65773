"""The applier's lock recorder: every change is followed by a write that contains it, writes
never overlap, serials grow, and a failed write is not swallowed."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from assistsync.applier import LockRecorder
from assistsync.model import AssistantConfig, Lock, LockedAssistant

CFG = AssistantConfig(model="gpt-4")


def add(key: str) -> Callable[[Lock], Lock]:
    entry = LockedAssistant(id=f"asst_{key}", applied=CFG)
    return lambda lock: lock.model_copy(update={"assistants": {**lock.assistants, key: entry}})


def test_every_change_is_written_and_serials_grow() -> None:
    written: list[Lock] = []
    busy = threading.Lock()

    def save(lock: Lock) -> None:
        assert busy.acquire(blocking=False), "two writes at once"
        written.append(lock)
        busy.release()

    recorder = LockRecorder(Lock(lineage="l", serial=5), save)
    threads = [threading.Thread(target=recorder.update, args=(add(f"k{i}"),)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    recorder.close()
    assert len(written[-1].assistants) == 50  # the last write holds every change
    serials = [lock.serial for lock in written]
    assert serials == sorted(set(serials))
    assert serials[0] == 6
    assert recorder.lock == written[-1]


def test_nothing_to_write_writes_nothing() -> None:
    written: list[Lock] = []
    LockRecorder(Lock(lineage="l"), written.append).close()
    assert written == []


def test_a_failed_write_is_kept_flush_raises_it_and_close_tries_once_more() -> None:
    written: list[Lock] = []
    full = threading.Event()
    full.set()

    def save(lock: Lock) -> None:
        if full.is_set():
            raise OSError(28, "No space left on device")
        written.append(lock)

    recorder = LockRecorder(Lock(lineage="l"), save)
    recorder.update(add("a"))
    with pytest.raises(OSError, match="No space left"):
        recorder.flush()
    recorder.update(add("b"))  # a change in flight when the write failed is still recorded
    assert isinstance(recorder.error, OSError)
    assert (recorder.changes, recorder.recorded) == (2, 0)
    full.clear()  # space was freed: the last write succeeds and holds both
    recorder.close()
    assert sorted(written[-1].assistants) == ["a", "b"]
    assert (recorder.changes, recorder.recorded) == (2, 2)


def test_a_lock_only_update_is_not_a_change() -> None:
    written: list[Lock] = []
    recorder = LockRecorder(Lock(lineage="l"), written.append)
    recorder.update(lambda lock: lock, counts=False)
    recorder.update(add("a"))
    recorder.close()
    assert (recorder.changes, recorder.recorded) == (1, 1)
