"""ml/search.py on a planted catalogue whose right answers are known, and its personalization."""

from __future__ import annotations

import pandas as pd
import pytest

from ml.search import InvalidQuery, ProductSearch

CATALOG = pd.DataFrame(
    [
        ("P1", "Front brake pads", "Brakes", "Brembo", 49.0),
        ("P2", "Rear brake disc", "Brakes", "Brembo", 89.0),
        ("P3", "Brake fluid DOT 4", "Fluids", "Castrol", 12.0),
        ("P4", "Oil filter", "Filters", "Bosch", 9.5),
        ("P5", "Cabin air filter", "Filters", "Mann", 14.0),
        ("P6", "Spark plug iridium", "Ignition", "NGK", 11.0),
        ("P7", "Shock absorber front", "Suspension", "Bilstein", 120.0),
        ("P8", "Wiper blade 600 mm", "Visibility", "Bosch", 18.0),
        ("P9", "Engine oil 5W-30", "Fluids", "Motul", 45.0),
        ("P10", "Timing belt kit", "Engine", None, 150.0),
    ],
    columns=["product_id", "name", "category", "brand", "price"],
).set_index("product_id")


@pytest.fixture(scope="module")
def search() -> ProductSearch:
    return ProductSearch(CATALOG)


def ids(hits) -> list[str]:
    return [hit.product_id for hit in hits]


@pytest.mark.parametrize(
    ("query", "first"),
    [
        ("brake pads", "P1"),  # both words in one name beats one word in three
        ("BRAKE PADS", "P1"),  # case
        ("brake pâds", "P1"),  # accents
        ("brak pads", "P1"),  # a typo
        ("spark plgu", "P6"),  # a transposition
        ("iridium", "P6"),
        ("oil filter", "P4"),
        ("cabin filter", "P5"),
        ("bilstein", "P7"),  # brand
        ("ngk", "P6"),
        ("5w-30", "P9"),  # punctuation inside a word
        ("timing belt", "P10"),  # no brand
        ("wiper 600", "P8"),
    ],
)
def test_planted_queries_rank_the_right_product_first(search, query, first):
    assert ids(search.search(query, 3))[0] == first


def test_a_category_query_finds_every_product_in_it(search):
    assert set(ids(search.search("filters", 10))) == {"P4", "P5"}
    assert set(ids(search.search("brembo", 10))) == {"P1", "P2"}


def test_scores_are_scaled_and_sorted(search):
    hits = search.search("brake", 10)
    assert set(ids(hits)) == {"P1", "P2", "P3"}
    assert hits[0].lexical_score == 1.0 and all(0 < h.lexical_score <= 1 for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert all(h.personal_score is None and h.score == h.lexical_score for h in hits)


def test_no_match_is_an_empty_answer_not_an_error(search):
    assert search.search("xylophone", 5) == []


@pytest.mark.parametrize(
    ("query", "reason"),
    [("", "no letters or digits"), ("  ", "no letters or digits"), ("?!-_ ...", "no letters"), ("a" * 201, "201")],
)
def test_absurd_queries_are_refused_with_a_reason(search, query, reason):
    with pytest.raises(InvalidQuery, match=reason):
        search.search(query, 5)


def test_personalization_reorders_matches_only(search):
    # The customer's recommender likes the disc most, the pads least; P9 is not a match and stays out.
    personal = pd.Series({"P1": 0.1, "P2": 3.0, "P3": 1.0, "P9": 99.0})
    plain = search.search("brake", 3)
    mixed = search.search("brake", 3, personal=personal, weight=0.9)
    assert set(ids(mixed)) == set(ids(plain))
    assert ids(mixed)[0] == "P2"
    by_id = {h.product_id: h for h in mixed}
    assert by_id["P2"].personal_score == 1.0 and by_id["P1"].personal_score == 0.0
    for hit in mixed:
        assert hit.score == pytest.approx(0.1 * hit.lexical_score + 0.9 * hit.personal_score)
    # weight 0: the lexical order, both scores still reported
    unweighted = search.search("brake", 3, personal=personal, weight=0.0)
    assert ids(unweighted) == ids(plain)
    assert all(h.personal_score is not None for h in unweighted)


def test_an_empty_catalogue_finds_nothing():
    assert ProductSearch(CATALOG.iloc[:0]).search("brake", 5) == []
