"""Great Expectations suites in expectations/*.json and the validate_frame API around them."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from orchestration.quality.expectations import (
    EXPECTATIONS_DIR,
    SUITE_NAMES,
    SuiteDefinitionError,
    SuiteResult,
    get_context,
    load_suite,
    validate_frame,
)

N = 20
T0 = pd.Timestamp("2024-03-01 09:00:00")


# Clean frames with the dtypes DuckDB/pandas 3 hand back (str, datetime64, Int64, boolean).
def _raw_sales(n: int = N) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "order_id": pd.array([f"O{i // 2:05d}" for i in range(n)], dtype="str"),
            "order_date": pd.to_datetime("2024-01-01") + pd.to_timedelta(np.arange(n) // 2, unit="D"),
            "product_id": pd.array([f"P{i % 2}" for i in range(n)], dtype="str"),
            "quantity": pd.array(np.arange(n) % 4 + 1, dtype="int64"),
            "unit_price": np.linspace(0.0, 250.0, n),
            "customer_id": pd.array([None if i % 3 == 0 else f"C{i}" for i in range(n)], dtype="str"),
            "_load_id": pd.array([1] * n, dtype="int64"),
        }
    )


def _raw_interactions(n: int = N) -> pd.DataFrame:
    kinds = ["view", "like", "cart", "purchase"]
    return pd.DataFrame(
        {
            "event_id": pd.array([f"E{i}" for i in range(n)], dtype="str"),
            "user_id": pd.array([f"U{i % 5}" for i in range(n)], dtype="str"),
            "product_id": pd.array([f"P{i % 7}" for i in range(n)], dtype="str"),
            "interaction_type": pd.array([kinds[i % 4] for i in range(n)], dtype="str"),
            "rating": [None if i % 2 else float(i % 5 + 1) for i in range(n)],
            "event_at": T0 + pd.to_timedelta(np.arange(n), unit="min"),
            "session_id": pd.array([None if i % 4 == 0 else f"S{i // 4}" for i in range(n)], dtype="str"),
            "_load_id": pd.array([1] * n, dtype="int64"),
        }
    )


def _raw_leads(n: int = N) -> pd.DataFrame:
    phones = ["+1 (555) 123-4567", "555-123-4567", "+44 20 7946 0958", "(02) 9876 5432 ext. 12", None]
    return pd.DataFrame(
        {
            "name": pd.array([f"Garage {i}" for i in range(n)], dtype="str"),
            "category": "auto repair",
            "address": pd.array([f"{i} Main St" for i in range(n)], dtype="str"),
            "city": "Springfield",
            "phone": pd.array([phones[i % len(phones)] for i in range(n)], dtype="str"),
            "website": pd.array([None if i % 2 else f"https://g{i}.example" for i in range(n)], dtype="str"),
            "rating": [None if i % 3 == 0 else (i % 11) / 2 for i in range(n)],
            "review_count": pd.array([None if i % 3 == 0 else i * 7 for i in range(n)], dtype="Int64"),
            "source_url": pd.array([f"https://directory.example/biz/{i}" for i in range(n)], dtype="str"),
            "scraped_at": T0,
        }
    )


def _fct_sales_daily(n: int = N) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "product_id": pd.array([f"P{i % 4}" for i in range(n)], dtype="str"),
            "sales_date": pd.to_datetime("2024-01-01") + pd.to_timedelta(np.arange(n) // 4, unit="D"),
            "quantity": pd.array(np.arange(n) % 3, dtype="int64"),
            "revenue": (np.arange(n) % 3) * 9.5,
            "n_orders": pd.array(np.arange(n) % 3, dtype="int64"),
            "avg_unit_price": [9.5 if i % 3 else None for i in range(n)],
        }
    )


def _user_item_scores(n: int = N) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": pd.array([f"U{i // 4}" for i in range(n)], dtype="str"),
            "product_id": pd.array([f"P{i % 4}" for i in range(n)], dtype="str"),
            "score": 0.25 + np.arange(n) / 10,
            "n_events": pd.array(np.arange(n) % 5 + 1, dtype="Int64"),
            "last_interaction_at": T0 + pd.to_timedelta(np.arange(n), unit="h"),
            "has_purchased": pd.array([i % 3 == 0 for i in range(n)], dtype="boolean"),
        }
    )


def _dim_products(n: int = N) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "product_id": pd.array([f"P{i:04d}" for i in range(n)], dtype="str"),
            "name": pd.array([f"Brake pad {i}" for i in range(n)], dtype="str"),
            "category": "brakes",
            "brand": "Acme",
            "price": np.linspace(0.0, 99.0, n),
            "stock_on_hand": pd.array([None if i % 5 == 0 else i for i in range(n)], dtype="Int64"),
        }
    )


CLEAN = {
    "raw_sales": _raw_sales,
    "raw_interactions": _raw_interactions,
    "raw_leads": _raw_leads,
    "fct_sales_daily": _fct_sales_daily,
    "user_item_scores": _user_item_scores,
    "dim_products": _dim_products,
}
HAS_ROW_COUNT_WARNING = {"fct_sales_daily", "user_item_scores", "dim_products"}


def _suite_doc(name: str) -> dict:
    return json.loads((EXPECTATIONS_DIR / f"{name}.json").read_text())


def _failed(result: SuiteResult) -> set[tuple[str, str | None]]:
    return {(r["expectation_type"], r["column"]) for r in result.failed}


def _only_failure(result: SuiteResult) -> dict:
    assert len(result.failed) == 1, result.to_markdown()
    return result.failed[0]


# ----------------------------------------------------------------------------------------- suite files


def test_suite_files_are_exactly_the_declared_suites():
    assert set(CLEAN) == set(SUITE_NAMES)
    assert {p.stem for p in EXPECTATIONS_DIR.glob("*.json")} == set(SUITE_NAMES)


@pytest.mark.parametrize("name", SUITE_NAMES)
def test_suite_file_loads_with_an_explicit_severity_on_every_expectation(name):
    import great_expectations as gx

    doc = _suite_doc(name)
    severities = [e.get("severity") for e in doc["expectations"]]
    assert doc["name"] == name
    assert severities and set(severities) <= {"critical", "warning"}
    assert "critical" in severities

    # Plain GX reads the file as-is (native format) and keeps every expectation and its severity.
    plain = gx.ExpectationSuite(**doc)
    assert [e.severity.value for e in plain.expectations] == severities

    suite = load_suite(name)
    assert isinstance(suite, gx.ExpectationSuite)
    assert suite.name == name
    assert [e.expectation_type for e in suite.expectations] == [e["type"] for e in doc["expectations"]]
    assert [e.severity.value for e in suite.expectations] == severities


def test_load_suite_rejects_what_gx_would_silently_drop(tmp_path):
    good = {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "a"}, "severity": "critical"}
    cases = {
        "bad_severity": {**good, "severity": "error"},
        "no_severity": {k: v for k, v in good.items() if k != "severity"},
        "unknown_type": {**good, "type": "expect_column_values_to_be_lovely"},
        "bad_kwargs": {**good, "type": "expect_column_values_to_be_between", "kwargs": {"colum": "a"}},
    }
    for case, expectation in cases.items():
        doc = {"name": case, "expectations": [good, expectation]}
        (tmp_path / f"{case}.json").write_text(json.dumps(doc))
        with pytest.raises(SuiteDefinitionError):
            load_suite(case, directory=tmp_path)
    (tmp_path / "renamed.json").write_text(json.dumps({"name": "other", "expectations": [good]}))
    with pytest.raises(SuiteDefinitionError, match="name"):
        load_suite("renamed", directory=tmp_path)
    with pytest.raises(FileNotFoundError):
        load_suite("no_such_suite", directory=tmp_path)
    (tmp_path / "ok.json").write_text(json.dumps({"name": "ok", "expectations": [good]}))
    assert len(load_suite("ok", directory=tmp_path).expectations) == 1


# ------------------------------------------------------------------------------------------ validation


@pytest.mark.parametrize("name", SUITE_NAMES)
def test_clean_frame_passes_every_expectation(name):
    result = validate_frame(CLEAN[name](), name)
    assert result.n_failed == 0, result.to_markdown()
    assert result.success is True
    assert result.n_expectations == len(_suite_doc(name)["expectations"]) == len(result.results)
    assert result.rows_evaluated == N
    file_order = [e["type"] for e in _suite_doc(name)["expectations"]]
    assert [r["expectation_type"] for r in result.results] == file_order


def _set(column, rows, value):
    def mutate(df):
        df[column] = df[column].astype(object)
        for row in rows:
            df.at[row, column] = value
        return df

    return mutate


def _copy_key(columns, src, dst):
    def mutate(df):
        for column in columns:
            df.at[dst, column] = df.at[src, column]
        return df

    return mutate


BETWEEN = "expect_column_values_to_be_between"
NOT_NULL = "expect_column_values_to_not_be_null"
UNIQUE = "expect_column_values_to_be_unique"
COMPOUND_UNIQUE = "expect_compound_columns_to_be_unique"
IN_SET = "expect_column_values_to_be_in_set"
REGEX = "expect_column_values_to_match_regex"
ROW_COUNT = "expect_table_row_count_to_be_between"

# suite, mutation, failing (expectation_type, column), unexpected_count, a planted value seen in the sample
VIOLATIONS = [
    ("raw_sales", _set("quantity", [3, 4], 0), (BETWEEN, "quantity"), 2, 0),
    ("raw_sales", _set("unit_price", [5], -1.5), (BETWEEN, "unit_price"), 1, -1.5),
    ("raw_sales", _set("order_date", [6], None), (NOT_NULL, "order_date"), 1, None),
    (
        "raw_sales",
        _copy_key(["order_id", "product_id"], 0, 2),
        (COMPOUND_UNIQUE, "order_id, product_id, _load_id"),
        2,
        {"order_id": "O00000", "product_id": "P0", "_load_id": 1},
    ),
    (
        "raw_interactions",
        _set("event_id", [1], "E0"),
        (COMPOUND_UNIQUE, "event_id, _load_id"),
        2,
        {"event_id": "E0", "_load_id": 1},
    ),
    (
        "raw_interactions",
        _set("interaction_type", [2, 3, 9], "click"),
        (IN_SET, "interaction_type"),
        3,
        "click",
    ),
    ("raw_interactions", _set("rating", [0], 6.0), (BETWEEN, "rating"), 1, 6.0),
    ("raw_interactions", _set("user_id", [7], None), (NOT_NULL, "user_id"), 1, None),
    ("raw_leads", _set("name", [1], None), (NOT_NULL, "name"), 1, None),
    ("raw_leads", _set("source_url", [4], None), (NOT_NULL, "source_url"), 1, None),
    ("raw_leads", _set("rating", [1], 7.5), (BETWEEN, "rating"), 1, 7.5),
    ("raw_leads", _set("review_count", [2], -3), (BETWEEN, "review_count"), 1, -3),
    ("user_item_scores", _set("score", [3, 4], 0.0), (BETWEEN, "score"), 2, 0.0),
    # Mart suites hold only what the mart's dbt tests do not check (not-null, unique, non-negative).
]


@pytest.mark.parametrize(
    ("name", "mutate", "failing", "count", "sample"),
    VIOLATIONS,
    ids=[f"{v[0]}-{v[2][0].removeprefix('expect_')}-{v[2][1]}" for v in VIOLATIONS],
)
def test_planted_error_violation_fails_the_suite_and_is_reported(name, mutate, failing, count, sample):
    df = mutate(CLEAN[name]())
    result = validate_frame(df, name)
    assert result.success is False
    assert _failed(result) == {failing}, result.to_markdown()
    assert (result.n_failed, result.n_failed_errors, result.n_failed_warnings) == (1, 1, 0)
    failure = _only_failure(result)
    assert failure["severity"] == "critical"
    assert failure["unexpected_count"] == count
    # GX's unexpected_percent is over the non-null values (over all rows for not-null checks)
    column = failing[1]
    evaluated = N if "not_be_null" in failing[0] or column not in df else int(df[column].notna().sum())
    assert failure["unexpected_percent"] == pytest.approx(100 * count / evaluated)
    assert sample in failure["partial_unexpected_list"]
    assert failure["exception"] is None


WARNINGS = [
    ("raw_sales", _set("unit_price", [1, 2], 250_000.0), (BETWEEN, "unit_price"), 2),
    ("raw_leads", _set("phone", [0], "call us!"), (REGEX, "phone"), 1),
    ("dim_products", _set("stock_on_hand", [1], -4), (BETWEEN, "stock_on_hand"), 1),
    ("user_item_scores", _set("n_events", [2], 0), (BETWEEN, "n_events"), 1),
]


@pytest.mark.parametrize(("name", "mutate", "failing", "count"), WARNINGS, ids=[w[0] for w in WARNINGS])
def test_warning_only_violation_keeps_success_but_counts_the_warning(name, mutate, failing, count):
    result = validate_frame(mutate(CLEAN[name]()), name)
    assert result.success is True
    assert (result.n_failed, result.n_failed_errors, result.n_failed_warnings) == (1, 0, 1)
    failure = _only_failure(result)
    assert (failure["expectation_type"], failure["column"]) == failing
    assert failure["severity"] == "warning"
    assert failure["unexpected_count"] == count


def test_error_and_warning_together_count_separately():
    df = _set("unit_price", [1], 250_000.0)(_set("quantity", [2], 0)(_raw_sales()))
    result = validate_frame(df, "raw_sales")
    counts = (result.success, result.n_failed, result.n_failed_errors, result.n_failed_warnings)
    assert counts == (False, 2, 1, 1)


@pytest.mark.parametrize("name", SUITE_NAMES)
def test_empty_typed_frame_validates(name):
    result = validate_frame(CLEAN[name]().iloc[0:0], name)
    assert result.rows_evaluated == 0
    assert result.success is True, result.to_markdown()
    assert result.n_failed_errors == 0
    if name in HAS_ROW_COUNT_WARNING:
        assert _failed(result) == {(ROW_COUNT, None)}
        assert result.n_failed_warnings == 1
    else:
        assert result.n_failed == 0


@pytest.mark.parametrize("name", ["raw_sales", "raw_interactions", "raw_leads"])
def test_empty_untyped_frame_with_the_columns_passes_raw_suites(name):
    result = validate_frame(pd.DataFrame(columns=list(CLEAN[name]().columns)), name)
    assert result.n_failed == 0, result.to_markdown()


def test_dim_products_accepts_inferred_members_with_null_attributes():
    df = _dim_products()
    for column in ("name", "category", "brand", "price", "stock_on_hand"):
        df = _set(column, [3], None)(df)
    assert validate_frame(df, "dim_products").n_failed == 0


def test_postgres_style_object_columns_validate():
    """psycopg2 rows -> DataFrame.from_records: Decimal money and datetime.date in object columns."""
    import datetime as dt
    from decimal import Decimal

    df = _raw_sales().head(3).astype(object)
    df["order_date"] = [dt.date(2024, 1, 1), dt.date(2024, 1, 2), dt.date(2024, 1, 2)]
    df["unit_price"] = [Decimal("10.0000"), Decimal("-1.0000"), Decimal("250000.0000")]
    columns = list(df.columns)
    result = validate_frame(pd.DataFrame.from_records(df.to_records(index=False), columns=columns), "raw_sales")
    assert _failed(result) == {("expect_column_values_to_be_between", "unit_price")}
    assert (result.n_failed_errors, result.n_failed_warnings) == (1, 1)  # below 0: error; above the cap: warning
    assert json.dumps(result.to_dict(), allow_nan=False)
    empty = validate_frame(pd.DataFrame.from_records([], columns=columns), "raw_sales")
    assert empty.success and empty.n_failed == 0


def test_missing_column_fails_without_raising():
    result = validate_frame(_raw_sales().drop(columns=["quantity"]), "raw_sales")
    assert result.success is False
    by_key = {(r["expectation_type"], r["column"]): r for r in result.results}
    schema = by_key[("expect_table_columns_to_match_set", None)]
    assert not schema["success"] and schema["details"]["mismatched"]["missing"] == ["quantity"]
    not_null = by_key[("expect_column_values_to_not_be_null", "quantity")]
    assert not not_null["success"] and "quantity" in not_null["exception"]
    assert by_key[("expect_column_values_to_not_be_null", "order_id")]["success"]


def test_results_do_not_leak_between_frames_on_the_cached_context():
    dirty = _set("quantity", [0], 0)(_raw_sales())
    outcomes = [validate_frame(df, "raw_sales").success for df in (dirty, _raw_sales(), dirty, _raw_sales())]
    assert outcomes == [False, True, False, True]
    assert get_context() is get_context()


def test_to_markdown_names_the_failing_expectation():
    result = validate_frame(_set("interaction_type", [2], "click")(_raw_interactions()), "raw_interactions")
    md = result.to_markdown()
    fail_rows = [line for line in md.splitlines() if line.startswith("| FAIL")]
    assert len(fail_rows) == 1
    assert "expect_column_values_to_be_in_set" in fail_rows[0]
    assert "interaction_type" in fail_rows[0] and "click" in fail_rows[0] and "critical" in fail_rows[0]
    assert md.startswith("**raw_interactions**: FAILED")
    assert "FAIL" not in result.to_markdown(only_failed=True).split("\n", 1)[0].replace("FAILED", "")
    assert len(result.to_markdown(only_failed=True).splitlines()) == 5  # summary, blank, header, rule, 1 row

    clean = validate_frame(_raw_interactions(), "raw_interactions").to_markdown()
    assert "PASSED" in clean and "| FAIL" not in clean
    warned = validate_frame(_set("phone", [0], "n/a")(_raw_leads()), "raw_leads").to_markdown()
    assert "PASSED with warnings" in warned and "expect_column_values_to_match_regex" in warned


def test_result_is_json_serializable():
    key_columns = ["order_id", "product_id", "_load_id"]
    df = _copy_key(key_columns, 0, 8)(_set("unit_price", [1], 250_000.0)(_raw_sales()))
    payload = json.loads(json.dumps(validate_frame(df, "raw_sales").to_dict(), allow_nan=False))
    assert payload["n_failed"] == 2
    compound = next(r for r in payload["results"] if r["column"] == ", ".join(key_columns))
    assert compound["unexpected_count"] == 2


def test_validate_frame_rejects_non_frames_and_unknown_suites():
    with pytest.raises(TypeError):
        validate_frame([{"order_id": "O1"}], "raw_sales")  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError):
        validate_frame(_raw_sales(), "raw_salez")


def test_400k_row_mart_is_validated_whole():
    n = 400_000
    rng = np.random.default_rng(7)
    df = pd.DataFrame(
        {
            "user_id": pd.array(np.repeat([f"U{i:04d}" for i in range(500)], 800), dtype="str"),
            "product_id": pd.array(np.tile([f"P{i:04d}" for i in range(800)], 500), dtype="str"),
            "score": rng.random(n) * 10 + 0.01,
            "n_events": rng.integers(1, 5, n),
            "last_interaction_at": np.tile(pd.date_range("2023-01-01", periods=800, freq="D").values, 500),
            "has_purchased": rng.random(n) < 0.2,
        }
    )
    df.loc[123_456, "score"] = 0.0
    result = validate_frame(df, "user_item_scores")
    assert result.rows_evaluated == n
    assert _failed(result) == {("expect_column_values_to_be_between", "score")}
