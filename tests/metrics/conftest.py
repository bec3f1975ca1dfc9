"""The metrics tests use the operator tests' fixtures (``tests/admin``): pools in subprocesses
over a task module of their own (``metricswork``)."""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "admin"))
sys.path.insert(0, str(HERE))

import pytest  # noqa: E402
from opsfixtures import ops_env, pools  # noqa: E402

__all__ = ["metrics_env", "ops_env", "pools"]


@pytest.fixture
def metrics_env(ops_env: dict[str, str]) -> dict[str, str]:
    """``ops_env`` with this directory on the path too (pools import ``metricswork``)."""
    ops_env["PYTHONPATH"] = os.pathsep.join([str(HERE), ops_env["PYTHONPATH"]])
    return ops_env
