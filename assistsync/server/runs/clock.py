"""The run engine's sense of time: the real clock in production, a manual one in tests.

Everything time-dependent in a run (timestamps, ``expires_at``, the echo model's
``echo:sleep``) reads :meth:`Clock.now` and waits with :meth:`Clock.sleep_until`, so a test
moves time with :meth:`ManualClock.advance` instead of sleeping, and the same code runs in
both. A waiter is woken early by :meth:`Clock.interrupt` (a run was cancelled, the server is
stopping) and re-checks its own condition.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    """Wall-clock seconds and interruptible waits on them.

    Calling a clock gives :meth:`now`, so a clock is also the server database's clock
    (``start_server(clock=ManualClock())`` drives every timestamp of the server).
    """

    def __call__(self) -> float:
        """The same as :meth:`now`."""
        ...

    def now(self) -> float:
        """Seconds since the Unix epoch."""
        ...

    def sleep_until(self, deadline: float, stop: Callable[[], bool]) -> bool:
        """Wait until ``now() >= deadline``; False as soon as ``stop()`` is true instead.

        ``stop`` is re-checked whenever :meth:`interrupt` is called.
        """
        ...

    def interrupt(self) -> None:
        """Wake every waiter so that it re-checks its ``stop`` condition."""
        ...


class _Waiters:
    """The condition variable both clocks share."""

    def __init__(self) -> None:
        self._cond = threading.Condition()

    def now(self) -> float:
        raise NotImplementedError

    def __call__(self) -> float:
        return self.now()

    def interrupt(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _wait(self, now: Callable[[], float], deadline: float, stop: Callable[[], bool]) -> bool:
        with self._cond:
            while True:
                if stop():
                    return False
                left = deadline - now()
                if left <= 0:
                    return True
                self._cond.wait(self._timeout(left))

    def _timeout(self, left: float) -> float | None:
        return left


class RealClock(_Waiters):
    """``time.time()`` (or another real-time function); waits really wait."""

    def __init__(self, time_fn: Callable[[], float] = time.time) -> None:
        super().__init__()
        self._time = time_fn

    def now(self) -> float:
        return self._time()

    def sleep_until(self, deadline: float, stop: Callable[[], bool]) -> bool:
        return self._wait(self.now, deadline, stop)


class ManualClock(_Waiters):
    """A clock that moves only when told to: tests advance it instead of sleeping.

    It starts at a fixed, realistic Unix time so timestamps look like the hosted API's.
    """

    def __init__(self, start: float = 1_714_000_000.0) -> None:
        super().__init__()
        self._now = start

    def now(self) -> float:
        with self._cond:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward and wake every waiter whose deadline has come."""
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        with self._cond:
            self._now += seconds
            self._cond.notify_all()

    def sleep_until(self, deadline: float, stop: Callable[[], bool]) -> bool:
        return self._wait(lambda: self._now, deadline, stop)

    def _timeout(self, left: float) -> float | None:
        # Only advance() or interrupt() can end the wait: never time out on real time.
        return None


def as_clock(time_fn: Callable[[], float]) -> Clock:
    """``time_fn`` itself when it is a :class:`Clock`, else a real clock reading it."""
    if isinstance(time_fn, RealClock | ManualClock):
        return time_fn
    return RealClock(time_fn)
