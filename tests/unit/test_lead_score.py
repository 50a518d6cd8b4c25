"""The transparent lead scorer's promises, as properties over generated leads (Hypothesis)."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml.leads.score import COMPONENTS, TransparentScorer, category_group

WEIGHTS = {"category_fit": 30, "contact": 20, "reputation": 15, "target_city": 20, "multi_source": 5, "recency": 10}
SCORER = TransparentScorer(WEIGHTS, target_cities=("Springfield", "Riverton"))
LATEST = pd.Timestamp("2024-03-05 08:00")

optional_text = st.one_of(st.none(), st.just(""), st.text(min_size=1, max_size=12))
leads = st.fixed_dictionaries(
    {
        "category": st.one_of(
            st.none(), st.sampled_from(["Garage", "Parts Dealer", "Body Shop", "car_repair", "Florist"])
        ),
        "phone_normalized": st.one_of(st.none(), st.just("5551234567")),
        "website": st.one_of(st.none(), st.just("https://a.example")),
        "address_normalized": optional_text,
        "city": st.sampled_from(["Springfield", "riverton ", "Salem", None]),
        "rating": st.one_of(st.none(), st.floats(1, 5), st.floats(allow_nan=True, allow_infinity=True)),
        "review_count": st.one_of(st.none(), st.integers(-5, 100_000)),
        "n_sources": st.integers(1, 2),
        "n_source_urls": st.integers(1, 4),
        "last_seen_at": st.datetimes(pd.Timestamp("2023-01-01").to_pydatetime(), LATEST.to_pydatetime()),
    }
)


def score(*records: dict) -> list[int]:
    return SCORER.score(pd.DataFrame(list(records)), as_of=LATEST)["lead_score"].tolist()


@settings(max_examples=60, deadline=None)
@given(leads, st.sets(st.sampled_from(["phone_normalized", "website", "address_normalized"]), min_size=1))
def test_more_complete_contact_data_never_lowers_the_score(lead, added):
    completed = lead | {
        field: {"phone_normalized": "5559990000", "website": "https://b.example", "address_normalized": "1 main st"}[
            field
        ]
        for field in added
    }
    before, after = score(lead, completed)
    assert after >= before


@settings(max_examples=60, deadline=None)
@given(leads)
def test_out_of_area_scores_lower_and_every_score_is_0_to_100(lead):
    inside, outside = score(lead | {"city": "Springfield"}, lead | {"city": "Salem"})
    assert outside < inside
    assert 0 <= outside <= inside <= 100


@settings(max_examples=40, deadline=None)
@given(leads, st.integers(-10_000, 10_000))
def test_recency_is_measured_from_the_datas_latest_scrape_not_today(lead, days):
    shift = pd.Timedelta(days=days)
    frame = pd.DataFrame([lead, lead | {"last_seen_at": LATEST.to_pydatetime()}])
    moved = frame.assign(last_seen_at=pd.to_datetime(frame["last_seen_at"]) + shift)
    assert SCORER.score(frame)["lead_score"].tolist() == SCORER.score(moved)["lead_score"].tolist()


def test_components_are_in_range_and_reasons_name_the_biggest_points():
    frame = pd.DataFrame(
        [
            {
                "category": "Garage",
                "phone_normalized": "1",
                "website": "w",
                "address_normalized": "a",
                "city": "Springfield",
                "rating": 4.8,
                "review_count": 300,
                "n_sources": 2,
                "n_source_urls": 2,
                "last_seen_at": LATEST,
            },
            {
                "category": "Parts Dealer",
                "phone_normalized": None,
                "website": None,
                "address_normalized": None,
                "city": "Salem",
                "rating": None,
                "review_count": None,
                "n_sources": 1,
                "n_source_urls": 1,
                "last_seen_at": LATEST - pd.Timedelta(days=70),
            },
        ]
    )
    components = SCORER.components(frame)
    assert list(components.columns) == list(COMPONENTS)
    assert ((components >= 0) & (components <= 1)).all().all()
    scored = SCORER.score(frame)
    assert scored["lead_score"].tolist() == [100, 6]
    assert (
        scored["score_reasons"]
        .iloc[0]
        .startswith("category fit (repair workshop) +30; contact data +20; in a target city +20")
    )
    assert scored["score_reasons"].iloc[1] == "category fit (parts seller) +6"


def test_without_target_cities_every_city_is_in_area():
    scorer = TransparentScorer(WEIGHTS)
    frame = pd.DataFrame([{"city": "Anywhere", "last_seen_at": LATEST}, {"city": None, "last_seen_at": LATEST}])
    assert scorer.components(frame)["target_city"].tolist() == [1.0, 1.0]


@pytest.mark.parametrize(
    "category, group",
    [
        ("Parts Dealer", "parts seller"),
        ("car_repair", "repair workshop"),
        ("Auto Electrician", "auto electrician"),
        ("MOT Centre", "MOT centre"),
        ("Tyre Shop", "tyre shop"),
        ("Body Shop", "body shop"),
        ("Florist", "other"),
        (None, "other"),
    ],
)
def test_category_groups(category, group):
    assert category_group(category) == group


def test_bad_weights_are_refused():
    with pytest.raises(ValueError):
        TransparentScorer({"category_fit": 0})
    with pytest.raises(ValueError):
        TransparentScorer({"charisma": 10})
