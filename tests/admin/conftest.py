"""The operator tests' fixtures (``opsfixtures``)."""

from opsfixtures import admin, ops, ops_env, pools

__all__ = ["admin", "ops", "ops_env", "pools"]
