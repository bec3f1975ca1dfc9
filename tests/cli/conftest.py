"""The CLI tests share the operator tests' fixtures and task module (``tests/admin``)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "admin"))

from opsfixtures import admin, ops, ops_env, pools

__all__ = ["admin", "ops", "ops_env", "pools"]
