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
    assert decide_promotion(_ndcg(0.25, "d2", "svd"), _ndcg(0.30), champion_rescored=0.24)[0] is True
    assert decide_promotion(_ndcg(0.25, "d2", "svd"), _ndcg(0.30), champion_rescored=0.26)[0] is False
    assert decide_promotion(_ndcg(0.99, "d2", "svd"), _ndcg(0.30))[0] is False  # cannot compare: keep


def test_fingerprint_tracks_content_not_identity():
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    assert frame_fingerprint(frame) == frame_fingerprint(frame.copy())
    assert frame_fingerprint(frame) != frame_fingerprint(frame.assign(a=[1, 3]))


def test_noise_below_the_margin_does_not_swap_the_champion():
    champion = Evaluation("mase", 0.8515, False, "d1", "cfg")
    assert decide_promotion(Evaluation("mase", 0.8505, False, "d1", "cfg"), champion)[0] is False
    assert decide_promotion(Evaluation("mase", 0.80, False, "d1", "cfg"), champion)[0] is True
