"""Distributed locks: owner ids, and every decision the sync and asyncio locks share.

Locks speak python-redis-lock's protocol, so the two libraries can share a lock: the key is
``lock:{namespace}:{name}``, its value is the owner id, and a release pushes to
``lock-signal:{namespace}:{name}`` to wake a blocked acquirer. The Redis side is three Lua
scripts (``lua/acquire.lua``, ``lua/release.lua``, ``lua/extend.lua``), each one atomic round
trip, with TTLs in milliseconds.

Every operation is written once here as *steps*: a generator that yields the Redis work it needs
(``Get``, ``RunScript``, ``WaitForSignal``) and receives the reply. ``_io`` turns a step into the
client call, which a blocking client answers at once and an asyncio client with an awaitable;
``Lock`` and ``AsyncLock`` only drive the steps, with or without ``await``.

Locks are global: a lock is scoped to a queue only if the queue's name is part of ``name``.
Entering a lock's context manager does not acquire it; leaving it releases it if ``auto_release``.
On a Redis Cluster the release script touches the lock key and its signal list, which must share
a slot: when ``name`` carries no hash tag, the signal list is ``lock-signal:{<lock key>}``,
whose hash tag is the whole lock key (python-redis-lock cannot release such a lock on a cluster
anyway, so nothing shared is lost).
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Generator
from importlib import resources
from typing import Any, ClassVar, Literal, NamedTuple, TypeVar, get_args
from weakref import WeakKeyDictionary

import redis_lock
from redis.crc import key_slot

from alsek.storage.backends.base import BaseBackend
from alsek.utils.printing import auto_repr

__all__ = [
    "CURRENT_HOST_OWNER_ID",
    "DEFAULT_LOCK_TTL",
    "IF_ALREADY_ACQUIRED_TYPE",
    "BaseLock",
    "LockScripts",
    "get_process_lock_owner_id",
    "get_thread_lock_owner_id",
    "lock_scripts",
]

log = logging.getLogger(__name__)

IF_ALREADY_ACQUIRED_TYPE = Literal["raise_error", "return_true", "return_false"]
_IF_ALREADY_ACQUIRED_VALUES: tuple[str, ...] = get_args(IF_ALREADY_ACQUIRED_TYPE)

#: Default owner of a plain lock: the whole host, so every process and thread on it shares it.
CURRENT_HOST_OWNER_ID = f"lock:{socket.gethostname()}"

#: A lock's default lifetime (1 h), in ms.
DEFAULT_LOCK_TTL = 60 * 60 * 1000

#: How long the release signal list lives (python-redis-lock's default), in ms.
SIGNAL_EXPIRE_MS = 1000

#: Longest single BLPOP while waiting for a lock: a waiter re-tries at least this often, so a
#: wake-up that went to another waiter costs at most this long, and the wait stays below the
#: client's socket timeout.
MAX_BLOCK_SECONDS = 1.0


def get_process_lock_owner_id() -> str:
    """Owner id of the current process: ``lock:{hostname}:process:{pid}``."""
    return f"{CURRENT_HOST_OWNER_ID}:process:{os.getpid()}"


def get_thread_lock_owner_id() -> str:
    """Owner id of the current thread: ``lock:{hostname}:process:{pid}:thread:{ident}``."""
    return f"{get_process_lock_owner_id()}:thread:{threading.get_ident()}"


def expire_seconds(ttl: int | None) -> int | None:
    """A ms TTL as python-redis-lock's whole seconds, rounded up so it never becomes 0."""
    return None if ttl is None else math.ceil(ttl / 1000)


class LockScripts(NamedTuple):
    """The lock's Redis protocol, registered on one client."""

    acquire: Any
    release: Any
    extend: Any


_registered: WeakKeyDictionary[Any, LockScripts] = WeakKeyDictionary()


def _script_source(name: str) -> str:
    return (resources.files("alsek.core.lock") / "lua" / f"{name}.lua").read_text()


def lock_scripts(client: Any) -> LockScripts:
    """The lock scripts registered on ``client`` (sync or asyncio), registering them once."""
    scripts = _registered.get(client)
    if scripts is None:
        scripts = LockScripts(
            *(client.register_script(_script_source(name)) for name in LockScripts._fields)
        )
        _registered[client] = scripts
    return scripts


class Get(NamedTuple):
    """Read ``key`` (GET)."""

    key: str


class RunScript(NamedTuple):
    """Run the lock script ``script`` (a ``LockScripts`` field) with ``keys`` and ``args``."""

    script: str
    keys: list[str]
    args: list[Any]


class WaitForSignal(NamedTuple):
    """Block up to ``seconds`` for a release to push to the signal list ``key`` (BLPOP)."""

    key: str
    seconds: float


T = TypeVar("T")
LockStep = Get | RunScript | WaitForSignal
#: An operation as steps: yields what it needs from Redis, receives the reply, returns a ``T``.
LockSteps = Generator[LockStep, Any, T]


def drive(steps: LockSteps[T], io: Callable[[LockStep], Any]) -> T:
    """Run ``steps`` on a blocking client: ``io`` answers each step."""
    reply = None
    while True:
        try:
            step = steps.send(reply)
        except StopIteration as done:
            result: T = done.value
            return result
        reply = io(step)


async def async_drive(steps: LockSteps[T], io: Callable[[LockStep], Awaitable[Any]]) -> T:
    """Run ``steps`` on an asyncio client: ``io`` answers each step with an awaitable."""
    reply = None
    while True:
        try:
            step = steps.send(reply)
        except StopIteration as done:
            result: T = done.value
            return result
        reply = await io(step)


def _check_ttl(ttl: object, what: str) -> None:
    if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl <= 0:
        raise ValueError(f"{what} must be a positive int of ms, not {ttl!r}")


class BaseLock(ABC):
    """A named distributed lock held by an owner id; the logic sync and async locks share.

    Args:
        name: the lock's name; the Redis key is ``lock:{namespace}:{name}``.
        ttl: lifetime in ms once acquired; ``None`` never expires (avoid: a crashed holder
            then keeps it forever).
        auto_release: release when leaving the context manager.
        owner_id: who holds the lock. The default is the whole host: any process or thread on
            it counts as the holder. Prefer ``ProcessLock``/``ThreadLock`` for a mutex between
            processes or threads of one host.
    """

    #: The backend class a lock of this kind runs on (``RedisBackend``/``AsyncRedisBackend``).
    _backend_type: ClassVar[type[BaseBackend]]

    backend: BaseBackend

    def __init__(
        self,
        name: str,
        ttl: int | None = DEFAULT_LOCK_TTL,
        auto_release: bool = True,
        owner_id: str = CURRENT_HOST_OWNER_ID,
    ) -> None:
        self.name = name
        self.ttl = ttl
        self.auto_release = auto_release
        self._owner_id = owner_id

    def _attach(self, backend: BaseBackend, validate_on_init: bool) -> None:
        """Set the backend (it must be of ``_backend_type``), then validate if asked."""
        if not isinstance(backend, self._backend_type):
            raise NotImplementedError(f"Only {self._backend_type.__name__} is supported.")
        self.backend = backend
        if validate_on_init:
            self.validate()

    def __repr__(self) -> str:
        return auto_repr(
            self,
            name=self.name,
            backend=self.backend,
            ttl=self.ttl,
            auto_release=self.auto_release,
        )

    def validate(self) -> None:
        """Raise ``ValueError`` for an empty name or owner id, a TTL that is not positive, or a
        name a cluster cannot release (see ``signal_key``)."""
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"A lock name must be a non-empty str, not {self.name!r}")
        if not isinstance(self.owner_id, str) or not self.owner_id:
            raise ValueError(f"A lock owner_id must be a non-empty str, not {self.owner_id!r}")
        if self.ttl is not None:
            _check_ttl(self.ttl, f"The ttl of lock {self.name!r}")
        _ = self.signal_key  # on a cluster: a name its signal list cannot share a slot with

    @property
    def owner_id(self) -> str:
        """The id stored in Redis while this owner holds the lock."""
        return self._owner_id

    @property
    def full_name(self) -> str:
        """``{namespace}:{name}``; python-redis-lock adds ``lock:`` in front for the key."""
        return f"{self.backend.namespace}:{self.name}"

    @property
    def key(self) -> str:
        """The Redis key holding the owner id: ``lock:{namespace}:{name}``."""
        return f"lock:{self.full_name}"

    @property
    def signal_key(self) -> str:
        """The list a release pushes to, waking blocked acquirers (in the lock key's slot on a
        Redis Cluster; see the module)."""
        plain = f"lock-signal:{self.full_name}"
        if not self.backend.is_cluster or key_slot(plain.encode()) == key_slot(self.key.encode()):
            return plain
        tagged = f"lock-signal:{{{self.key}}}"
        if key_slot(tagged.encode()) != key_slot(self.key.encode()):
            raise ValueError(
                f"Lock name {self.name!r} cannot be used on a Redis Cluster: its '}}' breaks "
                "the hash tag alsek gives the release signal; give the name a hash tag of its "
                "own, e.g. '{report}:nightly'"
            )
        return tagged

    @property
    @abstractmethod
    def _conn(self) -> Any:
        """The backend's client (blocking or asyncio)."""

    @property
    @abstractmethod
    def lock(self) -> redis_lock.Lock:
        """The python-redis-lock ``Lock`` over the same key and owner id."""

    @abstractmethod
    def get_holder(self) -> str | Any | None:
        """The owner id stored in Redis, or ``None`` when nobody holds the lock."""

    @abstractmethod
    def is_held(self) -> bool | Any:
        """True when *this owner* holds the lock (not merely anyone)."""

    def acquire(
        self,
        wait: float | None = None,
        if_already_acquired: IF_ALREADY_ACQUIRED_TYPE = "raise_error",
    ) -> bool | Any:
        """Take the lock, waiting up to ``wait`` **seconds** (``None``/0: try once).

        When this owner already holds it: ``"raise_error"`` raises
        ``redis_lock.AlreadyAcquired``, ``"return_true"``/``"return_false"`` return that.
        """
        raise NotImplementedError

    def release(self, raise_if_not_acquired: bool = False) -> bool | Any:
        """Release the lock if this owner holds it: ``True``; otherwise ``False``, or
        ``redis_lock.NotAcquired`` if ``raise_if_not_acquired``."""
        raise NotImplementedError

    @abstractmethod
    def extend(self, ttl: int | None = None) -> bool | Any:
        """Reset the lock's TTL to ``ttl`` ms (default: the lock's ttl) if this owner still
        holds it; ``False`` when it does not (expired, or taken by another owner)."""

    # -- operations as steps (no I/O) ------------------------------------------------------

    def _holder_steps(self) -> LockSteps[str | None]:
        holder: str | None = yield Get(self.key)
        return holder

    def _is_held_steps(self) -> LockSteps[bool]:
        holder = yield from self._holder_steps()
        return holder == self.owner_id

    def _acquire_steps(
        self, wait: float | None, if_already_acquired: IF_ALREADY_ACQUIRED_TYPE
    ) -> LockSteps[bool]:
        """Try to take the lock; while another owner holds it, block on the signal list until
        the deadline (see ``_block_seconds``), then try again."""
        deadline = self._deadline(wait, if_already_acquired)
        while True:
            reply = yield RunScript("acquire", *self._acquire_call())
            acquired, holder_pttl = self._acquire_outcome(reply, if_already_acquired)
            if acquired is not None:
                return acquired
            block = self._block_seconds(deadline, holder_pttl)
            if block is None:
                return False
            yield WaitForSignal(self.signal_key, block)

    def _release_steps(self, raise_if_not_acquired: bool) -> LockSteps[bool]:
        reply = yield RunScript("release", *self._release_call())
        return self._release_outcome(reply, raise_if_not_acquired)

    def _extend_steps(self, ttl: int | None) -> LockSteps[bool]:
        reply = yield RunScript("extend", *self._extend_call(ttl))
        return bool(reply)

    def _io(self, step: LockStep) -> Any:
        """The client call for ``step``: its reply, or an awaitable of it on an asyncio client
        (both clients name these calls alike)."""
        conn = self._conn
        if isinstance(step, Get):
            return conn.get(step.key)
        if isinstance(step, RunScript):
            script = getattr(lock_scripts(conn), step.script)
            return script(keys=step.keys, args=step.args)
        return conn.blpop([step.key], timeout=step.seconds)

    # -- decisions the steps are made of ---------------------------------------------------

    def _deadline(self, wait: float | None, if_already_acquired: str) -> float | None:
        """Check ``acquire``'s arguments; the monotonic time to stop waiting, or ``None``."""
        if if_already_acquired not in _IF_ALREADY_ACQUIRED_VALUES:
            raise ValueError(
                f"if_already_acquired must be one of {_IF_ALREADY_ACQUIRED_VALUES}, "
                f"not {if_already_acquired!r}"
            )
        if wait is None:
            return None
        if isinstance(wait, bool) or not isinstance(wait, (int, float)) or wait < 0:
            raise ValueError(f"wait must be a number of seconds >= 0 or None, not {wait!r}")
        return time.monotonic() + wait if wait else None

    def _acquire_call(self) -> tuple[list[str], list[Any]]:
        return [self.key], [self.owner_id, "" if self.ttl is None else self.ttl]

    def _acquire_outcome(
        self, reply: list[int], if_already_acquired: str
    ) -> tuple[bool | None, int]:
        """(``True``/``False`` to return, or ``None`` when another owner holds it; its PTTL)."""
        code, holder_pttl = int(reply[0]), int(reply[1])
        if code == 1:
            log.debug("Acquired lock %r as %r.", self.key, self.owner_id)
            return True, holder_pttl
        if code == 0:
            return None, holder_pttl
        if if_already_acquired == "raise_error":
            raise redis_lock.AlreadyAcquired(
                f"Lock {self.key!r} is already held by {self.owner_id!r}"
            )
        return if_already_acquired == "return_true", holder_pttl

    @staticmethod
    def _block_seconds(deadline: float | None, holder_pttl: int) -> float | None:
        """How long to block on the signal list before trying again; ``None``: give up.

        Never past the deadline, nor past the holder's expiry (no signal comes then), nor
        longer than ``MAX_BLOCK_SECONDS``; at least 1 ms, because Redis reads a BLPOP timeout
        of 0 as "forever".
        """
        if deadline is None:
            return None
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        block = min(remaining, MAX_BLOCK_SECONDS)
        if holder_pttl >= 0:
            block = min(block, holder_pttl / 1000)
        return max(math.ceil(block * 1000) / 1000, 0.001)

    def _release_call(self) -> tuple[list[str], list[Any]]:
        return [self.key, self.signal_key], [self.owner_id, SIGNAL_EXPIRE_MS]

    def _release_outcome(self, reply: int, raise_if_not_acquired: bool) -> bool:
        if int(reply) == 1:
            log.debug("Released lock %r held by %r.", self.key, self.owner_id)
            return True
        if raise_if_not_acquired:
            raise redis_lock.NotAcquired(f"Lock {self.key!r} is not held by {self.owner_id!r}")
        return False

    def _extend_call(self, ttl: int | None) -> tuple[list[str], list[Any]]:
        ttl = self.ttl if ttl is None else ttl
        if ttl is None:
            raise ValueError(f"Lock {self.name!r} has no ttl: pass the ttl (ms) to extend it to")
        _check_ttl(ttl, f"The ttl to extend lock {self.name!r} to")
        return [self.key], [self.owner_id, ttl]


class _ContextOwnedLock(BaseLock):
    """A lock owned by the calling context (process or thread), named by ``_current_owner``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if "owner_id" in kwargs:
            raise TypeError(f"{type(self).__name__} sets its own owner_id")
        kwargs.update(owner_id=self._current_owner(), validate_on_init=False)
        super().__init__(*args, **kwargs)
        self.validate()

    @staticmethod
    @abstractmethod
    def _current_owner() -> str: ...

    @property
    def owner_id(self) -> str:
        """Recomputed on every access, so it names the process or thread asking."""
        return self._current_owner()


class ProcessOwnedLock(_ContextOwnedLock):
    """Owned by the current process (``get_process_lock_owner_id``)."""

    _current_owner = staticmethod(get_process_lock_owner_id)


class ThreadOwnedLock(_ContextOwnedLock):
    """Owned by the current thread (``get_thread_lock_owner_id``)."""

    _current_owner = staticmethod(get_thread_lock_owner_id)
