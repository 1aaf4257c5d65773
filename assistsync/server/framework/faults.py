"""Fault injection and request statistics: the knobs that make the server misbehave on purpose.

A client that promises retries, rate-limit compliance and "no duplicates after a lost response"
can only prove it against a server that really produces those failures. :class:`Faults` is the
live configuration (tests mutate its attributes while the server runs); :class:`FaultInjector`
turns it into per-request decisions; :class:`Stats` counts what arrived.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Faults:
    """What the server should get wrong, all off by default.

    Rates are fractions in [0, 1] drawn from a ``random.Random(seed)`` created when the server
    starts (so a fixed ``seed`` gives a reproducible fault sequence for a fixed request
    sequence). The ``*_next`` counters are deterministic one-shot knobs for tests: each affected
    request decrements its counter under a lock, so concurrent requests never both take the last
    one. Plain attributes may be changed while the server runs.
    """

    latency_ms: float = 0
    """Sleep this long before handling every request."""
    rate_limit_rpm: int = 0
    """Requests per minute allowed (0 = unlimited); excess requests get 429 with retry hints.
    Enforced smoothly at rpm/60 per second, as the hosted API quantised its limits."""
    error_rate: float = 0
    """Fraction of requests answered 500 or 503 before anything is done."""
    lost_response_rate: float = 0
    """Fraction of successful mutations (POST/DELETE) whose change is committed and whose
    connection is then closed without a single response byte."""
    seed: int | None = None
    """Seed of the random draws behind the rates (None: unpredictable)."""
    fail_next: int = 0
    """The next N requests get 500 before anything is done."""
    lose_next: int = 0
    """The next N successful mutations are committed and then dropped without a response."""
    rate_limit_next: int = 0
    """The next N requests get 429 with ``retry-after`` hints of ``rate_limit_next_retry_ms``."""
    rate_limit_next_retry_ms: int = 20
    """The ``retry-after-ms`` hint sent with ``rate_limit_next`` 429s (short, so tests stay fast;
    ``retry-after`` carries its integer ceiling in seconds)."""
    _lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )

    def take(self, counter: str) -> bool:
        """Consume one unit of the one-shot counter ``counter``; False when it is at zero."""
        with self._lock:
            left: int = getattr(self, counter)
            if left <= 0:
                return False
            setattr(self, counter, left - 1)
            return True


class Stats:
    """Requests received, in total and per route (``"GET /v1/assistants/{assistant_id}"``).

    Every request is counted when it arrives, before any fault is applied, so tests can see
    that a rate-limited or dropped request did reach the server. Unknown paths count under
    ``"<METHOD> (no route)"`` so the table stays bounded.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        """Requests received since start (or the last :meth:`reset`)."""
        self._by_route: dict[str, int] = {}

    @property
    def by_route(self) -> dict[str, int]:
        """A snapshot of the per-route counts (safe to iterate while requests arrive)."""
        with self._lock:
            return dict(self._by_route)

    def count(self, route: str) -> None:
        """Record one request on ``route``."""
        with self._lock:
            self.requests += 1
            self._by_route[route] = self._by_route.get(route, 0) + 1

    def reset(self) -> None:
        """Forget everything counted so far."""
        with self._lock:
            self.requests = 0
            self._by_route = {}


@dataclass(frozen=True)
class RateVerdict:
    """The rate limiter's answer for one request and the headers describing the window."""

    allowed: bool
    headers: dict[str, str]
    retry_after_s: float = 0.0


def format_duration(seconds: float) -> str:
    """Render a reset time the way the hosted API did: ``"1.2s"``, ``"6m0s"``, ``"12ms"``."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    if seconds < 60:
        return f"{seconds:.3g}s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{rest:.0f}s"


class RateLimiter:
    """A token bucket refilled at rpm/60 tokens per second holding at most max(1, rpm/60).

    The small capacity is deliberate: a full minute's budget as one burst would let a client
    fire ``rpm`` requests at once and then stall, whereas this bucket admits rpm/60 requests
    per second smoothly, so a client that sleeps for ``retry-after-ms`` converges on exactly
    the configured rate (the hosted API enforced per-minute limits at this granularity too).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._rpm = 0
        self._tokens = 0.0
        self._stamp = clock()

    def check(self, rpm: int) -> RateVerdict:
        """Admit or refuse one request under a limit of ``rpm`` requests per minute."""
        with self._lock:
            now = self._clock()
            rate = rpm / 60.0
            capacity = max(1.0, rate)
            if rpm != self._rpm:
                # A new limit starts with a full bucket rather than inheriting the old one.
                self._rpm, self._tokens, self._stamp = rpm, capacity, now
            self._tokens = min(capacity, self._tokens + (now - self._stamp) * rate)
            self._stamp = now
            allowed = self._tokens >= 1.0
            if allowed:
                self._tokens -= 1.0
            wait = 0.0 if allowed else (1.0 - self._tokens) / rate
            headers = {
                "x-ratelimit-limit-requests": str(rpm),
                "x-ratelimit-remaining-requests": str(math.floor(self._tokens)),
                "x-ratelimit-reset-requests": format_duration((capacity - self._tokens) / rate),
            }
            return RateVerdict(allowed, headers, wait)


def retry_headers(wait_s: float) -> dict[str, str]:
    """``retry-after`` (integer seconds, rounded up, at least 1) and ``retry-after-ms``."""
    wait_ms = max(1, math.ceil(wait_s * 1000))
    return {"retry-after": str(max(1, math.ceil(wait_ms / 1000))), "retry-after-ms": str(wait_ms)}


class FaultInjector:
    """Per-request fault decisions drawn from a live :class:`Faults`."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self.limiter = RateLimiter()
        self._rng = random.Random(faults.seed)
        self._rng_lock = threading.Lock()

    def _roll(self, rate: float) -> bool:
        if rate <= 0:
            return False
        with self._rng_lock:
            return self._rng.random() < rate

    def pick_error_status(self) -> int | None:
        """500 (``fail_next``) or 500/503 at ``error_rate``; None when this request is spared."""
        if self.faults.take("fail_next"):
            return 500
        if self._roll(self.faults.error_rate):
            with self._rng_lock:
                return self._rng.choice((500, 503))
        return None

    def lose_this_response(self) -> bool:
        """Whether a committed mutation's response should be dropped."""
        return self.faults.take("lose_next") or self._roll(self.faults.lost_response_rate)
