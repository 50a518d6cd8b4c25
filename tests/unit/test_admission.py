"""serving/limits.py Admission in the request gate: past `max_in_flight` requests in progress a request waits in
line, first come first served; past `max_queued` waiting, 503 at once."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from optimum.settings import ServingSettings, Settings
from serving.api import ApiRoute, Reply
from serving.middleware import ApiGateway


async def not_found(scope, receive, send) -> None:
    await send({"type": "http.response.start", "status": 404, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def test_past_the_bound_requests_wait_in_line_and_past_the_line_get_503(tmp_path):
    release = asyncio.Event()
    entered: list[bytes] = []

    async def held(body: bytes, request_id: str) -> Reply:  # an answer that takes as long as the test says
        entered.append(body)
        await release.wait()
        return Reply.json(200, {"ok": True})

    settings = Settings(home=tmp_path, serving=ServingSettings(max_in_flight=2, max_queued=1))
    gate = ApiGateway(not_found, {"/held": ApiRoute("/held", "predict", held)}, settings)
    headers = {"Content-Type": "application/json"}

    async def scenario() -> tuple[list[httpx.Response], httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=gate)
        async with httpx.AsyncClient(transport=transport, base_url="http://gate") as client:

            def ask(n: int) -> asyncio.Task:
                return asyncio.create_task(client.post("/held", content=b'{"n": %d}' % n, headers=headers))

            async def until(condition) -> None:
                while not condition():
                    await asyncio.sleep(0.001)

            admitted = [ask(0), ask(1)]
            await asyncio.wait_for(until(lambda: len(entered) == 2), 10)
            waiting = ask(2)
            await asyncio.wait_for(until(lambda: gate.admission.queued == 1), 10)
            # Two answering, one in line: the next is refused at once (a queue without bound would hold it
            # until `release`: a timeout here).
            refused = await asyncio.wait_for(client.post("/held", content=b"{}", headers=headers), 10)
            assert entered == [b'{"n": 0}', b'{"n": 1}'], "the one in line has not started"
            release.set()
            answered = await asyncio.gather(*admitted, waiting)
            again = await client.post("/held", content=b"{}", headers=headers)  # slots given back
            return answered, refused, again

    answered, refused, again = asyncio.run(scenario())
    assert [response.status_code for response in answered] == [200, 200, 200]
    assert entered[:3] == [b'{"n": 0}', b'{"n": 1}', b'{"n": 2}']
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    assert "2 requests in progress and 1 waiting" in refused.json()["error"]
    assert again.status_code == 200 and (gate.admission.in_flight, gate.admission.queued) == (0, 0)


def test_the_line_is_first_come_first_served_and_a_cancelled_wait_leaves_it():
    from serving.limits import Admission

    admission = Admission(limit=1, queue_limit=10)
    order: list[int] = []

    async def request(n: int, hold: asyncio.Event) -> None:
        assert await admission.enter()
        order.append(n)
        await hold.wait()
        admission.leave()

    async def scenario() -> None:
        hold = asyncio.Event()
        first = asyncio.create_task(request(0, hold))
        await asyncio.sleep(0)
        line = [asyncio.create_task(request(n, hold)) for n in range(1, 6)]
        await asyncio.sleep(0)
        line[1].cancel()  # a client gone while in line
        await asyncio.sleep(0)
        assert admission.queued == 4
        hold.set()
        await asyncio.gather(first, *line, return_exceptions=True)

    asyncio.run(scenario())
    assert order == [0, 1, 3, 4, 5]
    assert (admission.in_flight, admission.queued) == (0, 0)


def test_a_failing_answer_gives_its_slot_back(tmp_path):
    async def broken(body: bytes, request_id: str) -> Reply:
        raise RuntimeError("the engine failed")

    settings = Settings(home=tmp_path, serving=ServingSettings(max_in_flight=1))
    gate = ApiGateway(not_found, {"/broken": ApiRoute("/broken", "predict", broken)}, settings)

    async def twice() -> None:
        transport = httpx.ASGITransport(app=gate, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://gate") as client:
            for _ in range(2):
                response = await client.post("/broken", content=b"{}", headers={"Content-Type": "application/json"})
                assert response.status_code == 500  # not 503: the first failure did not keep the only slot

    asyncio.run(twice())
    assert gate.admission.in_flight == 0


def test_a_wait_cancelled_just_before_its_slot_frees_gives_nothing_away():
    from serving.limits import Admission

    admission = Admission(limit=1, queue_limit=10)

    async def scenario() -> None:
        assert await admission.enter()
        waiter = asyncio.create_task(admission.enter())
        await asyncio.sleep(0)
        waiter.cancel()
        admission.leave()  # before the waiter has seen its cancellation: its turn is dropped, the slot freed
        with pytest.raises(asyncio.CancelledError):
            await waiter

    asyncio.run(scenario())
    assert (admission.in_flight, admission.queued) == (0, 0)
