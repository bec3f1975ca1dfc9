"""What the components built on a backend (status tracker, result store) share: checking the
backend's kind, encoding values with clear errors, rebuilding a backend in another process."""

from __future__ import annotations

from typing import Any

import dill

from alsek.storage.backends.base import BaseBackend


def check_backend_kind(owner: str, backend: BaseBackend, want_async: bool) -> None:
    """Refuse a backend of the wrong kind with an error that says what to use instead."""
    if want_async and not backend.IS_ASYNC:
        raise AssertionError(f"Backend is not async: {owner} needs an async backend")
    if not want_async and backend.IS_ASYNC:
        twin = f"Async{owner}"
        raise AssertionError(f"Backend is async: {owner} needs a sync backend (or use {twin})")


def encode_value(backend: BaseBackend, value: Any, what: str) -> str:
    """``value`` in the backend's serialized form; ``TypeError`` naming ``what`` if it cannot be,
    raised before anything is sent."""
    try:
        return str(backend.serializer.forward(value))
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"{what} cannot be serialized by {backend.serializer!r} ({error}); nothing was written"
        ) from error


def rebuild_backend(encoded: bytes) -> BaseBackend:
    """A backend (with a new connection pool) from ``BaseBackend.encode()``'s bytes."""
    data = dill.loads(encoded)
    backend: BaseBackend = data["backend"].from_settings(data["settings"])
    return backend
