"""Postpone creating a Redis client until a backend first talks to Redis."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from alsek.utils.printing import auto_repr


class LazyClient:
    """Wrap a function that builds a client, so building a backend opens no connection.

    Useful when a backend is defined at import time (for example next to task definitions)
    but Redis is only reachable, or its settings only known, at run time. A backend calls
    ``get()`` the first time its ``conn`` is read and keeps the client it returns.

    Args:
        client_func: called with no arguments; returns the client.
    """

    def __init__(self, client_func: Callable[[], Any]) -> None:
        self.client_func = client_func

    def get(self) -> Any:
        """Build and return a client; every call builds a new one."""
        return self.client_func()

    def __repr__(self) -> str:
        return auto_repr(self, client_func=self.client_func)
