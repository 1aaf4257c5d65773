"""The floors: the fewest requests and the least time the API allows for a piece of work.

Plan (read the live state): GET /assistants pages of 100 follow each other's cursors, so they are
sequential; GET /files (one request, no cursor in v1) can overlap them. Requests:
``max(1, ceil(N/100)) + 1``; time: ``max(1, ceil(N/100)) × latency``.

Apply = the plan's reads, then one request per needed change. Changes fall into phases that
depend on each other: uploads before the assistants that attach them, assistant changes before
the file deletes that would otherwise pull a file from under them. Within a phase, ``p`` calls
run at once (the CLI's default parallelism, 8), so the time floor is
``reads + Σ ceil(phase / p) × latency``. Under a rate limit of ``rpm`` the floor is also at least
``(requests − burst) / (rpm / 60)``, where ``burst = max(1, rpm / 60)`` is what the server's token
bucket holds when it starts (those requests pass at once); the larger of the two wins.

Transfer time (bytes / bandwidth) and client start-up are not in any floor: on loopback they
are what the measured wall time adds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Floor:
    """Requests and seconds no client can go below."""

    requests: int
    seconds: float


def plan_floor(live_assistants: int, latency_s: float) -> Floor:
    """Reading the state of ``live_assistants`` assistants and every file."""
    pages = max(1, math.ceil(live_assistants / 100))
    return Floor(requests=pages + 1, seconds=pages * latency_s)


def apply_floor(
    live_assistants: int,
    phases: list[int],
    *,
    latency_s: float,
    parallelism: int,
    rate_limit_rpm: int = 0,
) -> Floor:
    """The plan's reads, then ``phases`` (counts of dependent batches of calls) in order."""
    reads = plan_floor(live_assistants, latency_s)
    changes = sum(phases)
    requests = reads.requests + changes
    seconds = reads.seconds + sum(math.ceil(n / parallelism) * latency_s for n in phases if n)
    if rate_limit_rpm > 0:
        rate = rate_limit_rpm / 60
        seconds = max(seconds, max(0, requests - max(1.0, rate)) / rate)
    return Floor(requests=requests, seconds=seconds)
