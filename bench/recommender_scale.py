"""Recommender training at scale: 10M interactions over 50k items, time and peak memory of every candidate.

A synthetic clickstream (Zipf item popularity, taste segments) is scored as production scores it
(scores_from_events, the served recency family) into one InteractionMatrix, saved once; then each candidate
fits in its own process, so each peak resident memory (ru_maxrss) is that candidate's alone, matrix load
included. EASE fits its capped catalogue (max_items); ItemKNN builds its neighbours a block at a time.

Usage:
  .venv/bin/python bench/recommender_scale.py [--events 10000000 --items 50000 --users 200000 --threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from child import json_row  # bench/ is on sys.path when a script here runs
from scipy import sparse

from ml.recommend import (
    EASERecommender,
    IALSRecommender,
    InteractionMatrix,
    ItemKNNRecommender,
    PopularityRecommender,
    Recency,
    SVDRecommender,
    scores_from_events,
)

CANDIDATES = {
    "popularity": lambda threads: PopularityRecommender(),
    "itemknn": lambda threads: ItemKNNRecommender(),
    "svd": lambda threads: SVDRecommender(n_components=32),
    "ials": lambda threads: IALSRecommender(factors=64, regularization=1.0, alpha=10.0, num_threads=threads),
    "ease": lambda threads: EASERecommender(l2=500.0),
}


def synthetic_events(n_events: int, n_items: int, n_users: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    segments = 50
    popularity = 1.0 / (1.0 + rng.permutation(n_items)) ** 0.9
    item_segment = np.arange(n_items) % segments
    user = rng.integers(n_users, size=n_events)
    user_segment = rng.integers(segments, size=n_users)
    item = rng.choice(n_items, size=n_events, p=popularity / popularity.sum())
    tasteful = rng.random(n_events) < 0.6
    offset = (user_segment[user] - item_segment[item]) % segments  # move the item into the user's segment
    item = np.where(tasteful, (item + offset) % n_items, item)
    seconds = rng.integers(0, 3 * 365 * 86400, size=n_events)
    kinds = np.array(["view", "cart", "purchase"])
    return pd.DataFrame(
        {
            "user_id": pd.Categorical.from_codes(user, [f"U{u}" for u in range(n_users)]),
            "product_id": pd.Categorical.from_codes(item, [f"P{i}" for i in range(n_items)]),
            "interaction_type": kinds[rng.choice(3, size=n_events, p=[0.8, 0.15, 0.05])],
            "event_at": pd.Timestamp("2018-01-01") + pd.to_timedelta(seconds, unit="s"),
        }
    )


def fit_one(matrix_path: Path, name: str, threads: int) -> None:
    """Child process: load the matrix, fit one candidate, print seconds and peak RSS as JSON."""
    loaded = np.load(matrix_path, allow_pickle=True)
    matrix = sparse.csr_matrix((loaded["data"], loaded["indices"], loaded["indptr"]), shape=tuple(loaded["shape"]))
    users, items = loaded["user_ids"], loaded["item_ids"]
    data = InteractionMatrix(
        matrix, users, items, {u: i for i, u in enumerate(users)}, {p: i for i, p in enumerate(items)}
    )
    started = time.perf_counter()
    model = CANDIDATES[name](threads).fit_matrix(data)
    fitted = time.perf_counter() - started
    started = time.perf_counter()
    model.recommend(users[:1024], k=10)
    print(
        json.dumps(
            {
                "fit_s": fitted,
                "recommend_1024_users_s": time.perf_counter() - started,
                "cpu_s": sum(resource.getrusage(resource.RUSAGE_SELF)[:2]),
                "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", nargs="*", default=list(CANDIDATES))
    parser.add_argument("--fit-one", nargs=2, metavar=("MATRIX", "NAME"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fit_one:
        fit_one(Path(args.fit_one[0]), args.fit_one[1], args.threads)
        return

    started = time.perf_counter()
    events = synthetic_events(args.events, args.items, args.users)
    generated = time.perf_counter() - started
    started = time.perf_counter()
    data = InteractionMatrix.from_scores(scores_from_events(events, Recency(180.0, "user_end")))
    scored = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(
        f"{len(events):,} events -> {data.matrix.nnz:,} pairs, {data.n_users:,} users x {data.n_items:,} items; "
        f"generate {generated:.0f} s, scores + matrix {scored:.0f} s, peak {peak:.1f} GB"
    )
    del events
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "matrix.npz"
        m = data.matrix
        np.savez(
            path,
            data=m.data,
            indices=m.indices,
            indptr=m.indptr,
            shape=m.shape,
            user_ids=data.user_ids,
            item_ids=data.item_ids,
        )
        print("| candidate | fit (wall) | CPU, whole child | recommend 1,024 users | peak RSS | load average after |")
        print("|---|---|---|---|---|---|")
        for name in args.only:
            command = [sys.executable, __file__, "--threads", str(args.threads), "--fit-one", str(path), name]
            row, error = json_row(command)
            if row is None:
                print(f"| {name} | failed: {error} | | | | |", flush=True)
                continue
            print(
                f"| {name} | {row['fit_s']:.0f} s | {row['cpu_s']:.0f} s | {row['recommend_1024_users_s']:.1f} s | "
                f"{row['peak_rss_gb']:.1f} GB | {os.getloadavg()[0]:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
