"""When to retry a request and how long to wait: a pure policy, no I/O.

The floor is what openai-python 1.20.0 (the last SDK release on Assistants v1) did, so that
nobody moving from a hand-written SDK script to assistsync loses resilience:

* 2 retries by default, on timeouts, connection errors, 408, 409, 429 and every 5xx;
* an ``x-should-retry: true|false`` response header overrides that choice;
* the delay is ``retry-after-ms``, else ``retry-after`` (seconds or an HTTP date), when it lies
  in (0, 60] s; otherwise ``min(0.5 * 2**n, 8)`` s shortened by up to 25 % jitter, where ``n``
  is the number of retries already made.

Where assistsync goes further, for rate limits (429):

* A 429 is the one error that proves the request was *not* carried out, so retrying it is safe
  for every call, creates included.
* Its budget is time, not a count (:attr:`RetryPolicy.rate_limit_patience`, 120 s of waiting per
  call by default). An apply runs ~16 calls at once; when the account's limit is reached they
  are refused together and each gets through only when it wins one of the server's slots, so
  the retries a call needs grow with the number of workers divided by the rate. Measured
  against the embedded server with 16 workers at 60 requests/minute, a budget of 8 retries
  still failed some operations; patience measured in seconds lets a rate-limited apply converge
  with zero failed operations.
* The hint is honoured as a floor and a growing random wait is added (see
  :meth:`RetryPolicy.delay`), so refused workers do not all return in the same instant.
* ``insufficient_quota`` 429s (a billing limit) are not retried: no wait heals them.

Whether a retry is *safe* (the request may already have been carried out) is not decided here:
that depends on the call, and ``assistsync.api.client`` decides it.
"""

from __future__ import annotations

import email.utils
from collections.abc import Mapping
from dataclasses import dataclass

RETRYABLE_STATUSES = frozenset({408, 409, 429})
"""4xx statuses worth retrying (every 5xx is too)."""


def parse_retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """The server's requested delay in seconds, or None when it gave none we can read.

    ``retry-after-ms`` (a float of milliseconds, an OpenAI extension) wins over ``retry-after``,
    which is either seconds or an HTTP date (RFC 9110), turned into seconds from ``now`` (a
    Unix time, passed in so this stays pure). ``headers`` must look names up case-insensitively
    (``httpx.Headers`` does) or hold lower-case names.
    """
    retry_ms = headers.get("retry-after-ms")
    if retry_ms is not None:
        try:
            return float(retry_ms) / 1000.0
        except ValueError:
            pass
    retry_after = headers.get("retry-after")
    if retry_after is None:
        return None
    try:
        return float(retry_after)
    except ValueError:
        pass
    parsed = email.utils.parsedate_tz(retry_after)
    if parsed is None:
        return None
    return float(email.utils.mktime_tz(parsed)) - now


@dataclass(frozen=True)
class RetryPolicy:
    """How many times and how patiently to retry; every method is a pure function.

    ``max_retries`` bounds retries of every kind except rate limiting. A 429 is bounded instead
    by ``rate_limit_patience``: the seconds one call may spend waiting on rate limits in total
    (see the module docs for why 429 is treated apart). The two budgets are separate.
    """

    max_retries: int = 2
    rate_limit_patience: float = 120.0
    initial_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0
    jitter: float = 0.25

    def status_is_retryable(
        self, status: int, headers: Mapping[str, str], code: str | None = None
    ) -> bool:
        """Whether an error response is worth retrying, before asking if it is safe to.

        ``x-should-retry`` is the server's explicit word and overrides the status. A 429 with
        ``code`` ``insufficient_quota`` is a billing limit, not a rate: waiting never heals it.
        """
        should = headers.get("x-should-retry")
        if should == "true":
            return True
        if should == "false":
            return False
        if status == 429 and code == "insufficient_quota":
            return False
        return status in RETRYABLE_STATUSES or status >= 500

    def budget_left(
        self, *, rate_limited: bool, rate_limit_waited: float, other_retries: int
    ) -> bool:
        """Whether one more retry fits.

        ``rate_limit_waited`` is the seconds this call already slept after 429s,
        ``other_retries`` the number of its retries for any other reason.
        """
        if rate_limited:
            return rate_limit_waited < self.rate_limit_patience
        return other_retries < self.max_retries

    def delay(
        self,
        retries_done: int,
        headers: Mapping[str, str] | None,
        *,
        now: float,
        random_value: float,
        rate_limited: bool = False,
    ) -> float:
        """Seconds to wait before the next attempt.

        ``retries_done`` counts retries already made for this call (0 before the first retry);
        ``headers`` are those of the failed response (None after a transport error);
        ``random_value`` in [0, 1) draws the jitter, ``now`` is the Unix time for HTTP dates.

        After a 429 with a usable hint, the hint is a floor, not the whole delay: every worker
        refused in the same instant gets the same hint, so obeying it exactly makes them all
        come back together and all but one be refused again. A random extra wait, drawn from a
        window that doubles with each retry (``initial_delay * 2**n``, at most ``max_delay``),
        spreads them out until they fit the server's rate.
        """
        backoff = min(self.initial_delay * 2.0**retries_done, self.max_delay)
        if headers is not None:
            hinted = parse_retry_after(headers, now)
            if hinted is not None and 0 < hinted <= self.max_retry_after:
                return hinted + backoff * random_value if rate_limited else hinted
        return max(0.0, backoff * (1.0 - self.jitter * random_value))
