"""The cost of one logged /recommend answer in the service's own code path: from the response cache or not.

Usage: .venv/bin/python bench/logged_answers.py [--users 2000] [--items 500] [--requests 2000] [--rounds 5]

Every /recommend answer is logged durably (one JSON line appended and fsync'd to the prediction-log spool)
under its own request id, a cached answer too (serving/api.py). This times `ROUTES["/recommend"].answer`,
the function the request gate calls, in-process on real parts: a recommender fitted on synthetic data and
registered in a throw-away MLflow store (tests/serving_fixtures.py), loaded by serving/models.py, and the
real PredictionLog, lineage cache and A/B experiment (off). Sequential requests, so every log append pays
its own fsync (a loaded server shares them: group commit). Three modes, interleaved round by round:

- `hit`: bodies already answered: a response-cache lookup, the request id spliced in, the log line written;
- `miss`: the same questions padded past the cacheable size: parse, validate, rank (the engine's per-user
  cache is warm), serialize, build the log line, write it: the path every logged answer took before;
- `log`: the prediction-log append alone.

Reported per mode: median over rounds of wall and CPU (this process, fsync threads included) per request.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from optimum.settings import Settings  # noqa: E402
from serving.ab import RecommenderExperiment  # noqa: E402
from serving.api import CACHEABLE_BODY, ROUTES, api  # noqa: E402
from serving.engine import ServingState  # noqa: E402
from serving.models import load_champions  # noqa: E402
from serving.prediction_log import LineageCache, PredictionLog  # noqa: E402
from tests.serving_fixtures import build_model_store  # noqa: E402


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run(requests, answer) -> tuple[float, float]:
    wall, used = time.perf_counter(), cpu()
    for request in requests:
        await answer(request)
    return time.perf_counter() - wall, cpu() - used


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--items", type=int, default=500)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="logged-answers-"))
    store = build_model_store(
        root / "store", forecaster=False, lead_scorer=False, n_users=args.users, n_items=args.items
    )
    settings = Settings(home=root / "home", landing_dir=root / "landing", mlflow_tracking_uri=store.tracking_uri)
    champions = load_champions(store.tracking_uri)
    lineage = LineageCache(store.tracking_uri)
    lineage.prime(champions)
    log = PredictionLog(settings.landing_dir, settings.serving.spool_max_bytes, settings.serving.spool_max_seconds)
    # The parts RecommenderService holds (serving/service.py), without BentoML around them.
    api.state.service = SimpleNamespace(
        state=ServingState.build(champions),
        experiment=RecommenderExperiment(store.tracking_uri, 0.0),
        lineage=lineage,
        prediction_log=log,
    )
    api.state.settings = settings
    answer = ROUTES["/recommend"].answer
    users = store.known_users
    bodies = [orjson.dumps({"user_id": users[i % len(users)], "count": 10}) for i in range(args.requests)]
    padded = [body + b" " * (CACHEABLE_BODY + 1 - len(body)) for body in bodies]  # never cached
    entry = orjson.dumps({"endpoint": "/recommend", "caller_id": "u", "items": [["P001", 1.0]] * 10})[1:]

    async def ask(body: bytes) -> None:
        reply = await answer(body, uuid.uuid4().hex)
        if reply.status != 200 or b'"request_id"' not in reply.body:
            raise RuntimeError(f"unexpected answer {reply.status}: {reply.body[:200]!r}")

    async def only_log(_: bytes) -> None:
        await log.record(uuid.uuid4().hex, entry)

    modes = {"hit": (bodies, ask), "miss": (padded, ask), "log": (bodies, only_log)}
    asyncio.run(run(bodies, ask))  # warm: the response cache and the engine's per-user cache
    results: dict[str, list[tuple[float, float]]] = {mode: [] for mode in modes}
    for _ in range(args.rounds):
        for mode, (requests, how) in modes.items():
            results[mode].append(asyncio.run(run(requests, how)))
    log.spool.close()
    for mode, runs in results.items():
        wall = statistics.median(w for w, _ in runs) / args.requests * 1e6
        used = statistics.median(c for _, c in runs) / args.requests * 1e6
        print(f"{mode:5} {wall:8.1f} us wall, {used:7.1f} us CPU per request (median of {args.rounds} rounds)")


if __name__ == "__main__":
    main()
