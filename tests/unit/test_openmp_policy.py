"""The model library asks OpenMP to wait passively (see ml/__init__.py), unless the environment says otherwise."""

import os
import subprocess
import sys


def _policy_after_import(env: dict[str, str]) -> str:
    code = "import ml, os; print(os.environ['OMP_WAIT_POLICY'])"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout


def test_importing_ml_sets_passive_waiting():
    env = {name: value for name, value in os.environ.items() if name != "OMP_WAIT_POLICY"}
    assert _policy_after_import(env).strip() == "PASSIVE"


def test_an_explicit_policy_wins():
    assert _policy_after_import(os.environ | {"OMP_WAIT_POLICY": "ACTIVE"}).strip() == "ACTIVE"
