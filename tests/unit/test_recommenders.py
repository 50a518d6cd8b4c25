"""Recommenders and their offline evaluation, on synthetic clickstreams with a planted answer.

Users belong to taste segments and mostly touch items of their own segment; on top, a global Zipf
popularity makes some items popular everywhere. A model that learns taste must beat popularity, and an
item's nearest neighbours must come from its own segment.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.recommend import (
    ALL_TIME,
    BASELINES,
    RECENCY_GRID,
    BlendRecommender,
    EASERecommender,
    IALSRecommender,
    InteractionMatrix,
    ItemKNNRecommender,
    NestedSplit,
    PopularityRecommender,
    Recency,
    Recommender,
    Scoring,
    SVDRecommender,
    UnknownItemError,
    compare_candidates,
    evaluate,
    scores_from_events,
    select_recommender,
    temporal_split,
)

MIN_DECAY = Scoring.from_settings().min_decay  # the settings' floor (dbt_project.yml), as the mart uses

MIN_DECAY = Scoring.from_settings().min_decay  # the settings' floor (dbt_project.yml), as the mart uses

INTERACTION_TYPES = np.array(["view", "like", "cart", "purchase"])
N_SEGMENTS = 6


def synthetic_events(
    n_users: int, n_items: int, events_per_user: int, n_segments: int, taste: float = 0.8, seed: int = 0
) -> tuple[pd.DataFrame, dict[str, int], dict[str, int]]:
    """Events in 1998 where a `taste` share of each user's events fall in the user's segment.

    Returns the events and the planted segment of every user and item (by id). Items of a segment are
    every n_segments-th item; popularity is a random Zipf ranking shared by all segments.
    """
    rng = np.random.default_rng(seed)
    item_segment = np.arange(n_items) % n_segments
    popularity = 1.0 / (1.0 + rng.permutation(n_items)) ** 0.8
    user_segment = rng.integers(n_segments, size=n_users)
    user = np.repeat(np.arange(n_users), np.maximum(rng.poisson(events_per_user, size=n_users), 1))
    item = rng.choice(n_items, size=len(user), p=popularity / popularity.sum())
    tasteful = rng.random(len(user)) < taste
    for segment in range(n_segments):
        members = np.flatnonzero(item_segment == segment)
        pick = tasteful & (user_segment[user] == segment)
        item[pick] = rng.choice(members, size=pick.sum(), p=popularity[members] / popularity[members].sum())
    seconds = rng.integers(0, 365 * 86400, size=len(user))
    events = pd.DataFrame(
        {
            "event_id": [f"e{i}" for i in range(len(user))],
            "user_id": [f"u{u}" for u in user],
            "product_id": [f"p{i}" for i in item],
            "interaction_type": rng.choice(INTERACTION_TYPES, size=len(user), p=[0.6, 0.15, 0.15, 0.1]),
            "event_at": pd.Timestamp("1998-01-01") + pd.to_timedelta(seconds, unit="s"),
        }
    )
    users = {f"u{u}": int(s) for u, s in enumerate(user_segment)}
    items = {f"p{i}": int(s) for i, s in enumerate(item_segment)}
    return events, users, items


def taste_models() -> dict[str, Recommender]:
    """Every taste model, factor models sized near the planted rank (6 segments) as one would tune them."""
    return {
        "itemknn": ItemKNNRecommender(n_neighbors=30),
        "svd": SVDRecommender(n_components=8),
        "ials": IALSRecommender(factors=8, regularization=1.0, alpha=10.0),
        "ease": EASERecommender(),
        "blend": BlendRecommender([SVDRecommender(n_components=8), IALSRecommender(factors=8)], [0.7, 0.3]),
        "blend_rank": BlendRecommender([ItemKNNRecommender(), EASERecommender()], normalization="rank"),
    }


@pytest.fixture(scope="module")
def planted():
    events, user_segment, item_segment = synthetic_events(400, 120, 40, N_SEGMENTS, taste=0.85, seed=3)
    train_events, test_events = temporal_split(events)
    train_scores = scores_from_events(train_events)
    return {
        "events": events,
        "user_segment": user_segment,
        "item_segment": item_segment,
        "test_events": test_events,
        "train_scores": train_scores,
        "train": InteractionMatrix.from_scores(train_scores),
    }


@pytest.fixture(scope="module")
def fitted(planted) -> dict[str, Recommender]:
    models = {"popularity": PopularityRecommender(), **taste_models()}
    return {key: model.fit(planted["train_scores"]) for key, model in models.items()}


class OracleRecommender(Recommender):
    """Ranks the held-out items first (sign=+1) or last (sign=-1), the rest by `noise` (0: all tied).

    `users` = "even" / "odd" makes it an oracle for half the users and clueless (all 0) for the others.
    """

    name = "oracle"

    def __init__(self, test_events: pd.DataFrame, sign: float = 1.0, users: str = "all", noise: float = 0.0):
        self.test_events = test_events
        self.sign = sign
        self.users = users
        self.noise = noise

    def _fit(self, data: InteractionMatrix) -> None:
        truth = np.zeros(data.matrix.shape)
        for user, item in zip(self.test_events["user_id"], self.test_events["product_id"], strict=True):
            if user in data.user_index and item in data.item_index:
                truth[data.user_index[user], data.item_index[item]] = self.sign
        if self.users != "all":
            truth[np.arange(data.n_users) % 2 == (self.users == "even")] = 0.0
        self._truth = truth + np.random.default_rng(0).uniform(0.0, self.noise, size=truth.shape)

    def score_all(self, user_indices: np.ndarray) -> np.ndarray:
        return self._truth[user_indices]

    def _item_similarities(self, item: int) -> np.ndarray:
        return np.zeros(self._truth.shape[1])


@pytest.mark.parametrize("key", ["itemknn", "svd", "ials", "ease", "blend", "blend_rank"])
def test_taste_models_beat_popularity_on_planted_segments(planted, key):
    popularity = evaluate(PopularityRecommender(), planted["train"], planted["test_events"])
    model = evaluate(taste_models()[key], planted["train"], planted["test_events"])
    assert model["n_users_evaluated"] == popularity["n_users_evaluated"] > 300
    assert model["ndcg@10"] > 1.5 * popularity["ndcg@10"]
    assert model["recall@20"] > popularity["recall@20"]


@pytest.mark.parametrize("key", ["popularity", "itemknn", "svd", "ials", "ease", "blend", "blend_rank"])
def test_recommend_excludes_seen_items_only_when_asked(planted, fitted, key):
    model, scores = fitted[key], planted["train_scores"]
    users = list(planted["train"].user_ids)
    seen = set(zip(scores["user_id"], scores["product_id"], strict=True))

    recs = model.recommend(users, k=10)
    assert not seen & set(zip(recs["user_id"], recs["product_id"], strict=True))
    assert list(recs.columns) == ["user_id", "product_id", "rank", "score", "cold_start"]
    assert recs["user_id"].nunique() == len(users)
    assert (recs["rank"].to_numpy() == np.tile(np.arange(1, 11), len(users))).all()
    assert (recs.groupby("user_id")["score"].diff().dropna() <= 0).all()
    assert not recs["cold_start"].any()

    with_seen = model.recommend(users, k=10, exclude_seen=False)
    assert seen & set(zip(with_seen["user_id"], with_seen["product_id"], strict=True))


def test_unknown_user_gets_the_popular_items_flagged_cold_start(planted, fitted):
    scores = planted["train_scores"]
    most_popular = scores.groupby("product_id")["score"].sum().nlargest(5).index.tolist()
    known = scores["user_id"].iloc[0]

    recs = fitted["ials"].recommend(["stranger", known, "stranger"], k=5)

    assert recs["user_id"].tolist() == ["stranger"] * 5 + [known] * 5  # order kept, duplicate dropped
    stranger = recs[recs["user_id"] == "stranger"]
    assert stranger["cold_start"].all() and not recs.loc[recs["user_id"] == known, "cold_start"].any()
    assert stranger["product_id"].tolist() == most_popular
    assert stranger["rank"].tolist() == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("key", ["itemknn", "svd", "ials", "ease", "blend", "blend_rank"])
def test_similar_items_come_from_the_planted_segment(planted, fitted, key):
    segment = planted["item_segment"]
    same = []
    for product in planted["train"].item_ids:
        similar = fitted[key].similar_items(product, k=5)
        assert len(similar) == 5 and product not in set(similar["similar_product_id"])
        assert (similar["product_id"] == product).all() and similar["rank"].tolist() == [1, 2, 3, 4, 5]
        same += [segment[other] == segment[product] for other in similar["similar_product_id"]]
    assert np.mean(same) > 0.8  # chance is 1/6


def test_similar_items_of_an_unknown_product_raises(fitted):
    with pytest.raises(UnknownItemError, match="no-such-part") as raised:
        fitted["ease"].similar_items("no-such-part", k=5)
    assert isinstance(raised.value, KeyError)


def test_temporal_split_holds_out_each_users_last_fifth_by_time_even_in_1998():
    rng = np.random.default_rng(0)
    sizes = {"ten": 10, "five": 5, "one": 1, "twenty": 20}
    rows = [
        {"event_id": f"{user}-{n}", "user_id": user, "event_at": pd.Timestamp("1998-03-01") + pd.Timedelta(days=n)}
        for user, size in sizes.items()
        for n in range(size)
    ]
    events = pd.DataFrame(rows).sample(frac=1.0, random_state=1).reset_index(drop=True)  # time order != row order
    events["product_id"] = rng.choice(["a", "b", "c"], size=len(events))

    train, test = temporal_split(events, holdout_fraction=0.2)

    assert len(train) + len(test) == len(events) and not set(train["event_id"]) & set(test["event_id"])
    held_out = test.groupby("user_id")["event_id"].agg(set).to_dict()
    assert held_out == {
        "ten": {"ten-8", "ten-9"},
        "five": {"five-4"},
        "twenty": {"twenty-16", "twenty-17", "twenty-18", "twenty-19"},
    }
    last_train = train.groupby("user_id")["event_at"].max()
    first_test = test.groupby("user_id")["event_at"].min()
    assert (last_train[first_test.index] < first_test).all()


def test_scores_decay_from_the_log_end_or_each_user_end_and_never_to_nothing():
    last = pd.Timestamp("1998-06-30 12:00")
    events = pd.DataFrame(
        {
            "user_id": ["u", "u", "u", "v", "old"],
            "product_id": ["a", "a", "b", "a", "a"],
            "interaction_type": ["purchase", "view", "like", "cart", "view"],
            "event_at": [
                last,
                last - pd.Timedelta(days=30),
                last - pd.Timedelta(days=60),
                last - pd.Timedelta(days=15),
                last - pd.Timedelta(days=3650),  # a user active ten years before the log ends
            ],
        }
    )
    from_log_end = scores_from_events(events, Recency(30, "log_end")).set_index(["user_id", "product_id"])
    assert from_log_end["score"].to_dict() == pytest.approx(
        {("u", "a"): 5 + 1 * 0.5, ("u", "b"): 2 * 0.25, ("v", "a"): 3 * 2**-0.5, ("old", "a"): MIN_DECAY}
    )
    from_user_end = scores_from_events(events, Recency(30, "user_end")).set_index(["user_id", "product_id"])
    assert from_user_end.loc[("v", "a"), "score"] == pytest.approx(3.0)  # v's own latest event counts fully
    assert from_user_end.loc[("old", "a"), "score"] == pytest.approx(1.0)
    assert from_user_end.loc[("old", "a"), "scored_at"] == last - pd.Timedelta(days=3650)
    all_time = scores_from_events(events, ALL_TIME).set_index(["user_id", "product_id"])
    assert all_time["score"].to_dict() == {("u", "a"): 6.0, ("u", "b"): 2.0, ("v", "a"): 3.0, ("old", "a"): 1.0}
    assert from_log_end.loc[("u", "a"), "n_events"] == 2 and from_log_end.loc[("u", "a"), "last_interaction_at"] == last
    assert from_log_end["has_purchased"].to_dict() == {
        ("u", "a"): True,
        ("u", "b"): False,
        ("v", "a"): False,
        ("old", "a"): False,
    }
    with pytest.raises(ValueError, match="refund"):
        scores_from_events(events.assign(interaction_type="refund"))
    with pytest.raises(ValueError, match="half_life_days"):
        Recency(0.0)


def test_every_recency_of_the_grid_keeps_every_user_history_on_a_fifteen_year_log():
    events, _, _ = synthetic_events(200, 60, 10, N_SEGMENTS, seed=5)
    years = np.random.default_rng(5).integers(0, 15, size=events["user_id"].nunique())
    era = dict(zip(sorted(events["user_id"].unique()), years, strict=True))
    events["event_at"] = events["event_at"] + pd.to_timedelta(events["user_id"].map(era) * 365, unit="D")
    for recency in RECENCY_GRID:
        matrix = InteractionMatrix.from_scores(scores_from_events(events, recency))
        per_user_max = matrix.matrix.max(axis=1).toarray().ravel()
        assert (per_user_max >= MIN_DECAY).all(), recency.label


def test_evaluate_gives_one_for_an_oracle_and_zero_for_an_anti_oracle(planted):
    oracle = evaluate(OracleRecommender(planted["test_events"]), planted["train"], planted["test_events"])
    anti = evaluate(OracleRecommender(planted["test_events"], sign=-1.0), planted["train"], planted["test_events"])
    assert oracle["ndcg@10"] == pytest.approx(1.0) and oracle["recall@20"] == pytest.approx(1.0)
    assert oracle["hr@10"] == 1.0
    assert anti["ndcg@10"] == 0.0 and anti["hr@10"] == 0.0
    assert oracle["n_users_evaluated"] == anti["n_users_evaluated"] > 300


@pytest.mark.parametrize("normalization", ["minmax", "rank"])
def test_blend_follows_its_weights(planted, normalization):
    test_events = planted["test_events"]

    def ndcg(weights: list[float]) -> float:
        members = [OracleRecommender(test_events), OracleRecommender(test_events, sign=-1.0)]
        blend = BlendRecommender(members, weights, normalization)
        return evaluate(blend, planted["train"], test_events)["ndcg@10"]

    assert ndcg([1.0, 0.0]) == pytest.approx(1.0)
    assert ndcg([0.0, 1.0]) == 0.0


def test_compare_candidates_scores_each_candidate_on_one_split(planted):
    metrics = compare_candidates(
        {"pop": PopularityRecommender(), "knn": ItemKNNRecommender(n_neighbors=30)}, planted["events"]
    )
    assert metrics.index.tolist() == ["pop", "knn"]
    assert metrics["model"].tolist() == ["popularity", "itemknn"]
    assert metrics.loc["knn", "params"] == {"n_neighbors": 30, "shrinkage": 10.0, "weighting": "log"}
    assert metrics["n_users_evaluated"].nunique() == 1
    assert metrics.loc["knn", "ndcg@10"] > metrics.loc["pop", "ndcg@10"]


def test_selection_returns_a_blend_when_it_beats_both_members_on_validation(planted):
    validation = NestedSplit.of(planted["events"]).validation_events
    halves = {
        "even": OracleRecommender(validation, users="even"),
        "odd": OracleRecommender(validation, users="odd"),
    }
    selection = select_recommender(halves, planted["events"], recencies=[ALL_TIME])
    assert isinstance(selection.model, BlendRecommender) and selection.key in {"blend(even+odd)", "blend(odd+even)"}
    assert selection.metrics.loc[selection.key, "validation_ndcg@10"] == pytest.approx(1.0)
    assert (selection.metrics.loc[["even", "odd"], "validation_ndcg@10"] < 0.8).all()
    assert [member["weight"] for member in selection.model.params["members"]] == [0.7, 0.3]


def test_selection_chooses_on_validation_and_reports_on_test(planted):
    split = NestedSplit.of(planted["events"])
    candidates = {
        "validation_oracle": OracleRecommender(split.validation_events, noise=0.5),
        "test_oracle": OracleRecommender(split.test_events, noise=0.5),
    }
    selection = select_recommender(candidates, planted["events"], recencies=[ALL_TIME])
    # The test oracle tops the test part, but the test part plays no part in the choice.
    assert selection.key == "validation_oracle"
    assert selection.metrics.loc["test_oracle", "ndcg@10"] == pytest.approx(1.0)
    assert selection.metrics.loc["validation_oracle", "validation_ndcg@10"] == pytest.approx(1.0)
    assert set(BASELINES) <= set(selection.metrics.index)
    assert selection.baseline == max(BASELINES, key=lambda key: selection.metrics.loc[key, "ndcg@10"])
    assert selection.counts["users"] == planted["events"]["user_id"].nunique()
    assert selection.counts["test_events"] == len(split.test_events)


def test_recency_is_chosen_on_validation_per_candidate(planted):
    """Only the last day counts for a user's taste here: a short half-life from each user's end must win."""
    events = planted["events"].copy()
    segment = events["user_id"].map(planted["user_segment"])
    rng = np.random.default_rng(0)
    drifted = (segment + 1 + rng.integers(0, 2, len(events))) % N_SEGMENTS  # early taste: another segment
    order = events.groupby("user_id")["event_at"].rank(method="first", pct=True)
    late = order > 0.55
    items = np.array(sorted(planted["item_segment"], key=lambda item: int(item[1:])))
    item_segment = np.array([planted["item_segment"][item] for item in items])
    early_items = [rng.choice(items[item_segment == s]) for s in drifted[~late]]
    events.loc[~late, "product_id"] = early_items
    selection = select_recommender(
        {"itemknn": ItemKNNRecommender(n_neighbors=30)},
        events,
        recencies=[ALL_TIME, Recency(7.0, "user_end")],
    )
    grid = selection.grid.set_index("recency")["validation_ndcg@10"]
    assert grid["half-life 7 d from user end"] > grid["no decay"]
    assert selection.recency == Recency(7.0, "user_end")


def test_fit_rejects_scores_the_mart_never_produces():
    good = pd.DataFrame({"user_id": ["u", "v"], "product_id": ["a", "a"], "score": [1.0, 2.0]})
    with pytest.raises(ValueError, match="> 0"):
        PopularityRecommender().fit(good.assign(score=[1.0, 0.0]))
    with pytest.raises(ValueError, match="duplicate"):
        PopularityRecommender().fit(pd.concat([good, good]))
    with pytest.raises(RuntimeError, match="fit"):
        PopularityRecommender().recommend(["u"], k=1)


def test_ease_above_max_items_models_the_most_used_items_and_leaves_the_rest_unscored(planted):
    full = EASERecommender().fit_matrix(planted["train"])
    capped = EASERecommender(max_items=60).fit_matrix(planted["train"])
    users_per_item = np.bincount(planted["train"].matrix.indices, minlength=planted["train"].n_items)
    scores = capped.score_all(np.arange(5))
    modelled = np.isfinite(scores[0])
    assert modelled.sum() == 60 and users_per_item[modelled].min() >= users_per_item[~modelled].max()
    assert np.isfinite(full.score_all(np.arange(5))).all()
    recs = capped.recommend(planted["train"].user_ids[:3], k=10)
    assert len(recs) == 30 and recs["product_id"].isin(planted["train"].item_ids[modelled]).all()
    unmodelled = planted["train"].item_ids[~modelled][0]
    assert capped.similar_items(unmodelled, k=5).empty


def test_itemknn_computed_in_blocks_keeps_the_same_neighbours(planted, monkeypatch):
    whole = ItemKNNRecommender(n_neighbors=20).fit_matrix(planted["train"])
    monkeypatch.setattr("ml.recommend.neighbors.SIMILARITY_BLOCK_BYTES", 8 * planted["train"].n_items * 7)
    blocked = ItemKNNRecommender(n_neighbors=20).fit_matrix(planted["train"])
    assert abs(whole._neighbors - blocked._neighbors).max() < 1e-6


def test_a_champion_stored_as_the_removed_als_is_rebuilt_as_ials():
    """Champions registered before the home-made ALS was removed must still be rescored at promotion."""
    from ml.training import recommender_from_spec, recommender_spec

    stored = {
        "class": "ml.recommend.factorization.ALSRecommender",
        "params": {"factors": 16, "regularization": 10.0, "alpha": 40.0, "iterations": 15, "cg_steps": 3},
    }
    blend = {"class": "ml.recommend.blend.BlendRecommender", "params": {"models": [stored], "weights": [1.0]}}
    model = recommender_from_spec(blend).models[0]
    assert isinstance(model, IALSRecommender)
    assert (model.factors, model.regularization, model.alpha, model.iterations) == (16, 10.0, 40.0, 15)
    assert recommender_from_spec(recommender_spec(model)).params == model.params
