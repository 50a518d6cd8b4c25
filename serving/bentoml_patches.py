"""A fix for BentoML 1.4.39's TimeoutMiddleware, applied at import.

Upstream starts a `loop.call_later(timeout, ...)` timer for every request and never cancels it, so at a few
thousand requests a second with the 30 s timeout about 90k timers (and their futures and closures) stay
alive; the garbage collector's full passes over them stop the event loop for 50-275 ms and set the p99.
Cancelling the timer once the request is answered took p99 at 50 connections from 171 ms to 20 ms
(bench/serving_throughput.py, BENCHMARKS.md). Remove this module when BentoML cancels its own timer.
"""

from __future__ import annotations

import asyncio

from bentoml._internal.server.http import traffic
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
