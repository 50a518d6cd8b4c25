"""Lead scoring: the transparent scorer (score.py), the outcome model trained on won/lost leads
(outcome.py) and the package serving answers from (package.py)."""

from ml.leads.score import COMPONENTS, TransparentScorer, category_group

__all__ = ["COMPONENTS", "TransparentScorer", "category_group"]
