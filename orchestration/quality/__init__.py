"""Data-quality checks: Great Expectations suites (expectations/*.json) run against pandas frames."""

from orchestration.quality.expectations import SUITE_NAMES, SuiteResult, load_suite, validate_frame

__all__ = ["SUITE_NAMES", "SuiteResult", "load_suite", "validate_frame"]
