"""How much one caller may ask for, and how much work a worker takes on at once before it sheds load.

`RateLimiter`: a token bucket per caller (token name, or client address without a token), refilled at
`rate` per second up to `burst`; an empty bucket answers with the seconds until the next request fits,
which the service sends as 429 + Retry-After. Buckets are per worker process, by choice: with N workers
a caller may reach N times the rate (each keep-alive connection stays on one worker, so one client
connection sees exactly `rate`). Sharing the buckets across workers would put a cross-process lock or
store on every request's path; the limit is there to stop a runaway or abusive caller, which a per-worker
bound does (BENCHMARKS.md).

`Admission`: a worker answers on one event loop. Admission lets `limit` API requests be answered at once
(in the engine or awaiting the durable prediction log) and holds up to `queue_limit` more in a first-come,
first-served queue; a request that finds the queue full is answered at once with 503 + Retry-After. The
queue is what keeps an overload fair: without it (a bare in-flight bound) clients that ask again at once
after a 503 keep the loop busy refusing them, and the requests it did admit waited up to seconds behind
that churn (500 connections, 1 worker: p99 6.1 s against a mean of 0.5 s; BENCHMARKS.md).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict, deque

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
    """A bound on the API requests one worker answers at once, and a bounded FIFO queue in front of it (one
    event loop: no lock needed).

    A fixed bound, not one adapted to latency: an adaptive bound (AIMD on answer time) was measured and
    dropped (BENCHMARKS.md): on a CPU-starved worker the 503s themselves slow the loop, the answers the
    bound admits get slower, the bound shrinks further, and the worker ends up spending most of its CPU
    refusing requests (200s/s fell to a third of an unbounded server's)."""

    def __init__(self, limit: int, queue_limit: int):
        self.limit, self.queue_limit = limit, queue_limit
        self.in_flight = 0
        self._queue: deque[asyncio.Future] = deque()

    @property
    def queued(self) -> int:
        return len(self._queue)

    async def enter(self) -> bool:
        """Take a slot, waiting in line for one if need be; False at once if the line is full. The caller
        must `leave()` once it answered (a True only)."""
        if self.in_flight < self.limit and not self._queue:
            self.in_flight += 1
            return True
        if len(self._queue) >= self.queue_limit:
            return False
        turn = asyncio.get_running_loop().create_future()
        self._queue.append(turn)
        try:
            await turn  # leave() hands its slot over: in_flight already counts this request
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.leave()  # the slot arrived with the cancellation: pass it on
            elif turn in self._queue:  # leave() may already have dropped it, as it drops every cancelled turn
                self._queue.remove(turn)
            raise
        return True

    def leave(self) -> None:
        """Give the slot to the first request in line, or back."""
        while self._queue:
            turn = self._queue.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        self.in_flight -= 1
