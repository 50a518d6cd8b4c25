"""Validate pandas DataFrames against the Great Expectations suites stored in ``expectations/``.

Each suite is one JSON file, ``expectations/<suite_name>.json``, in GX 1.x's own serialized
ExpectationSuite format (``gx.ExpectationSuite(**json.load(f))`` loads it). Every expectation carries
GX's native ``severity`` field (``critical`` / ``warning`` / ``info``, GX >= 1.5): a failed
``critical`` expectation is an error and makes the result unsuccessful (blocking); ``warning`` and
``info`` failures are counted and reported but do not.

    result = validate_frame(df, "raw_sales")
    result.success, result.n_failed_errors, result.to_markdown()

Great Expectations is imported lazily (it is slow to import) and one ephemeral, in-memory Data
Context with a single pandas "whole dataframe" batch definition is created per process and reused.
Validation runs under a process-wide lock, because GX's execution engine keeps per-datasource state.
No Dagster imports here: the orchestration layer wraps ``validate_frame`` in asset checks.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import threading
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import great_expectations as gx

EXPECTATIONS_DIR = Path(__file__).resolve().parents[2] / "expectations"

SUITE_NAMES: tuple[str, ...] = (
    "raw_sales",
    "raw_interactions",
    "raw_leads",
    "fct_sales_daily",
    "user_item_scores",
    "dim_products",
)

SEVERITIES: tuple[str, ...] = ("critical", "warning", "info")  # GX's FailureSeverity values
ERROR_SEVERITIES = frozenset({"critical"})  # failures that make SuiteResult.success False
WARNING_SEVERITIES = frozenset({"warning"})
PARTIAL_UNEXPECTED_COUNT = 5

_ID_NAMESPACE = uuid.UUID("6f0c2f0e-9a39-4a57-8d0e-2b8f7f4c1a10")
_LOCK = threading.RLock()
_RUNTIME: dict[str, Any] = {}


class SuiteDefinitionError(ValueError):
    """A suite file is malformed or holds an expectation GX would not accept."""


# --------------------------------------------------------------------------------------------- suites


def suite_path(suite_name: str, directory: str | Path | None = None) -> Path:
    return Path(directory or EXPECTATIONS_DIR) / f"{suite_name}.json"


def _check_definition(doc: Any, suite_name: str, path: Path) -> None:
    if not isinstance(doc, dict):
        raise SuiteDefinitionError(f"{path}: top level must be a JSON object")
    if doc.get("name") != suite_name:
        raise SuiteDefinitionError(f"{path}: 'name' is {doc.get('name')!r}, expected {suite_name!r}")
    expectations = doc.get("expectations")
    if not isinstance(expectations, list) or not expectations:
        raise SuiteDefinitionError(f"{path}: 'expectations' must be a non-empty list")
    for i, exp in enumerate(expectations):
        where = f"{path}: expectation #{i}"
        if not isinstance(exp, dict) or not isinstance(exp.get("type"), str):
            raise SuiteDefinitionError(f"{where}: needs a string 'type'")
        if not isinstance(exp.get("kwargs"), dict):
            raise SuiteDefinitionError(f"{where} ({exp['type']}): needs a 'kwargs' object")
        if exp.get("severity") not in SEVERITIES:
            raise SuiteDefinitionError(
                f"{where} ({exp['type']}): 'severity' must be set explicitly to one of {list(SEVERITIES)} "
                f"(use 'critical' for blocking errors), got {exp.get('severity')!r}"
            )


def load_suite(suite_name: str, directory: str | Path | None = None) -> gx.ExpectationSuite:
    """Read ``<directory>/<suite_name>.json`` into a ``gx.ExpectationSuite``.

    Stricter than GX itself: GX silently drops (only logs) expectations whose configuration is
    invalid; here any such expectation, a missing/unknown severity or a name mismatch raises
    SuiteDefinitionError. Expectations get deterministic ids so results map back to file order.
    """
    import great_expectations as gx

    path = suite_path(suite_name, directory)
    if not path.is_file():
        raise FileNotFoundError(f"no suite file {path} (known suites: {', '.join(SUITE_NAMES)})")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SuiteDefinitionError(f"{path}: invalid JSON: {exc}") from exc
    _check_definition(doc, suite_name, path)

    doc["expectations"] = [
        {**exp, "id": exp.get("id") or str(uuid.uuid5(_ID_NAMESPACE, f"{suite_name}/{i}"))}
        for i, exp in enumerate(doc["expectations"])
    ]
    try:
        suite = gx.ExpectationSuite(**doc)
    except Exception as exc:  # pydantic validation errors on bad kwargs surface here
        raise SuiteDefinitionError(f"{path}: {exc}") from exc
    if len(suite.expectations) != len(doc["expectations"]):
        built = {e.id for e in suite.expectations}
        dropped = [f"#{i} {exp['type']}" for i, exp in enumerate(doc["expectations"]) if exp["id"] not in built]
        raise SuiteDefinitionError(f"{path}: GX rejected expectation(s) {', '.join(dropped)}")
    return suite


# ------------------------------------------------------------------------------------------ GX runtime


def _batch_definition() -> Any:
    """The process-wide ephemeral context's pandas whole-dataframe batch definition (created once)."""
    with _LOCK:
        if "batch_definition" not in _RUNTIME:
            import great_expectations as gx
            from great_expectations.data_context.types.base import (
                DataContextConfig,
                InMemoryStoreBackendDefaults,
                ProgressBarsConfig,
            )

            config = DataContextConfig(
                store_backend_defaults=InMemoryStoreBackendDefaults(),
                analytics_enabled=False,
                progress_bars=ProgressBarsConfig(globally=False),
            )
            context = gx.get_context(mode="ephemeral", project_config=config)
            asset = context.data_sources.add_pandas("optimum_quality").add_dataframe_asset("frame")
            _RUNTIME["context"] = context
            _RUNTIME["batch_definition"] = asset.add_batch_definition_whole_dataframe("whole_frame")
        return _RUNTIME["batch_definition"]


def get_context() -> Any:
    """The cached ephemeral GX Data Context (one per process)."""
    _batch_definition()
    return _RUNTIME["context"]


# ---------------------------------------------------------------------------------------------- results


@dataclass
class SuiteResult:
    """Outcome of one suite on one frame. ``success`` is False iff an error-severity expectation failed."""

    suite_name: str
    success: bool
    n_expectations: int
    n_failed: int
    n_failed_errors: int  # severity critical
    n_failed_warnings: int  # severity warning (info failures only count in n_failed)
    rows_evaluated: int
    results: list[dict[str, Any]] = field(default_factory=list)  # one per expectation, file order

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.results if not r["success"]]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable form (for check metadata / logs)."""
        return asdict(self)

    def to_markdown(self, *, only_failed: bool = False) -> str:
        """A compact summary line plus one table row per expectation (failures first)."""
        if self.n_failed == 0:
            verdict = "PASSED"
        elif self.success:
            verdict = "PASSED with warnings"
        else:
            verdict = "FAILED"
        lines = [
            f"**{self.suite_name}**: {verdict} — {self.n_failed}/{self.n_expectations} expectations "
            f"failed ({self.n_failed_errors} error, {self.n_failed_warnings} warning) "
            f"on {self.rows_evaluated:,} rows",
        ]
        rows = sorted(self.results, key=lambda r: (r["success"], SEVERITIES.index(r["severity"])))
        if only_failed:
            rows = [r for r in rows if not r["success"]]
        if rows:
            lines += [
                "",
                "| status | severity | expectation | column | unexpected | details |",
                "|---|---|---|---|---|---|",
            ]
            for r in rows:
                lines.append(
                    "| "
                    + " | ".join(
                        _md_cell(x)
                        for x in (
                            "ok" if r["success"] else "FAIL",
                            r["severity"],
                            r["expectation_type"],
                            r["column"] or "",
                            _format_unexpected(r),
                            _format_details(r),
                        )
                    )
                    + " |"
                )
        return "\n".join(lines)


def _format_unexpected(r: dict[str, Any]) -> str:
    count, pct = r["unexpected_count"], r["unexpected_percent"]
    if not count:
        return "" if count is None else "0"
    if pct is None:
        return f"{count:,}"
    return f"{count:,} ({'<0.01' if pct < 0.01 else f'{pct:.2f}'}%)"


def _format_details(r: dict[str, Any]) -> str:
    if r["exception"]:
        return f"error: {r['exception']}"
    if r["success"]:
        return ""
    if r["partial_unexpected_list"]:
        return "e.g. " + json.dumps(r["partial_unexpected_list"], default=str)
    if r["details"] is not None:
        return json.dumps(r["details"], default=str)
    if r["observed_value"] is not None:
        return "observed " + json.dumps(r["observed_value"], default=str)
    return ""


def _md_cell(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("|", "\\|")


def _jsonable(value: Any) -> Any:
    """Convert a GX/pandas/numpy value to plain JSON types (NaN/NaT/NA -> None, dates -> ISO)."""
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset | np.ndarray):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        f = float(value)
        return f if math.isfinite(f) else (None if math.isnan(f) else str(f))
    if isinstance(value, decimal.Decimal):
        return float(value) if value.is_finite() else None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    if isinstance(value, pd.Timestamp | dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, pd.Timedelta | dt.timedelta | np.timedelta64 | np.datetime64):
        return str(value)
    return str(value)


def _exception_message(info: Any) -> str | None:
    """First exception message in a GX exception_info (flat, or keyed by metric id)."""
    if not info:
        return None
    if isinstance(info, dict):
        if "raised_exception" in info:
            return (info.get("exception_message") or "exception raised") if info["raised_exception"] else None
        for sub in info.values():
            message = _exception_message(sub)
            if message:
                return message
        return None
    if getattr(info, "raised_exception", False):
        return getattr(info, "exception_message", None) or "exception raised"
    return None


def _column_of(kwargs: dict[str, Any]) -> str | None:
    if "column" in kwargs:
        return str(kwargs["column"])
    if "column_list" in kwargs:
        return ", ".join(map(str, kwargs["column_list"]))
    if "column_A" in kwargs and "column_B" in kwargs:
        return f"{kwargs['column_A']}, {kwargs['column_B']}"
    return None


_DOMAIN_KWARGS = ("column", "column_list", "batch_id")


def _outcome(config: Any, result: Any) -> dict[str, Any]:
    kwargs = dict(config.kwargs)
    severity = getattr(config.severity, "value", config.severity) or "critical"
    details = result.result or {}
    exception = _exception_message(result.exception_info)
    partial = details.get("partial_unexpected_list")
    return {
        "expectation_type": config.type,
        "column": _column_of(kwargs),
        "kwargs": _jsonable({k: v for k, v in kwargs.items() if k not in _DOMAIN_KWARGS}),
        "severity": str(severity),
        "success": bool(result.success) and exception is None,
        "unexpected_count": _jsonable(details.get("unexpected_count")),
        "unexpected_percent": _jsonable(details.get("unexpected_percent")),
        "partial_unexpected_list": _jsonable(partial[:PARTIAL_UNEXPECTED_COUNT]) if partial else [],
        "observed_value": _jsonable(details.get("observed_value")),
        "details": _jsonable(details.get("details")),
        "exception": exception,
        "description": config.description,
    }


# ------------------------------------------------------------------------------------------- validation


def validate_frame(df: pd.DataFrame, suite_name: str, *, directory: str | Path | None = None) -> SuiteResult:
    """Validate ``df`` against ``expectations/<suite_name>.json``.

    Never raises for bad data: a missing column makes the expectations on it fail with an
    ``exception`` message (a critical one then fails the suite). Raises for a missing or malformed
    suite file, or if ``df`` is not a DataFrame.
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"validate_frame expects a pandas DataFrame, got {type(df).__name__}")
    suite = load_suite(suite_name, directory)
    order = {e.id: i for i, e in enumerate(suite.expectations)}
    result_format = {"result_format": "BASIC", "partial_unexpected_count": PARTIAL_UNEXPECTED_COUNT}
    with _LOCK:
        batch = _batch_definition().get_batch(batch_parameters={"dataframe": df})
        validation = batch.validate(suite, result_format=result_format)

    if len(validation.results) != len(order):
        raise RuntimeError(
            f"GX returned {len(validation.results)} results for {len(order)} expectations in {suite_name}"
        )
    outcomes = sorted(
        ((order[r.expectation_config.id], _outcome(r.expectation_config, r)) for r in validation.results),
        key=lambda pair: pair[0],
    )
    results = [o for _, o in outcomes]
    failed = [r for r in results if not r["success"]]
    n_errors = sum(r["severity"] in ERROR_SEVERITIES for r in failed)
    return SuiteResult(
        suite_name=suite_name,
        success=n_errors == 0,
        n_expectations=len(results),
        n_failed=len(failed),
        n_failed_errors=n_errors,
        n_failed_warnings=sum(r["severity"] in WARNING_SEVERITIES for r in failed),
        rows_evaluated=len(df),
        results=results,
    )
