"""Task functions for the task tests, in a module importable by name (so dill can carry them)."""

from __future__ import annotations


def add(a: int, b: int) -> int:
    return a + b


async def async_add(a: int, b: int) -> int:
    return a + b
