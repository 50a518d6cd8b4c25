"""One typed settings object for the whole platform, read from OPTIMUM_* environment variables.

Paths, the warehouse target and credentials are decided here and nowhere else; dbt, Dagster, MLflow and
BentoML receive what they need from `Settings` (see `Settings.dbt_env` and `Settings.as_env`). It lives
outside both the Dagster code location (`orchestration`) and the inference service (`serving`) so that
each depends on it, and neither on the other.
"""

from __future__ import annotations

import json
from datetime import date
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlparse

import yaml
from pydantic import Field, PositiveInt, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
EXPECTATIONS_DIR = REPO_ROOT / "expectations"
K8S_EXECUTOR_CONFIG = REPO_ROOT / "infra" / "k8s" / "executor.yaml"
MAX_FORECAST_HORIZON = 104  # periods: two years of weeks; the serving API's limit too


def dbt_project_vars() -> dict:
    """The `vars` of dbt_project.yml: the domain facts dbt and the Python models share (defaults below)."""
    return yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())["vars"]


class Target(StrEnum):
    DUCKDB = "duckdb"
    POSTGRES = "postgres"


class ServingSettings(BaseSettings):
    """How the inference service runs (OPTIMUM_SERVING_*): read once, before BentoML starts its workers."""

    model_config = SettingsConfigDict(env_prefix="OPTIMUM_SERVING_", extra="ignore")

    refresh_seconds: float = Field(
        60.0, ge=0, description="How often the service checks for a newly promoted champion; 0: never."
    )
    workers: int = Field(1, ge=1, description="Worker processes of the service.")
    access_log: bool = Field(False, description="BentoML's own access log (the JSON request log is always on).")
    tracing: bool = Field(False, description="OpenTelemetry spans on the API routes.")
    max_body_bytes: int = Field(64 * 1024, ge=1, description="Larger request bodies are refused with 413.")
    max_json_depth: int = Field(8, ge=2, description="Deeper JSON nesting in a request is refused with 400.")
    max_json_items: int = Field(256, ge=1, description="Longer JSON arrays/objects in a request: 400.")
    request_timeout_seconds: float = Field(30.0, gt=0, description="A request running longer is cancelled.")
    # The closed loop: POST /interactions and the prediction log go through durable spools (serving/spool.py).
    interactions_max_batch: int = Field(1000, ge=1, le=10_000, description="Most events one POST /interactions takes.")
    interactions_max_body_bytes: int = Field(
        4 * 1024 * 1024,
        ge=1,
        description="Larger POST /interactions bodies are refused with 413 (a batch of 1,000 typical events is "
        "about 150 KB; this default fits 1,000 events with every id at its 128-character maximum).",
    )
    spool_max_bytes: int = Field(8 * 1024 * 1024, ge=4096, description="A spool file is closed at this size.")
    spool_max_seconds: float = Field(30.0, gt=0, description="A spool file is closed at this age (then ingested).")
    ab_challenger_share: float = Field(0.0, ge=0, le=1, description="Share of users the challenger answers (0: off).")
    rate_per_second: float = Field(
        200.0, gt=0, description="Requests per second one token (or client address) may sustain, per worker."
    )
    rate_burst: int = Field(400, ge=1, description="Requests one token may send at once before 429.")
    max_in_flight: int = Field(128, ge=1, description="Most API requests one worker answers at once.")
    max_queued: int = Field(
        1024,
        ge=0,
        description="API requests one worker holds in line for a slot (first come, first served); one more gets "
        "503 + Retry-After. At about 2,000 answers/s per worker, 1,024 waiting is half a second.",
    )
    cors_origins: str = Field("", description="Comma-separated origins browsers may call the API from.")
    search_personal_weight: float = Field(
        0.3, ge=0, le=1, description="Share of a known customer's recommender score in the search ranking."
    )

    @property
    def cors_allow_list(self) -> list[str]:
        return [origin.strip() for origin in self.cors_origins.split(",") if origin.strip()]


class LandingSettings(BaseSettings):
    """What a delivery may contain before its rows are quarantined (OPTIMUM_LANDING_*); dates are judged
    against the data's own dates, never the wall clock."""

    model_config = SettingsConfigDict(env_prefix="OPTIMUM_LANDING_", extra="ignore")

    date_years_before: int = Field(
        25, ge=0, description="Dates more than this many years before the data's dates are out_of_range_date."
    )
    date_days_after: int = Field(
        366, ge=0, description="Dates more than this many days after the data's dates are out_of_range_date."
    )
    quarantine_warn_rate: float = Field(
        0.05, ge=0, le=1, description="The quarantine_rate check warns when a delivery quarantines more."
    )


class Settings(BaseSettings):
    """Where state lives and which warehouse the platform writes to."""

    model_config = SettingsConfigDict(env_prefix="OPTIMUM_", extra="ignore")

    # Defaults sit in the repository, so every command finds the same state whatever the working directory.
    home: Path = Field(REPO_ROOT / ".optimum", description="State folder: Dagster home, DuckDB file, MLflow store.")
    landing_dir: Path = Field(
        REPO_ROOT / "data" / "landing", description="Landing zone: products/, sales/, interactions/, lead_status/."
    )
    target: Target = Field(Target.DUCKDB, description="Warehouse: embedded DuckDB or PostgreSQL.")
    pg_dsn: str = Field(
        "postgresql://postgres@127.0.0.1:5432/optimum", description="Warehouse DSN when target is postgres."
    )
    lead_seed_urls: str = Field("", description="Comma-separated listing URLs the lead scraper starts from.")
    scrape_max_pages: int = Field(2000, ge=1, description="Page budget of one scrape.")
    scrape_requests_per_second: float = Field(10.0, gt=0, description="Per-host rate limit of the scraper.")
    expectations_dir: Path = Field(EXPECTATIONS_DIR, description="Great Expectations suites (JSON).")
    mlflow_tracking_uri: str = Field("", description="MLflow server; empty: a SQLite store under home/mlflow.")
    mlflow_ui_url: str = Field(
        "http://127.0.0.1:5000",
        description="The MLflow UI asset metadata links runs to (`make mlflow-ui`); a tracking server is its own.",
    )
    forecast_freq: Literal["D", "W", "M"] = Field("W", description="Demand forecast grain.")
    forecast_horizon: int = Field(
        8, ge=1, le=MAX_FORECAST_HORIZON, description="Forecast periods after the data's last period."
    )
    forecast_prophet_top_n: int = Field(20, ge=0, description="Prophet runs on this many top sellers (slow).")
    forecast_calendar: Literal["auto", "aggregated", "order_lines"] = Field(
        "auto",
        description="Sales dates: auto-detect, an aggregated export (keep its last period) or order lines "
        "(drop a partial trailing period).",
    )
    forecast_workers: PositiveInt | None = Field(
        None,
        description="Cores the forecaster uses (LightGBM threads, statsforecast processes); empty: every core "
        "this process may run on. Set it to a container's CPU limit, which the process cannot see.",
    )
    recs_top_n: int = Field(20, ge=1, le=100, description="Recommendations written per user.")
    executor: Literal["default", "k8s"] = Field(
        "default",
        description="k8s: every step is a Kubernetes Job (infra/k8s/executor.yaml); default: see definitions.",
    )
    environment: Literal["embedded", "production"] = Field(
        "embedded", description="production: every API call needs a token (`optimum token create`)."
    )
    interaction_weights: dict[str, PositiveInt] = Field(
        default_factory=lambda: dict(dbt_project_vars()["interaction_weights"]),
        description="Implicit-feedback weight of each interaction type (whole numbers; default: dbt_project.yml).",
    )
    half_life_days: float = Field(
        default_factory=lambda: float(dbt_project_vars()["half_life_days"]),
        gt=0,
        description="An interaction loses half its weight every this many days (default: dbt_project.yml).",
    )
    min_decay: float = Field(
        default_factory=lambda: float(dbt_project_vars()["min_decay"]),
        gt=0,
        lt=1,
        description="The smallest share of its weight an interaction keeps, however old (default: dbt_project.yml).",
    )
    serving: ServingSettings = Field(default_factory=ServingSettings, description="The inference service.")
    landing: LandingSettings = Field(default_factory=LandingSettings, description="Validation of deliveries.")

    # Backups (orchestration/backup.py): where they go, how long they stay, and the production state that
    # lives outside the state folder and the warehouse (the MLflow server's database and artifact folder).
    backup_dir: Path = Field(Path("backups"), description="Folder of `optimum backup` files, off the state disk.")
    backup_cron: str = Field("0 3 * * *", description="When the nightly_backup schedule runs (cron, UTC).")
    backup_retention_days: int = Field(14, ge=0, description="Backups older than this before the newest are deleted.")
    mlflow_backend_dsn: str = Field("", description="PostgreSQL DSN of the MLflow server's backend store, to back up.")
    # A string, empty for none, like the DSN above: `as_env` must round-trip it through the environment.
    mlflow_artifacts_destination: str = Field(
        "", description="The MLflow server's --artifacts-destination, to back up."
    )

    # The closed loop: forecast snapshots, monitoring thresholds, alerts, the A/B verdict.
    snapshot_start: date = Field(date(2023, 1, 2), description="First as-of week of the forecast snapshots.")
    snapshot_backtest_origins: int = Field(
        2, ge=1, le=5, description="Backtest origins behind each snapshot's model choice and promised MASE."
    )
    accuracy_max_mase_ratio: float = Field(
        1.5,
        gt=0,
        description="Accuracy check fails when a snapshot's MASE exceeds the backtest's promise by this factor.",
    )
    drift_max_distance: float = Field(
        0.2, gt=0, le=1, description="Drift check fails above this Jensen-Shannon distance."
    )
    drift_recent_days: int = Field(
        28, ge=7, description="Recent window compared with the window before it (data's dates)."
    )
    drift_reference_days: int = Field(182, ge=7, description="Reference window: the training data just before.")
    hit_rate_window_days: int = Field(7, ge=1, description="An interaction this soon after a recommendation is a hit.")
    hit_rate_min: float = Field(0.01, ge=0, le=1, description="Outcome check warns below this hit rate.")
    alert_webhook_url: str = Field("", description="Alerts are also POSTed here (JSON) when set.")
    ab_min_answers: int = Field(200, ge=1, description="Answers per arm before the A/B report decides.")
    ab_alpha: float = Field(0.05, gt=0, lt=1, description="Significance level of the A/B z-test.")
    ab_promote_winner: bool = Field(False, description="A challenger that wins the A/B test becomes champion.")
    # --- Prospector: the Places-style API source, lead scoring and the daily lead target ---
    places_api_url: str = Field("", description="Places-style search API base URL; empty: that source is skipped.")
    places_api_key: SecretStr = Field(SecretStr(""), description="API key, sent only in a header, never logged.")
    places_queries: str = Field(
        "car repair,tyre shop,auto electrician,body shop", description="Comma-separated search queries."
    )
    places_areas: str = Field("", description="Comma-separated areas searched; empty: the lead target cities.")
    places_max_requests: int = Field(200, ge=1, description="Requests one run may spend of the key's quota.")
    places_requests_per_second: float = Field(5.0, gt=0, description="Rate limit of the Places API client.")
    lead_target_cities: str = Field(
        "", description="Comma-separated cities the sales team covers; empty: every city counts as in area."
    )
    lead_weight_category_fit: float = Field(30, ge=0, description="Score points for a category that buys parts.")
    lead_weight_contact: float = Field(20, ge=0, description="Score points for phone, website and address.")
    lead_weight_reputation: float = Field(15, ge=0, description="Score points for rating and review volume.")
    lead_weight_target_city: float = Field(20, ge=0, description="Score points for a city in lead_target_cities.")
    lead_weight_multi_source: float = Field(5, ge=0, description="Score points for being seen on several sources.")
    lead_weight_recency: float = Field(10, ge=0, description="Score points for being seen in the latest scrapes.")
    lead_daily_new_target: int = Field(20, ge=0, description="New leads a scrape day should find (asset check).")
    lead_precision_k: int = Field(20, ge=1, description="k of precision@k when the outcome model is compared.")

    @field_validator("home", "landing_dir", "expectations_dir", "backup_dir")
    @classmethod
    def _absolute(cls, path: Path) -> Path:
        return path.expanduser().resolve()

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def duckdb_path(self) -> Path:
        return self.home / "warehouse.duckdb"

    @property
    def mlflow_dir(self) -> Path:
        return self.home / "mlflow"

    @property
    def bentoml_home(self) -> Path:
        return self.home / "bentoml"

    @property
    def tracking_uri(self) -> str:
        """The MLflow store: an explicit URI (a server), else the warehouse's Postgres, else SQLite under home."""
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        if self.target is Target.POSTGRES:
            return "postgresql+psycopg2://" + self.pg_dsn.split("://", 1)[1]
        return f"sqlite:///{self.mlflow_dir / 'mlflow.db'}"

    @property
    def mlflow_artifacts_dir(self) -> Path:
        return self.mlflow_dir / "artifacts"

    @property
    def seed_urls(self) -> list[str]:
        return [url.strip() for url in self.lead_seed_urls.split(",") if url.strip()]

    @property
    def target_cities(self) -> list[str]:
        return _split(self.lead_target_cities)

    @property
    def places_searches(self) -> list[tuple[str, str]]:
        """(query, area) pairs the Places connector runs: every query in every area."""
        areas = _split(self.places_areas) or self.target_cities
        return [(query, area) for area in areas for query in _split(self.places_queries)]

    @property
    def lead_score_weights(self) -> dict[str, float]:
        prefix = "lead_weight_"
        return {
            name.removeprefix(prefix): getattr(self, name)
            for name in type(self).model_fields
            if name.startswith(prefix)
        }

    @cached_property
    def pg(self) -> dict[str, str]:
        """The DSN split into the parts dbt's postgres profile wants."""
        parsed = urlparse(self.pg_dsn)
        if parsed.scheme not in ("postgresql", "postgres") or not parsed.path.strip("/"):
            raise ValueError(f"OPTIMUM_PG_DSN must look like postgresql://user@host:5432/db, got {self.pg_dsn!r}")
        return {
            "host": parsed.hostname or "127.0.0.1",
            "port": str(parsed.port or 5432),
            "user": unquote(parsed.username or "postgres"),
            "password": unquote(parsed.password or ""),
            "dbname": parsed.path.strip("/"),
        }

    def dbt_env(self) -> dict[str, str]:
        """Environment variables read by dbt_project/profiles.yml."""
        env = {"OPTIMUM_TARGET": self.target.value, "OPTIMUM_DUCKDB_PATH": str(self.duckdb_path)}
        if self.target is Target.POSTGRES:
            env |= {f"OPTIMUM_PG_{key.upper()}": value for key, value in self.pg.items()}
        return env

    def dbt_vars(self) -> dict:
        """The domain facts handed to every dbt invocation (`--vars`), so the score mart and the Python
        models' own scoring (ml.recommend.scores_from_events) always use the same numbers."""
        return {
            "interaction_weights": self.interaction_weights,
            "half_life_days": self.half_life_days,
            "min_decay": self.min_decay,
        }

    def as_env(self) -> dict[str, str]:
        """These settings as the OPTIMUM_* variables that rebuild them in another process (the service)."""
        return _as_env(self, "OPTIMUM_")

    def ensure_dirs(self) -> None:
        for path in (self.home, self.dagster_home, self.mlflow_dir, self.bentoml_home):
            path.mkdir(parents=True, exist_ok=True)


def _split(values: str) -> list[str]:
    return [value.strip() for value in values.split(",") if value.strip()]


def _as_env(settings: BaseSettings, prefix: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for name, value in settings.model_dump(mode="json").items():
        nested = getattr(settings, name)
        if isinstance(nested, BaseSettings):
            env |= _as_env(nested, nested.model_config["env_prefix"])
        elif value is None:
            continue  # unset: the other process reads the same default (no variable spells None)
        else:
            env[f"{prefix}{name.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    return env
