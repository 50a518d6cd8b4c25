"""Every answer of /recommend, /similar_items and /forecast, logged durably with the lineage of its model.

One JSON line per answer, cached answers included, goes to the spool under landing/prediction_log/
(serving/spool.py) before the answer leaves, under the request's X-Request-ID (the id in the answer and
in the gate's JSON log line), so `optimum trace REQUEST_ID` can always follow it: request -> model version -> MLflow run
-> Dagster run -> data snapshot. Ingestion explodes each line into raw.prediction_log, one row per returned
item (orchestration/landing/predictions.py).

Lineage comes from the champion's MLflow run: training tags it with the Dagster run id and asset key that
produced it and `data_as_of`, the latest event or sale the model saw (orchestration/mlflow_resource.py).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import orjson

from ml.registry import DAGSTER_RUN_TAG, DATA_AS_OF_TAG
from serving.spool import Spool

logger = logging.getLogger(f"bentoml.{__name__}")

FOLDER = "prediction_log"


@dataclass(frozen=True)
class Lineage:
    """Where a served model came from; every field but the version may be None for a hand-logged model."""

    model_name: str
    model_version: str
    mlflow_run_id: str | None = None
    dagster_run_id: str | None = None
    data_as_of: str | None = None

    @classmethod
    def of(cls, tracking_uri: str, name: str, version: str, run_id: str | None) -> Lineage:
        """Read the training run's tags; a registry that cannot be read leaves the run fields empty."""
        tags: dict[str, str] = {}
        if run_id:
            from mlflow import MlflowClient

            try:
                tags = MlflowClient(tracking_uri=tracking_uri).get_run(run_id).data.tags
            except Exception:  # lineage is informative: never refuse to serve for it
                logger.exception("could not read the tags of MLflow run %s", run_id)
        return cls(name, version, run_id, tags.get(DAGSTER_RUN_TAG), tags.get(DATA_AS_OF_TAG))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class LineageCache:
    """Lineage per (model name, version): read from MLflow once, when the champion is loaded."""

    def __init__(self, tracking_uri: str):
        self.tracking_uri = tracking_uri
        self._known: dict[tuple[str, str], Lineage] = {}

    def prime(self, champions) -> None:
        for name in ("recommender", "forecaster"):
            champion = getattr(champions, name)
            if champion is not None:
                self.get(champion.name, champion.version, champion.run_id)

    def get(self, name: str, version: str, run_id: str | None = None) -> Lineage:
        key = (name, version)
        if key not in self._known:
            self._known[key] = Lineage.of(self.tracking_uri, name, version, run_id)
        return self._known[key]


def new_request_id() -> str:
    return uuid.uuid4().hex


def log_fields(endpoint: str, caller_id: str, variant: str, lineage: Lineage, items: list[tuple[str, Any]]) -> bytes:
    """An answer's log entry but its request id and time: a JSON object without its opening brace,
    computed once per answer (the response cache keeps it with the answer)."""
    entry = {
        "endpoint": endpoint,
        "caller_id": caller_id,
        "variant": variant,
        **lineage.as_dict(),
        "items": [[item, score] for item, score in items],
    }
    return orjson.dumps(entry)[1:]


class PredictionLog:
    """Appends one JSON line per answer to the prediction-log spool; `record` returns once it is durable.

    Group commit on the event loop: the lines of the answers waiting for the disk are written and synced in
    one batch by one worker thread, and the batch that arrives meanwhile goes next. One thread hop and one
    fdatasync per batch instead of per answer: under load, most answers share their sync with dozens of
    others (BENCHMARKS.md, serving throughput)."""

    def __init__(self, landing_dir: Path, max_bytes: int, max_seconds: float):
        self.spool = Spool(Path(landing_dir) / FOLDER, "jsonl", b"", max_bytes, max_seconds)
        self._lines: list[bytes] = []
        self._waiting: list[asyncio.Future] = []
        self._writer: asyncio.Task | None = None

    async def record(self, request_id: str, fields: bytes) -> None:
        """Log one answer under `request_id` (the X-Request-ID: letters, digits and ._:- only, so JSON-safe)."""
        requested_at = datetime.now(UTC).replace(tzinfo=None).isoformat()
        line = b'{"request_id":"%s","requested_at":"%s",%s\n' % (request_id.encode(), requested_at.encode(), fields)
        loop = asyncio.get_running_loop()
        durable = loop.create_future()
        self._lines.append(line)
        self._waiting.append(durable)
        if self._writer is None:
            self._writer = loop.create_task(self._write_batches())
        await durable

    async def _write_batches(self) -> None:
        """Write what is waiting, then what arrived meanwhile, until nothing is; each batch's callers learn
        its outcome (an error reaches every answer of that batch, which then fails instead of going unlogged)."""
        try:
            while self._lines:
                data, waiting = b"".join(self._lines), self._waiting
                self._lines, self._waiting = [], []
                try:
                    await anyio.to_thread.run_sync(self.spool.append, data)
                except BaseException as error:
                    for durable in waiting:
                        if not durable.done():
                            durable.set_exception(error)
                    if not isinstance(error, Exception):
                        raise
                else:
                    for durable in waiting:
                        if not durable.done():
                            durable.set_result(None)
        finally:
            self._writer = None
