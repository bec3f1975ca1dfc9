"""The dashboard tests use the operator tests' tasks and fixtures (``tests/admin``), and a
Starlette ``TestClient`` (plain HTTP, no browser) on a dashboard of their namespace."""

import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "admin"))

from opsfixtures import admin, ops, ops_env, pools
from starlette.testclient import TestClient

from alsek.testing.processes import free_port
from alsek.web import create_app

__all__ = ["admin", "client", "free_tcp_port", "ops", "ops_env", "pools"]


@pytest.fixture
def free_tcp_port() -> int:
    """A loopback port nothing listens on."""
    return free_port()


@pytest.fixture
def client(ops: ModuleType) -> Iterator[TestClient]:
    """A client of a dashboard over ``opswork``'s broker (no refresh)."""
    with TestClient(
        create_app(ops.broker, refresh_ms=0, tasks=[ops.add, ops.sleepy, ops.boom, ops.side])
    ) as test_client:
        yield test_client
