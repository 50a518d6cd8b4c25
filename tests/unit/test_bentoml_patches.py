"""serving.bentoml_patches: an answered request leaves no timer behind, and a slow one still gets a 504."""

import asyncio
import json

from bentoml._internal.server.http.traffic import TimeoutMiddleware

import serving.bentoml_patches  # noqa: F401  (the patch under test)


async def _receive() -> dict:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _answer(scope, receive, send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def _never_answer(scope, receive, send) -> None:
    await asyncio.sleep(3600)


def _serve(app, requests: int, timeout: float) -> tuple[list[dict], int]:
    """Run `requests` requests through TimeoutMiddleware; return what was sent and the timers still armed."""

    async def main() -> tuple[list[dict], int]:
        middleware, sent = TimeoutMiddleware(app, timeout=timeout), []

        async def send(message: dict) -> None:
            sent.append(message)

        for _ in range(requests):
            await middleware({"type": "http", "path": "/recommend"}, _receive, send)
        await asyncio.sleep(0)  # let cancelled tasks unwind (a cancelled sleep drops its own timer)
        loop = asyncio.get_running_loop()
        armed = sum(1 for handle in loop._scheduled if not handle.cancelled())
        return sent, armed

    return asyncio.run(main())


def test_answered_requests_leave_no_armed_timer():
    sent, armed = _serve(_answer, requests=200, timeout=30)
    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [200] * 200
    assert armed == 0  # upstream 1.4.39 leaves 200 timers armed for 30 s


def test_a_request_past_the_timeout_still_gets_a_504():
    sent, armed = _serve(_never_answer, requests=1, timeout=0.05)
    assert sent[0]["status"] == 504
    assert "Not able to process the request" in json.loads(sent[1]["body"])["error"]
    assert armed == 0
