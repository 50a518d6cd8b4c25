"""The promotion rule: the champion moves only when the challenger beats it on the same evaluation."""

from __future__ import annotations

import pandas as pd

from ml.registry import Evaluation, decide_promotion, frame_fingerprint


def _ndcg(value: float, data: str = "d1", config: str = "ease") -> Evaluation:
    return Evaluation("ndcg@10", value, True, data, config)


def test_first_model_is_promoted():
    assert decide_promotion(_ndcg(0.1), None) == (True, "first model: nothing to beat")


def test_same_data_promotes_only_a_strictly_better_challenger():
    assert decide_promotion(_ndcg(0.31), _ndcg(0.30))[0] is True
    assert decide_promotion(_ndcg(0.30), _ndcg(0.30))[0] is False
    assert decide_promotion(_ndcg(0.29, config="svd"), _ndcg(0.30))[0] is False


def test_lower_is_better_metrics_compare_the_other_way():
    champion = Evaluation("mase", 0.9, False, "d1", "cfg")
    assert decide_promotion(Evaluation("mase", 0.8, False, "d1", "cfg"), champion)[0] is True
    assert decide_promotion(Evaluation("mase", 1.0, False, "d1", "cfg"), champion)[0] is False


def test_new_data_refreshes_the_same_design_and_rescores_a_different_one():
    promote, reason = decide_promotion(_ndcg(0.20, data="d2"), _ndcg(0.30))
    assert promote and reason.startswith("refresh")
    assert decide_promotion(_ndcg(0.25, "d2", "svd"), _ndcg(0.30), lambda config: 0.24)[0] is True
    assert decide_promotion(_ndcg(0.25, "d2", "svd"), _ndcg(0.30), lambda config: 0.26)[0] is False
    assert decide_promotion(_ndcg(0.99, "d2", "svd"), _ndcg(0.30))[0] is False  # cannot compare: keep


def test_the_champion_is_rescored_only_when_the_decision_needs_it():
    asked: list[str] = []

    def rescore(config: str) -> float:
        asked.append(config)
        return 0.1

    decide_promotion(_ndcg(0.2), None, rescore)  # first model
    decide_promotion(_ndcg(0.2), _ndcg(0.3), rescore)  # same data: compared directly
    decide_promotion(_ndcg(0.2, data="d2"), _ndcg(0.3), rescore)  # same design on new data: a refresh
    assert asked == []
    assert decide_promotion(_ndcg(0.2, "d2", "svd"), _ndcg(0.3), rescore)[0] is True
    assert asked == ["ease"]  # the champion's configuration, rescored once


def test_fingerprint_tracks_content_not_identity():
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    assert frame_fingerprint(frame) == frame_fingerprint(frame.copy())
    assert frame_fingerprint(frame) == frame_fingerprint(frame.iloc[::-1]), "a rebuilt table's row order varies"
    assert frame_fingerprint(frame) != frame_fingerprint(frame.assign(a=[1, 3]))


def test_baseline_comparison_follows_the_metric_direction():
    assert Evaluation("ndcg@10", 0.3, True, "d", "c", "popularity", 0.2).beats_baseline
    assert not Evaluation("mase", 0.9, False, "d", "c", "seasonal_naive", 0.8).beats_baseline
    assert not Evaluation("mase", 0.9, False, "d", "c").beats_baseline  # no baseline: cannot claim to beat it
    assert Evaluation("mase", 0.8, False, "d", "c", "seasonal_naive", 0.8).beats_baseline  # the baseline served
    tags = Evaluation("mase", 0.7, False, "d", "c", "seasonal_naive", 0.8).as_tags()
    assert Evaluation.from_tags(tags) == Evaluation("mase", 0.7, False, "d", "c", "seasonal_naive", 0.8)


def test_noise_below_the_margin_does_not_swap_the_champion():
    champion = Evaluation("mase", 0.8515, False, "d1", "cfg")
    assert decide_promotion(Evaluation("mase", 0.8505, False, "d1", "cfg"), champion)[0] is False
    assert decide_promotion(Evaluation("mase", 0.80, False, "d1", "cfg"), champion)[0] is True
