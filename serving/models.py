"""Load the champion models from the MLflow registry: the only place serving talks to MLflow.

Training registers `ml.packaging.RECOMMENDER_MODEL_NAME` and `FORECASTER_MODEL_NAME` and points the
`champion` alias at the version to serve. `load_champions` resolves the alias to a version once and loads
exactly that version (so the version served and the version reported never disagree, even if training
moves the alias in between). A model with no champion, or one that fails to load, comes back as None
with the reason in `Champions.missing`: the service still starts and answers 503 for what it lacks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from ml.packaging import FORECASTER_MODEL_NAME, RECOMMENDER_MODEL_NAME

logger = logging.getLogger(f"bentoml.{__name__}")  # under bentoml, so its server log handlers apply

CHAMPION_ALIAS = "champion"

# The typed methods serving calls on each unwrapped python model (see ml/packaging.py).
REQUIRED_METHODS = {
    RECOMMENDER_MODEL_NAME: ("recommend", "similar_items", "knows_product"),
    FORECASTER_MODEL_NAME: ("product_forecast", "product_insights", "knows_product"),
}


@dataclass(frozen=True)
class Champion:
    """One loaded champion: the registered name and version and the unwrapped python model."""

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
        return {name: (c.version if (c := self.get(name)) else None) for name in REQUIRED_METHODS}


class NoChampion(LookupError):
    """The registry has no model version behind `name@champion` (or no registry yet)."""


def _missing_sqlite_file(tracking_uri: str) -> Path | None:
    """The database file of a sqlite:/// store that does not exist yet (nothing trained); else None.

    Checked before connecting, because opening a SQLite store creates and migrates the file: serving
    must not create the registry as a side effect of looking for a champion."""
    parsed = urlparse(tracking_uri)
    if parsed.scheme != "sqlite" or not parsed.path or parsed.path == "/:memory:":
        return None
    path = Path(unquote(parsed.path[1:]))  # SQLAlchemy: sqlite:///relative.db, sqlite:////absolute.db
    return None if path.exists() else path


def champion_version(client: Any, name: str, alias: str = CHAMPION_ALIAS) -> tuple[str, str | None]:
    """(version, run_id) the alias points at; raises NoChampion when there is none."""
    from mlflow.exceptions import MlflowException

    try:
        version = client.get_model_version_by_alias(name, alias)
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise NoChampion(f"no model version of {name!r} has the alias {alias!r}") from error
        raise
    return str(version.version), version.run_id


def load_champion(
    tracking_uri: str, name: str, previous: Champion | None = None, alias: str = CHAMPION_ALIAS
) -> Champion:
    """Load `name@alias` (the champion unless told); returns `previous` untouched when the alias still
    points at its version."""
    import mlflow
    from mlflow import MlflowClient

    if (path := _missing_sqlite_file(tracking_uri)) is not None:
        raise NoChampion(f"the model registry {path} does not exist yet: nothing has been trained")
    version, run_id = champion_version(MlflowClient(tracking_uri=tracking_uri), name, alias)
    if previous is not None and previous.version == version:
        return previous
    # models:/ URIs resolve against the process-wide tracking URI; one set by the caller is put back after.
    before = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    mlflow.set_tracking_uri(tracking_uri)
    try:
        model = mlflow.pyfunc.load_model(f"models:/{name}/{version}").unwrap_python_model()
    finally:
        if before is not None:
            mlflow.set_tracking_uri(before)
    absent = [method for method in REQUIRED_METHODS[name] if not callable(getattr(model, method, None))]
    if absent:
        raise TypeError(f"{name} version {version} is a {type(model).__name__}, which lacks {absent}")
    logger.info("loaded champion %s version %s", name, version)
    return Champion(name=name, version=version, model=model, run_id=run_id)


def load_champions(tracking_uri: str, previous: Champions | None = None) -> Champions:
    """Both champions from the registry at `tracking_uri`; never raises (a failure is a missing champion).

    With `previous`, a champion whose alias has not moved is reused instead of loaded again, so this is
    also the periodic refresh."""
    loaded: dict[str, Champion | None] = {}
    missing: dict[str, str] = {}
    for name in REQUIRED_METHODS:
        before = previous.get(name) if previous is not None and previous.tracking_uri == tracking_uri else None
        try:
            loaded[name] = load_champion(tracking_uri, name, before)
        except NoChampion as error:
            loaded[name], missing[name] = None, str(error)
        except Exception as error:  # registry unreachable, broken artifact: serve what we have, say why
            logger.exception("could not load the champion of %s from %s", name, tracking_uri)
            # Keep serving the champion already loaded rather than dropping it on a transient failure.
            loaded[name] = before
            if before is None:
                missing[name] = f"could not load {name}@{CHAMPION_ALIAS}: {type(error).__name__}: {error}"
    return Champions(
        tracking_uri=tracking_uri,
        recommender=loaded[RECOMMENDER_MODEL_NAME],
        forecaster=loaded[FORECASTER_MODEL_NAME],
        missing=missing,
    )
