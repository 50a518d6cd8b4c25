"""Product search: BM25 (bm25s) over name, category and brand, optionally re-ranked for one customer.

Text is folded before indexing and querying (Unicode NFKD without accents, case-folded, anything but
letters and digits a separator), so "BRÉMBO" finds "Brembo". A query must hold a letter or digit
(QUERY_PATTERN, which the API publishes) and at most MAX_QUERY_CHARS characters; anything else is an
InvalidQuery with the reason. A query word the catalogue does not contain
is replaced by its closest catalogue word (difflib ratio >= TYPO_CUTOFF), so "brak pads" finds brake
pads. Personalization mixes the lexical score with the recommender's score for the customer, each scaled
to [0, 1] over the lexical matches: score = (1 - w) * lexical + w * personal. Only products the query
matches are ever returned; personalization reorders them, it never adds one.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass

import bm25s
import numpy as np
import pandas as pd

SEARCH_FIELDS = ("name", "category", "brand")
MAX_QUERY_CHARS = 200
QUERY_PATTERN = r"[^\W_]"  # a letter or digit somewhere (Unicode)
TYPO_CUTOFF = 0.75
_SEPARATORS = re.compile(r"[\W_]+")


class InvalidQuery(ValueError):
    """A query that cannot mean anything: empty, no letters or digits, or too long."""


def fold(text: str) -> list[str]:
    """Words of `text` without accents, case or punctuation."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()
    return [word for word in _SEPARATORS.split(plain) if word]


@dataclass(frozen=True)
class SearchHit:
    product_id: str
    lexical_score: float  # BM25 scaled so the best match of the query is 1
    personal_score: float | None  # the recommender's score scaled over the matches; None: not personalized
    score: float


class ProductSearch:
    """A BM25 index over a catalogue indexed by product_id (columns name, category and, if present, brand)."""

    def __init__(self, catalog: pd.DataFrame):
        fields = [field for field in SEARCH_FIELDS if field in catalog.columns]
        self.product_ids = np.asarray(catalog.index.astype(str))
        texts = catalog[fields].astype("string").fillna("").agg(" ".join, axis=1)
        corpus = [fold(text) for text in texts]
        self.vocabulary = sorted({word for words in corpus for word in words})
        self._known = set(self.vocabulary)
        self.index = bm25s.BM25()
        # bm25s rejects an empty document list; an empty catalogue simply finds nothing.
        self.index.index([words or [""] for words in corpus] or [[""]], show_progress=False)

    def __len__(self) -> int:
        return len(self.product_ids)

    def query_words(self, query: str) -> list[str]:
        """The catalogue words a query asks for (typos corrected, unknown words dropped); InvalidQuery if absurd."""
        if len(query) > MAX_QUERY_CHARS:
            raise InvalidQuery(f"the query is {len(query)} characters long: at most {MAX_QUERY_CHARS}")
        words = fold(query)
        if not words:
            raise InvalidQuery("the query has no letters or digits to search for")
        found = []
        for word in words:
            if word in self._known:
                found.append(word)
            elif len(word) >= 3 and (close := difflib.get_close_matches(word, self.vocabulary, 1, TYPO_CUTOFF)):
                found.append(close[0])
        return found

    def lexical_scores(self, query: str) -> np.ndarray:
        """BM25 score of every product (catalogue order); all zero when no query word is in the catalogue."""
        words = self.query_words(query)
        if not words or not len(self):
            return np.zeros(len(self))
        return np.asarray(self.index.get_scores(words), dtype=np.float64)[: len(self)]

    def search(self, query: str, count: int, personal: pd.Series | None = None, weight: float = 0.0) -> list[SearchHit]:
        """The `count` best matches; `personal` (recommender scores by product_id) re-ranks them by `weight`."""
        lexical = self.lexical_scores(query)
        matched = np.flatnonzero(lexical > 0)
        if not len(matched):
            return []
        lexical_scaled = lexical[matched] / lexical[matched].max()
        personal_scaled = None
        final = lexical_scaled
        if personal is not None:
            raw = personal.reindex(self.product_ids[matched]).to_numpy(dtype=np.float64)
            raw = np.where(np.isfinite(raw), raw, np.nan)
            low, high = np.nanmin(raw, initial=np.inf), np.nanmax(raw, initial=-np.inf)
            spread = high - low if np.isfinite(high - low) and high > low else 1.0
            personal_scaled = np.nan_to_num((raw - low) / spread, nan=0.0) if np.isfinite(low) else np.zeros_like(raw)
            final = (1 - weight) * lexical_scaled + weight * personal_scaled
        # Best final score first; ties by lexical score, then catalogue order (stable).
        order = np.lexsort((np.arange(len(matched)), -lexical_scaled, -final))[:count]
        return [
            SearchHit(
                product_id=str(self.product_ids[matched[i]]),
                lexical_score=float(lexical_scaled[i]),
                personal_score=None if personal_scaled is None else float(personal_scaled[i]),
                score=float(final[i]),
            )
            for i in order
        ]
