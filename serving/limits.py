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
once (in the engine or awaiting the durable prediction log), adapting the bound so that they are
answered within a target time; one more is answered at once with 503 + Retry-After instead of joining a
queue that would answer it seconds later.
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
    """How many requests one worker takes on at once: at most `ceiling`, fewer while answers are slow.

    The right bound is a number of requests the worker answers within `target` seconds, which depends on
    the machine and on what else runs on it (a request costs 0.2 ms of CPU on a quiet core, 2 ms on a
    crowded one). So the bound adapts, additive increase / multiplicative decrease as TCP's window does:
    an answer slower than `target` cuts it by CUT (at most once per `target`, since the requests already
    in flight were admitted under the old bound), a faster one raises it by 1/limit (1 per limit's worth
    of answers), between MIN_LIMIT (or `ceiling` if lower) and `ceiling`. One event loop per worker: no lock needed.
    """

    MIN_LIMIT = 8
    CUT = 0.75

    def __init__(self, ceiling: int, target: float):
        self.ceiling, self.target = ceiling, target
        self.limit = float(ceiling)
        self.in_flight = 0
        self._cut_at = -math.inf

    def enter(self) -> bool:
        """Take a slot if one is free; the caller must `leave()` once it answered."""
        if self.in_flight >= self.limit:
            return False
        self.in_flight += 1
        return True

    def leave(self, seconds: float, now: float) -> None:
        """Give the slot back; `seconds` is how long the request held it, `now` a monotonic clock."""
        self.in_flight -= 1
        if seconds > self.target:
            if now - self._cut_at >= self.target:
                self.limit = max(min(self.MIN_LIMIT, self.ceiling), self.limit * self.CUT)
                self._cut_at = now
        elif self.limit < self.ceiling:
            self.limit = min(self.ceiling, self.limit + 1 / self.limit)
