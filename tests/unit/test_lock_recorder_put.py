"""``LockRecorder.put_assistant``: assistant entries merged into the lock in batches give the
same lock, in the same order of changes, as one ``with_assistant`` per change."""

from __future__ import annotations

import threading

from assistsync.applier import LockRecorder
from assistsync.model import AssistantConfig, Lock, LockedAssistant

CFG = AssistantConfig(model="gpt-4")


def entry(key: str, n: int = 0) -> LockedAssistant:
    return LockedAssistant(id=f"asst_{key}_{n}", applied=CFG)


def test_put_entries_are_in_the_lock_read_and_written() -> None:
    written: list[Lock] = []
    recorder = LockRecorder(Lock(lineage="l"), written.append)
    recorder.put_assistant("a", entry("a"))
    recorder.put_assistant("b", entry("b"), counts=False)
    assert recorder.lock.assistants == {"a": entry("a"), "b": entry("b")}
    recorder.close()
    assert written[-1].assistants == {"a": entry("a"), "b": entry("b")}
    assert recorder.changes == 1  # "b" was a lock-only record
    assert recorder.recorded == 1


def test_puts_and_other_changes_keep_their_order() -> None:
    written: list[Lock] = []
    start = Lock(lineage="l").with_assistant("old", entry("old"))
    recorder = LockRecorder(start, written.append)
    recorder.put_assistant("a", entry("a", 1))
    recorder.update(lambda lock: lock.without_assistant("a"))  # after the put: a is gone
    recorder.update(lambda lock: lock.without_assistant("old"))
    recorder.put_assistant("old", entry("old", 2))  # after the removal: back, as put
    recorder.put_assistant("b", entry("b", 1))
    recorder.put_assistant("b", entry("b", 2))  # the later put wins
    expected = (
        start.with_assistant("a", entry("a", 1))
        .without_assistant("a")
        .without_assistant("old")
        .with_assistant("old", entry("old", 2))
        .with_assistant("b", entry("b", 1))
        .with_assistant("b", entry("b", 2))
    )
    assert recorder.lock.assistants == expected.assistants
    assert list(recorder.lock.assistants) == list(expected.assistants)
    recorder.close()
    assert written[-1].assistants == expected.assistants


def test_every_put_from_many_threads_is_written() -> None:
    written: list[Lock] = []
    recorder = LockRecorder(Lock(lineage="l", serial=3), written.append)
    threads = [
        threading.Thread(target=recorder.put_assistant, args=(f"k{i}", entry(f"k{i}")))
        for i in range(64)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    recorder.close()
    assert len(written[-1].assistants) == 64
    assert recorder.changes == recorder.recorded == 64
    serials = [lock.serial for lock in written]
    assert serials == sorted(set(serials))
    assert serials[0] == 4
