"""Fixes for BentoML 1.4.39, applied at import: a per-request timer leak and unbounded metric labels.

Upstream starts a `loop.call_later(timeout, ...)` timer for every request and never cancels it, so at a few
thousand requests a second with the 30 s timeout about 90k timers (and their futures and closures) stay
alive; the garbage collector's full passes over them stop the event loop for 50-275 ms and set the p99.
Cancelling the timer once the request is answered took p99 at 50 connections from 171 ms to 20 ms
(bench/serving_throughput.py, BENCHMARKS.md). Remove this module when BentoML cancels its own timer.
"""

from __future__ import annotations

import asyncio

from bentoml._internal.server.http import instruments, traffic
from starlette.responses import JSONResponse


async def _call_with_cancelled_timer(self, scope, receive, send) -> None:
    """Upstream `TimeoutMiddleware.__call__`, plus `timer.cancel()` when the request completes."""
    if scope["type"] not in ("http", "websocket"):
        return await self.app(scope, receive, send)
    loop = asyncio.get_running_loop()
    waiter = loop.create_future()
    timer = loop.call_later(self.timeout, self._set_timer_out, waiter)

    async def _send(message) -> None:
        if not waiter.done():
            waiter.set_result(None)
        await send(message)

    future = asyncio.ensure_future(self.app(scope, receive, _send), loop=loop)
    try:
        await waiter
    except TimeoutError:
        if future.cancel():
            message = {"error": f"Not able to process the request in {self.timeout} seconds"}
            await JSONResponse(message, status_code=504)(scope, receive, send)
    else:
        await future
    finally:
        timer.cancel()


traffic.TimeoutMiddleware.__call__ = _call_with_cancelled_timer


# --- bounded /metrics label cardinality -------------------------------------------------------------------
# BentoML labels its request metrics with the raw path, so every random 404 adds label sets to /metrics
# forever. Paths outside `known` are counted under one label; the real path rides along in the scope
# (serving.middleware.METRICS_PATH_KEY) and is put back before routing.

OTHER_PATH = "/{other}"
_metrics_call = instruments.RunnerTrafficMetricsMiddleware.__call__


def collapse_unknown_metric_paths(known: frozenset[str]) -> None:
    from serving.middleware import METRICS_PATH_KEY

    async def call(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"] not in known:
            scope = {**scope, "path": OTHER_PATH, METRICS_PATH_KEY: scope["path"]}
        await _metrics_call(self, scope, receive, send)

    instruments.RunnerTrafficMetricsMiddleware.__call__ = call
