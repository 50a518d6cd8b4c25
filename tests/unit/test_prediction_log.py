"""serving/prediction_log.py PredictionLog: answers waiting for the disk share one write and sync, none is lost,
and a failed write fails the answers of its batch instead of leaving them unlogged."""

from __future__ import annotations

import asyncio

import orjson

from serving.prediction_log import PredictionLog


def test_concurrent_answers_are_all_logged_in_fewer_syncs(tmp_path, monkeypatch):
    log = PredictionLog(tmp_path, max_bytes=1 << 20, max_seconds=3600)
    batches: list[int] = []
    append = log.spool.append
    monkeypatch.setattr(log.spool, "append", lambda data: (batches.append(data.count(b"\n")), append(data))[1])

    async def answers() -> None:
        await asyncio.gather(*(log.record(f"r{i}", b'"endpoint":"/recommend","n":%d}' % i) for i in range(200)))
        await log.record("last", b'"endpoint":"/recommend","n":-1}')  # the writer starts again when idle

    asyncio.run(answers())
    log.spool.close()
    lines = [orjson.loads(line) for path in tmp_path.glob("prediction_log/spool-*.jsonl") for line in path.open("rb")]
    assert sorted(line["request_id"] for line in lines) == sorted([f"r{i}" for i in range(200)] + ["last"])
    assert sum(batches) == 201
    assert batches == [200, 1]  # answers that wait together share one write and sync


def test_a_failed_write_fails_the_answers_of_its_batch_and_the_next_batch_is_written(tmp_path, monkeypatch):
    log = PredictionLog(tmp_path, max_bytes=1 << 20, max_seconds=3600)
    append, calls = log.spool.append, []

    def failing_once(data: bytes) -> None:
        calls.append(data)
        if len(calls) == 1:
            raise OSError("disk full")
        append(data)

    monkeypatch.setattr(log.spool, "append", failing_once)

    async def answers() -> list[BaseException | None]:
        return await asyncio.gather(*(log.record(f"r{i}", b'"n":%d}' % i) for i in range(3)), return_exceptions=True)

    failed = asyncio.run(answers())
    assert [type(outcome) for outcome in failed] == [OSError] * 3  # one batch, one failed write
    assert asyncio.run(answers()) == [None, None, None]
    log.spool.close()
    lines = [orjson.loads(line) for path in tmp_path.glob("prediction_log/spool-*.jsonl") for line in path.open("rb")]
    assert sorted(line["request_id"] for line in lines) == ["r0", "r1", "r2"]
