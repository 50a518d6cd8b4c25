"""Load the champion models from the MLflow registry: the only place serving talks to MLflow.

Training registers `ml.packaging.RECOMMENDER_MODEL_NAME` and `FORECASTER_MODEL_NAME` and points the
`champion` alias at the version to serve. `load_champions` resolves the alias to a version once and loads
exactly that version through `ml.registry.ModelRegistry` (so the version served and the version reported
never disagree, even if training moves the alias in between). A model with no champion, or one that fails
to load, comes back as None with the reason in `Champions.missing`: the service still starts and answers
503 for what it lacks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from ml.packaging import FORECASTER_MODEL_NAME, RECOMMENDER_MODEL_NAME
from ml.registry import CHAMPION, ModelRegistry, missing_sqlite_store

logger = logging.getLogger(f"bentoml.{__name__}")  # under bentoml, so its server log handlers apply

MODEL_NAMES = (RECOMMENDER_MODEL_NAME, FORECASTER_MODEL_NAME)


@dataclass(frozen=True)
class Champion:
    """One loaded champion: the registered name and version, the MLflow run that logged it, the python model."""

    name: str
    version: str
    model: Any
    run_id: str | None = None


@dataclass(frozen=True)
class Champions:
    """What the registry held at load time; `missing` maps a model name to why it has no champion."""

    tracking_uri: str
    recommender: Champion | None = None
    forecaster: Champion | None = None
    missing: dict[str, str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.recommender is not None and self.forecaster is not None

    def get(self, name: str) -> Champion | None:
        return {RECOMMENDER_MODEL_NAME: self.recommender, FORECASTER_MODEL_NAME: self.forecaster}.get(name)

    def versions(self) -> dict[str, str | None]:
        return {name: (c.version if (c := self.get(name)) else None) for name in MODEL_NAMES}


class NoChampion(LookupError):
    """The registry has no model version behind `name@champion` (or no registry yet)."""


def load_champion(registry: ModelRegistry, name: str, previous: Champion | None = None) -> Champion:
    """Load `name@champion`; returns `previous` untouched when the alias still points at its version."""
    if (path := missing_sqlite_store(registry.tracking_uri)) is not None:
        raise NoChampion(f"the model registry {path} does not exist yet: nothing has been trained")
    current = registry.champion(name)
    if current is None:
        raise NoChampion(f"no model version of {name!r} has the alias {CHAMPION!r}")
    if previous is not None and previous.version == current.version:
        return previous
    model = registry.load(name, current.version)
    logger.info("loaded champion %s version %s (MLflow run %s)", name, current.version, current.run_id)
    return Champion(name=name, version=current.version, model=model, run_id=current.run_id)


def load_champions(tracking_uri: str, previous: Champions | None = None) -> Champions:
    """Both champions from the registry at `tracking_uri`; never raises (a failure is a missing champion).

    With `previous`, a champion whose alias has not moved is reused instead of loaded again, so this is
    also the periodic refresh."""
    registry = ModelRegistry(tracking_uri)
    loaded: dict[str, Champion | None] = {}
    missing: dict[str, str] = {}
    for name in MODEL_NAMES:
        before = previous.get(name) if previous is not None and previous.tracking_uri == tracking_uri else None
        try:
            loaded[name] = load_champion(registry, name, before)
        except NoChampion as error:
            loaded[name], missing[name] = None, str(error)
        except Exception as error:  # registry unreachable, broken artifact: serve what we have, say why
            logger.exception("could not load the champion of %s from %s", name, tracking_uri)
            # Keep serving the champion already loaded rather than dropping it on a transient failure.
            loaded[name] = before
            if before is None:
                missing[name] = f"could not load {name}@{CHAMPION}: {type(error).__name__}: {error}"
    return Champions(
        tracking_uri=tracking_uri,
        recommender=loaded[RECOMMENDER_MODEL_NAME],
        forecaster=loaded[FORECASTER_MODEL_NAME],
        missing=missing,
    )
