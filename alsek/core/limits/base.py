"""What the sync and asyncio limiters share: their checks, keys and Redis protocol, as steps.

Each limiter is one atomic Lua script per operation (``scripts/*.lua``, sharing ``lib.lua``:
the server's clock), called through the engine's step vocabulary, so ``sync`` and ``asyncio``
only choose the driver. Every key has a TTL, and all keys of one limiter share the hash tag
``{key}`` (one Redis Cluster slot): ``{namespace}:limits:{key}:<kind>``.

* ``ConcurrencyLimit``: at most ``limit`` holders at once; a holder's slot frees when it
  releases, or when its ``ttl`` passes (a holder that died).
* ``WindowLimit``: at most ``limit`` uses in any ``window_ms`` (a sliding window: each use is
  remembered for one window).
* ``BucketLimit``: at most ``limit`` uses per ``bucket_ms`` (fixed windows aligned on the
  server's clock; the count starts over with each bucket).
* ``BarrierSteps``: opens once ``parties`` parties arrived; waiting parties block on Redis
  (BLPOP) and are woken by the last arrival.
"""

from __future__ import annotations

import time
import uuid
from abc import ABC, abstractmethod
from functools import cache
from importlib import resources
from typing import ClassVar

from alsek.core.steps.ops import Script, ScriptCall, Steps, call
from alsek.storage.backends.base import BaseBackend

__all__ = [
    "DEFAULT_LIMIT_TTL",
    "BarrierSteps",
    "BucketLimit",
    "ConcurrencyLimit",
    "LimitSteps",
    "WindowLimit",
]

#: How long a concurrency slot, or a barrier, lives (ms) unless told otherwise: 15 minutes.
DEFAULT_LIMIT_TTL = 15 * 60 * 1000
#: Longest single BLPOP of a barrier's waiter: it looks again at least this often, and the
#: wait stays below the client's socket timeout.
MAX_BLOCK_SECONDS = 1.0


@cache
def _script(name: str) -> Script:
    folder = resources.files(__package__).joinpath("scripts")
    text = (
        folder.joinpath("lib.lua").read_text() + "\n" + folder.joinpath(f"{name}.lua").read_text()
    )
    return Script.from_text(name, text)


def _check_key(key: object) -> str:
    if not isinstance(key, str) or not key:
        raise ValueError(f"A limiter key must be a non-empty str, got {key!r}")
    for char in key:
        if char in "{}" or char.isspace() or not char.isprintable():
            raise ValueError(
                f"Limiter key {key!r} contains {char!r}: braces, whitespace and control "
                "characters are not allowed"
            )
    return key


def _check_positive(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be an int > 0, got {value!r}")
    return value


class _Keyed:
    """A named piece of state in Redis, under one hash tag."""

    #: Whether the class runs on an asyncio backend (set by the sync and asyncio shells).
    _is_async: ClassVar[bool]

    def __init__(self, key: str, backend: BaseBackend) -> None:
        self.key = _check_key(key)
        if bool(backend.IS_ASYNC) != self._is_async:
            name = type(self).__name__
            twin = name.removeprefix("Async") if self._is_async else f"Async{name}"
            wanted = "an async" if self._is_async else "a sync"
            raise TypeError(
                f"{name} needs {wanted} backend, got {type(backend).__name__}: use {twin}"
            )
        self.backend = backend

    def _redis_key(self, kind: str) -> str:
        return f"{self.backend.namespace}:limits:{{{self.key}}}:{kind}"

    def _call(self, script: str, keys: tuple[str, ...], *args: str | int | float) -> ScriptCall:
        return ScriptCall(_script(script), keys, args)


class LimitSteps(_Keyed, ABC):
    """A rate limiter: ``_acquire_steps`` takes room (a token for ``_release_steps``, or
    ``None`` when there is none), ``_release_steps`` gives it back."""

    def __init__(self, key: str, limit: int, backend: BaseBackend) -> None:
        super().__init__(key, backend)
        self.limit = _check_positive("limit", limit)

    @abstractmethod
    def _acquire_steps(self) -> Steps[str | None]:
        """Take room; the token held, or ``None`` when the limit is reached."""

    def _release_steps(self, token: str) -> Steps[None]:
        """Give back what ``token`` holds (nothing, but for a concurrency limit)."""
        yield from ()

    def _exceeded_text(self) -> str:
        return f"{type(self).__name__} {self.key!r} is at its limit of {self.limit}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(key={self.key!r}, limit={self.limit!r})"


class ConcurrencyLimit(LimitSteps):
    """At most ``limit`` holders at once; a holder's slot frees after ``ttl`` ms even if it
    never releases it (it died)."""

    def __init__(
        self, key: str, limit: int, backend: BaseBackend, ttl: int = DEFAULT_LIMIT_TTL
    ) -> None:
        super().__init__(key, limit, backend)
        self.ttl = _check_positive("ttl", ttl)

    def _acquire_steps(self) -> Steps[str | None]:
        token = uuid.uuid4().hex
        holders = self._redis_key("holders")
        [taken] = yield call(
            self._call("concurrent_acquire", (holders,), token, self.limit, self.ttl)
        )
        return token if int(taken) else None

    def _release_steps(self, token: str) -> Steps[None]:
        yield call(self._call("concurrent_release", (self._redis_key("holders"),), token))


class WindowLimit(LimitSteps):
    """At most ``limit`` uses in any ``window_ms``."""

    def __init__(self, key: str, limit: int, window_ms: int, backend: BaseBackend) -> None:
        super().__init__(key, limit, backend)
        self.window_ms = _check_positive("window_ms", window_ms)

    def _acquire_steps(self) -> Steps[str | None]:
        token = uuid.uuid4().hex
        window = self._redis_key("window")
        [taken] = yield call(
            self._call("window_acquire", (window,), token, self.limit, self.window_ms)
        )
        return token if int(taken) else None


class BucketLimit(LimitSteps):
    """At most ``limit`` uses per ``bucket_ms`` (fixed windows of the server's clock)."""

    def __init__(self, key: str, limit: int, bucket_ms: int, backend: BaseBackend) -> None:
        super().__init__(key, limit, backend)
        self.bucket_ms = _check_positive("bucket_ms", bucket_ms)

    def _acquire_steps(self) -> Steps[str | None]:
        bucket = self._redis_key("bucket")
        [taken] = yield call(self._call("bucket_acquire", (bucket,), self.limit, self.bucket_ms))
        return "" if int(taken) else None


class BarrierSteps(_Keyed):
    """A barrier that opens once ``parties`` parties arrived; it lives ``ttl`` ms after the
    last arrival (then it is gone, and a new round may start under the same key)."""

    def __init__(
        self, key: str, parties: int, backend: BaseBackend, ttl: int = DEFAULT_LIMIT_TTL
    ) -> None:
        super().__init__(key, backend)
        self.parties = _check_positive("parties", parties)
        self.ttl = _check_positive("ttl", ttl)

    def _arrive_call(self, party: str) -> ScriptCall:
        keys = (self._redis_key("arrived"), self._redis_key("released"))
        return self._call("barrier_arrive", keys, party, self.parties, self.ttl)

    def _wait_steps(self, timeout_ms: int | None) -> Steps[bool]:
        """Arrive, then block until the barrier opens (``True``) or ``timeout_ms`` passes
        (``False``; the arrival still counts). Each call of ``wait`` is one party."""
        if timeout_ms is not None and (
            isinstance(timeout_ms, bool) or not isinstance(timeout_ms, int) or timeout_ms < 0
        ):
            raise ValueError(f"timeout_ms must be an int >= 0 or None, got {timeout_ms!r}")
        party = uuid.uuid4().hex
        deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1000
        [opened] = yield call(self._arrive_call(party))
        while not int(opened):
            block = MAX_BLOCK_SECONDS
            if deadline is not None:
                block = min(block, deadline - time.monotonic())
                if block <= 0:
                    return False
            # At least 2 ms: Redis 6.2 reads a BLPOP timeout that rounds to 0 as "forever".
            [woken] = yield call(("BLPOP", self._redis_key("released"), max(block, 0.002)))
            opened = 1 if woken is not None else (yield call(self._arrive_call(party)))[0]
        return True

    def __repr__(self) -> str:
        return f"{type(self).__name__}(key={self.key!r}, parties={self.parties!r})"
