"""How much one caller may ask for, and how much work a worker takes on at once before it sheds load.

`RateLimiter`: a token bucket per caller (token name, or client address without a token), refilled at
`rate` per second up to `burst`; an empty bucket answers with the seconds until the next request fits,
which the service sends as 429 + Retry-After. Buckets are per worker process, by choice: with N workers
a caller may reach N times the rate (each keep-alive connection stays on one worker, so one client
connection sees exactly `rate`). Sharing the buckets across workers would put a cross-process lock or
store on every request's path; the limit is there to stop a runaway or abusive caller, which a per-worker
bound does (BENCHMARKS.md).

`Admission`: a worker answers on one event loop, so everything it accepted waits in that loop for its
turn; under overload the wait grows with the number of open connections (500 connections, no think
time: answers after seconds, sockets timing out). Admission bounds the API requests a worker holds at
once (in the engine or awaiting the durable prediction log); one more is answered at once with
503 + Retry-After instead of joining a queue that would answer it seconds later.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict

MAX_BUCKETS = 100_000  # distinct callers remembered per worker; the least recently seen are dropped


class RateLimiter:
    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = rate, float(burst)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)

    def retry_after(self, key: str, now: float | None = None) -> float:
        """0 if `key` may make a request now (and takes one), else the seconds until it may."""
        now = time.monotonic() if now is None else now
        tokens, at = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > MAX_BUCKETS:
            self._buckets.popitem(last=False)
        return wait


def retry_after_header(seconds: float) -> str:
    """Retry-After takes whole seconds: round up, at least 1."""
    return str(max(1, math.ceil(seconds)))


class Admission:
    """A bound on the requests in progress in one worker (one event loop: no lock needed).

    A fixed count, not one adapted to latency: an adaptive bound (AIMD on answer time) was measured and
    dropped (BENCHMARKS.md): on a CPU-starved worker the 503s themselves slow the loop, the answers the
    bound admits get slower, the bound shrinks further, and the worker ends up spending most of its CPU
    refusing requests (200s/s fell to a third of an unbounded server's)."""

    def __init__(self, limit: int):
        self.limit = limit
        self.in_flight = 0

    def enter(self) -> bool:
        """Take a slot if one is free; the caller must `leave()` once it answered."""
        if self.in_flight >= self.limit:
            return False
        self.in_flight += 1
        return True

    def leave(self) -> None:
        self.in_flight -= 1
