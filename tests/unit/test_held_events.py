"""``HeldEvents``: an apply may start while its plan is printed; its events wait for the plan
and then come out in the order they happened."""

from __future__ import annotations

import threading

from assistsync.applier import Event, HeldEvents


def ev(address: str) -> Event:
    return Event(address, "create", "start")


def test_events_wait_for_release_then_pass_in_order() -> None:
    held = HeldEvents()
    seen: list[str] = []
    for name in ("a", "b", "c"):
        held(ev(name))
    assert seen == []
    held.release(lambda e: seen.append(e.address))
    assert seen == ["a", "b", "c"]
    held(ev("d"))
    assert seen == ["a", "b", "c", "d"]


def test_events_that_come_while_the_held_ones_are_handed_on_follow_them() -> None:
    held = HeldEvents()
    seen: list[str] = []
    held(ev("a"))
    held(ev("b"))

    def sink(event: Event) -> None:
        seen.append(event.address)
        if event.address == "a":
            # another worker finishes a change while the held lines are being printed
            held(ev("late"))

    held.release(sink)
    assert seen == ["a", "b", "late"]


def test_no_event_is_lost_or_reordered_per_thread_across_the_release() -> None:
    held = HeldEvents()
    seen: list[str] = []
    mutex = threading.Lock()

    def sink(event: Event) -> None:
        with mutex:
            seen.append(event.address)

    halfway = threading.Barrier(5)

    def worker(n: int) -> None:
        for i in range(200):
            held(ev(f"{n}-{i:03d}"))
            if i == 100:
                halfway.wait()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    halfway.wait()  # every worker has events held, and goes on while they are released
    held.release(sink)
    for t in threads:
        t.join()
    assert len(seen) == 800
    for n in range(4):
        mine = [a for a in seen if a.startswith(f"{n}-")]
        assert len(mine) == 200
        assert mine == sorted(mine)
