"""Fixtures of tests/test_analysis, registered once for every module."""
from analysis_fixtures import demo_eval_run  # noqa: F401
