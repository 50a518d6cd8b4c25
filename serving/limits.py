"""How much one caller may ask for, and how far behind a worker may fall before it sheds load.

`RateLimiter`: a token bucket per caller (token name, or client address without a token), refilled at
`rate` per second up to `burst`; an empty bucket answers with the seconds until the next request fits,
which the service sends as 429 + Retry-After. Buckets are per worker process (workers do not share
memory), so with N workers a caller may reach N times the rate in the worst case.

`LagMonitor`: a worker answers on one event loop, so requests it cannot keep up with wait as tasks in
that loop. The monitor wakes every INTERVAL and measures how late it woke; while the loop is more than
`max_lag` behind, new API requests are answered at once with 503 + Retry-After instead of joining a queue
that would answer them seconds later.
"""

from __future__ import annotations

import asyncio
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


class LagMonitor:
    INTERVAL = 0.025

    def __init__(self, max_lag: float):
        self.max_lag = max_lag
        self.lag = 0.0
        self._task: asyncio.Task | None = None

    @property
    def overloaded(self) -> bool:
        return self.lag > self.max_lag

    def ensure_running(self) -> None:
        """Start the monitor on the running loop (the first request's); a no-op once it runs."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(self.INTERVAL)
            self.lag = max(0.0, loop.time() - started - self.INTERVAL)
