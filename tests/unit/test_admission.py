"""serving/limits.py Admission in the request gate: past `max_in_flight` requests in progress, 503 at once."""

from __future__ import annotations

import asyncio

import httpx

from optimum.settings import ServingSettings, Settings
from serving.api import ApiRoute, Reply
from serving.middleware import ApiGateway


async def not_found(scope, receive, send) -> None:
    await send({"type": "http.response.start", "status": 404, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def test_requests_past_the_bound_get_503_with_retry_after_and_slots_come_back(tmp_path):
    release = asyncio.Event()
    entered: list[bytes] = []

    async def held(body: bytes, request_id: str) -> Reply:  # an answer that takes as long as the test says
        entered.append(body)
        await release.wait()
        return Reply.json(200, {"ok": True})

    settings = Settings(home=tmp_path, serving=ServingSettings(max_in_flight=2))
    gate = ApiGateway(not_found, {"/held": ApiRoute("/held", "predict", held)}, settings)
    headers = {"Content-Type": "application/json"}

    async def scenario() -> tuple[list[httpx.Response], httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=gate)
        async with httpx.AsyncClient(transport=transport, base_url="http://gate") as client:
            first = [asyncio.create_task(client.post("/held", content=b"{}", headers=headers)) for _ in range(2)]

            async def both_entered() -> None:
                while len(entered) < 2 and not any(task.done() for task in first):
                    await asyncio.sleep(0.001)

            await asyncio.wait_for(both_entered(), 10)
            assert len(entered) == 2, [task.result() for task in first if task.done()]
            # Both slots taken: answered at once (without the bound it would wait for `release`: a timeout).
            refused = await asyncio.wait_for(client.post("/held", content=b"{}", headers=headers), 10)
            release.set()
            answered = await asyncio.gather(*first)
            again = await client.post("/held", content=b"{}", headers=headers)  # slots given back
            return answered, refused, again

    answered, refused, again = asyncio.run(scenario())
    assert [response.status_code for response in answered] == [200, 200]
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    assert "overloaded" in refused.json()["error"] and len(entered) == 3
    assert again.status_code == 200 and gate.admission.in_flight == 0


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
