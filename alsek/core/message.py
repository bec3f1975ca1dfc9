"""``Message``: one request to run a task, and everything needed to run, retry or chain it.

A message is plain data with no I/O. ``data`` is its persisted form and ``Message(**data)``
rebuilds it. Every field is checked when the message is built or updated, so a bad value fails
where it was written instead of inside a worker later.
"""

from __future__ import annotations

import os
import secrets
import threading
import uuid as uuid_module
from collections.abc import Callable, Mapping
from copy import deepcopy
from functools import lru_cache
from typing import Any, Protocol, TypedDict, cast

from alsek.core.backoff import Backoff, ExponentialBackoff, settings2backoff
from alsek.defaults import DEFAULT_MECHANISM, DEFAULT_QUEUE, DEFAULT_TASK_TIMEOUT
from alsek.types import SupportedMechanismType, check_mechanism
from alsek.utils.helpers import dict_merge_update_into_origin
from alsek.utils.namespacing import validate_key_part, validate_name
from alsek.utils.parsing import ExceptionDetails
from alsek.utils.printing import auto_repr
from alsek.utils.temporal import from_timestamp_ms, utcnow_timestamp_ms

#: Where a message carries the options of ``generate`` it keeps (overrides, workflow, unique).
OPTIONS_METADATA_KEY = "alsek.options"


def carried_options(message: Message) -> Mapping[str, Any]:
    """The options ``message`` carries in its metadata (empty when none): read by the task
    layer, and by the broker for the unique key a message holds."""
    metadata = message.metadata
    carried = metadata.get(OPTIONS_METADATA_KEY) if metadata else None
    return carried or {}


class LinkedLock(TypedDict):
    """The lock a consumer took for this delivery, as a JSON-friendly dict."""

    name: str
    owner_id: str


class _LockLike(Protocol):
    """What :meth:`Message.link_lock` reads from a lock (kept structural to avoid importing it)."""

    @property
    def name(self) -> str: ...

    @property
    def owner_id(self) -> str: ...


def _random_node() -> int:
    """A random 48-bit node, its multicast bit set (RFC 4122's mark of a node that is no
    network address)."""
    return secrets.randbits(48) | 1 << 40


_uuid_node = _random_node()
_uuid_lock = threading.Lock()


def _new_node_after_fork() -> None:
    global _uuid_node, _uuid_lock
    _uuid_node = _random_node()
    _uuid_lock = threading.Lock()


os.register_at_fork(after_in_child=_new_node_after_fork)


def _make_uuid() -> str:
    """A fresh uuid1. With a node given, ``uuid1`` skips libuuid's cross-process clock file
    (a third of a message's build): this process' random node keeps its uuids apart from other
    processes', and the lock keeps ``uuid1``'s timestamps strictly increasing among its threads.
    """
    with _uuid_lock:
        return str(uuid_module.uuid1(node=_uuid_node))


def _int(field: str, value: Any, minimum: int = 0) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"Message {field} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"Message {field} must be >= {minimum}, got {value!r}")
    return value


def _optional_int(field: str, value: Any, minimum: int = 0) -> int | None:
    return None if value is None else _int(field, value, minimum)


def _optional_of(field: str, value: Any, kind: type) -> Any:
    if value is not None and not isinstance(value, kind):
        raise TypeError(
            f"Message {field} must be a {kind.__name__} or None, got {type(value).__name__} "
            f"{value!r}"
        )
    return value


def _args(value: Any) -> tuple[Any, ...]:
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"Message args must be a list or tuple, got {type(value).__name__}")
    return tuple(value)


def _kwargs(value: Any) -> dict[Any, Any]:
    return {} if value is None else cast(dict[Any, Any], _optional_of("kwargs", value, dict))


def _exception_details(value: Any) -> ExceptionDetails | None:
    if value is None or isinstance(value, ExceptionDetails):
        return value
    if not isinstance(value, dict):
        raise TypeError(
            "Message exception_details must be an ExceptionDetails, a dict or None, "
            f"got {type(value).__name__} {value!r}"
        )
    try:
        return ExceptionDetails(**value)
    except TypeError:
        raise ValueError(
            "Message exception_details dict needs a 'name' and at most 'text' and "
            f"'traceback', got keys {sorted(value)!r}"
        ) from None


@lru_cache(maxsize=256)
def _cached_backoff(algorithm: Any, parameters: tuple[tuple[str, Any], ...]) -> Backoff:
    return settings2backoff({"algorithm": algorithm, "parameters": dict(parameters)})


def _backoff_of(settings: Any) -> Backoff:
    """The backoff described by ``settings``, built once per distinct settings (hot path)."""
    try:
        key = (settings["algorithm"], tuple(sorted(settings["parameters"].items())))
        hash(key)
    except (TypeError, KeyError, AttributeError):  # malformed: let settings2backoff say why
        return settings2backoff(settings)
    return _cached_backoff(*key)


def _backoff_settings(value: Any) -> dict[str, Any]:
    if value is None:
        return dict(ExponentialBackoff().settings)
    _backoff_of(value)  # raises a ValueError naming what is wrong
    return cast(dict[str, Any], value)


def _linked_lock(value: Any) -> LinkedLock | None:
    if value is None:
        return None
    if not (
        isinstance(value, dict)
        and set(value) == {"name", "owner_id"}
        and all(isinstance(v, str) for v in value.values())
    ):
        raise ValueError(
            f"Message linked_lock must be {{'name': str, 'owner_id': str}}, got {value!r}"
        )
    return cast(LinkedLock, value)


def _uuid(value: Any) -> str:
    if value is None:
        return _make_uuid()
    return validate_key_part("Message uuid", value)


def _optional_uuid(field: str, value: Any) -> str | None:
    return None if value is None else validate_key_part(f"Message {field}", value)


#: One normaliser per field: checks the value and returns the form the message holds.
#: ``created_at`` and ``updated_at`` are checked together by ``_resolve_times``.
_NORMALIZERS: dict[str, Callable[[Any], Any]] = {
    "task_name": lambda v: validate_name("task", v),
    "queue": lambda v: validate_name("queue", v or DEFAULT_QUEUE),
    "args": _args,
    "kwargs": _kwargs,
    "priority": lambda v: _int("priority", v),
    "metadata": lambda v: _optional_of("metadata", v, dict),
    "exception_details": _exception_details,
    "result_ttl": lambda v: _optional_int("result_ttl", v, minimum=1),
    "uuid": _uuid,
    "progenitor_uuid": lambda v: _optional_uuid("progenitor_uuid", v),
    "retries": lambda v: _int("retries", v),
    "timeout": lambda v: _int("timeout", v, minimum=1),
    "delay": lambda v: _int("delay", v or 0),
    "previous_result": lambda v: v,
    "previous_message_uuid": lambda v: _optional_uuid("previous_message_uuid", v),
    "callback_message_data": lambda v: _optional_of("callback_message_data", v, dict),
    "backoff_settings": _backoff_settings,
    "mechanism": check_mechanism,
    "run_in_main_thread": lambda v: bool(v or False),
    "ready_at": lambda v: _optional_int("ready_at", v),
    "linked_lock": _linked_lock,
}
_TIME_FIELDS = ("created_at", "updated_at")
_FIELDS = frozenset(_NORMALIZERS) | frozenset(_TIME_FIELDS)
_DEFAULT_MECHANISM = check_mechanism(DEFAULT_MECHANISM)


def _resolve_times(created_at: Any, updated_at: Any) -> tuple[int, int]:
    """Both ``None`` → both now; exactly one ``None`` → corrupt; otherwise both must be ints."""
    if created_at is None and updated_at is None:
        now = utcnow_timestamp_ms()
        return now, now
    if created_at is None or updated_at is None:
        raise ValueError(
            f"Time data is corrupt: created_at={created_at!r}, updated_at={updated_at!r} "
            "(give both or neither)"
        )
    return _int("created_at", created_at), _int("updated_at", updated_at)


def _collect_callback_uuids(callback_message_data: dict[str, Any]) -> list[str]:
    """The uuids down a chain of nested ``callback_message_data`` dicts, nearest first."""
    uuids = []
    data: dict[str, Any] | None = callback_message_data
    while data:
        uuids.append(data["uuid"])
        data = data.get("callback_message_data")
    return uuids


#: Builds ``message | other`` (a pipeline); set by ``alsek.core.workflow``, which sits above
#: messages, when it is imported.
compose_with: Callable[[Message, Any], Any] | None = None


class Message:
    """A request to run ``task_name`` with ``args``/``kwargs``, plus its delivery state.

    Durations and timestamps are in milliseconds. ``priority``: lower runs first.
    ``ready_at``: when ``None`` it is ``created_at + delay + backoff(retries)``.

    Raises:
        TypeError, ValueError: a field has the wrong type or value; the message names it.
    """

    def __init__(
        self,
        task_name: str,
        queue: str | None = None,
        args: list[Any] | tuple[Any, ...] | None = None,
        kwargs: dict[Any, Any] | None = None,
        priority: int = 0,
        metadata: dict[Any, Any] | None = None,
        exception_details: dict[str, Any] | ExceptionDetails | None = None,
        result_ttl: int | None = None,
        uuid: str | None = None,
        progenitor_uuid: str | None = None,
        retries: int = 0,
        timeout: int = DEFAULT_TASK_TIMEOUT,
        created_at: int | None = None,
        updated_at: int | None = None,
        delay: int | None = None,
        previous_result: Any | None = None,
        previous_message_uuid: str | None = None,
        callback_message_data: dict[str, Any] | None = None,
        backoff_settings: dict[str, Any] | None = None,
        mechanism: SupportedMechanismType = _DEFAULT_MECHANISM,
        run_in_main_thread: bool | None = False,
        ready_at: int | None = None,
        linked_lock: LinkedLock | None = None,
    ) -> None:
        given = dict(locals())  # every parameter, by name, for the normaliser table
        norm = {field: normalize(given[field]) for field, normalize in _NORMALIZERS.items()}
        self.task_name: str = norm["task_name"]
        self.queue: str = norm["queue"]
        self.args: tuple[Any, ...] = norm["args"]
        self.kwargs: dict[Any, Any] = norm["kwargs"]
        self.priority: int = norm["priority"]
        self.metadata: dict[Any, Any] | None = norm["metadata"]
        self._exception_details: ExceptionDetails | None = norm["exception_details"]
        self.result_ttl: int | None = norm["result_ttl"]
        self.uuid: str = norm["uuid"]
        self.progenitor_uuid: str | None = norm["progenitor_uuid"]
        self.retries: int = norm["retries"]
        self.timeout: int = norm["timeout"]
        self.created_at, self.updated_at = _resolve_times(created_at, updated_at)
        self.delay: int = norm["delay"]
        self.previous_result: Any = norm["previous_result"]
        self.previous_message_uuid: str | None = norm["previous_message_uuid"]
        self.callback_message_data: dict[str, Any] | None = norm["callback_message_data"]
        self.backoff_settings: dict[str, Any] = norm["backoff_settings"]
        self.mechanism: SupportedMechanismType = norm["mechanism"]
        self.run_in_main_thread: bool = norm["run_in_main_thread"]
        self._ready_at: int | None = norm["ready_at"]
        self.linked_lock: LinkedLock | None = norm["linked_lock"]
        #: In memory only, never persisted: lets ``pre_op()`` hand data to ``op()``.
        self.ephemeral_state: dict[Any, Any] = {}

    @property
    def exception_details(self) -> ExceptionDetails | None:
        """The last recorded error, if any."""
        return self._exception_details

    @exception_details.setter
    def exception_details(self, value: ExceptionDetails | dict[str, Any] | None) -> None:
        self._exception_details = _exception_details(value)

    @property
    def ready_at(self) -> int:
        """When the message may run: as set explicitly, else ``created_at + delay + backoff``."""
        if self._ready_at is not None:
            return self._ready_at
        return self.created_at + self.delay + self.get_backoff_duration()

    @ready_at.setter
    def ready_at(self, value: int | None) -> None:
        self._ready_at = _optional_int("ready_at", value)

    @property
    def data(self) -> dict[str, Any]:
        """The persisted form; ``Message(**data)`` rebuilds an equivalent message."""
        details = self.exception_details
        return {
            "task_name": self.task_name,
            "queue": self.queue,
            "args": self.args,
            "kwargs": self.kwargs,
            "priority": self.priority,
            "metadata": self.metadata,
            "exception_details": None if details is None else details.as_dict(),
            "result_ttl": self.result_ttl,
            "uuid": self.uuid,
            "progenitor_uuid": self.progenitor_uuid,
            "retries": self.retries,
            "timeout": self.timeout,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "delay": self.delay,
            "previous_result": self.previous_result,
            "previous_message_uuid": self.previous_message_uuid,
            "callback_message_data": self.callback_message_data,
            "backoff_settings": self.backoff_settings,
            "mechanism": self.mechanism,
            "run_in_main_thread": self.run_in_main_thread,
            "ready_at": self.ready_at,
            "linked_lock": self.linked_lock,
        }

    def __or__(self, other: Any) -> Any:
        """``message | other``: a pipeline of the two (``alsek.core.workflow``)."""
        if compose_with is None:
            raise TypeError(
                "message | message builds a pipeline: import it first (from alsek import pipeline)"
            )
        return compose_with(self, other)

    def __repr__(self) -> str:
        params = self.data
        params["created_at"] = from_timestamp_ms(self.created_at)
        params["updated_at"] = from_timestamp_ms(self.updated_at)
        return auto_repr(self, **params)

    @property
    def summary(self) -> str:
        """A one-line identification for log messages."""
        return f"Message(uuid={self.uuid!r}, queue={self.queue!r}, task={self.task_name!r})"

    def get_backoff_duration(self) -> int:
        """The retry backoff (ms) due after ``retries`` failed attempts."""
        return _backoff_of(self.backoff_settings).get(self.retries)

    @property
    def ready(self) -> bool:
        """Whether the message may run now."""
        return self.ready_at <= utcnow_timestamp_ms()

    @property
    def ttr(self) -> int:
        """Time to ready, in ms: ``0`` once ready."""
        return max(self.ready_at - utcnow_timestamp_ms(), 0)

    @property
    def descendant_uuids(self) -> list[str] | None:
        """The uuids of the callback chain after this message, or ``None`` without one."""
        if not self.callback_message_data:
            return None
        return _collect_callback_uuids(self.callback_message_data)

    def link_lock(self, lock: _LockLike, override: bool = False) -> Message:
        """Record the lock taken for this delivery.

        Raises:
            AttributeError: a lock is already linked and ``override`` is false.
        """
        if self.linked_lock is not None and not override:
            raise AttributeError(
                f"{self.summary} is already linked to lock {self.linked_lock['name']!r}"
            )
        self.linked_lock = {"name": lock.name, "owner_id": lock.owner_id}
        return self

    def clone(self) -> Message:
        """An independent copy with the same uuid (``ephemeral_state`` is not copied)."""
        return Message(**deepcopy(self.data))

    def update(self, **data: Any) -> Message:
        """Change fields in place, after checking every value (all or nothing).

        Raises:
            KeyError: a key is not a field of ``data``.
            TypeError, ValueError: a value is invalid; nothing was changed.
        """
        unsupported = sorted(
            key for key in data if key not in _NORMALIZERS and key not in _TIME_FIELDS
        )
        if unsupported:
            raise KeyError(f"Unsupported key(s) {unsupported!r}; expected fields of Message.data")
        normalized = {
            key: _NORMALIZERS[key](value) for key, value in data.items() if key in _NORMALIZERS
        }
        if any(key in data for key in _TIME_FIELDS):
            normalized["created_at"], normalized["updated_at"] = _resolve_times(
                data.get("created_at", self.created_at), data.get("updated_at", self.updated_at)
            )
        for key, value in normalized.items():
            private = key in ("exception_details", "ready_at")
            setattr(self, f"_{key}" if private else key, value)
        return self

    def add_to_metadata(self, **data: Any) -> Message:
        """Add keys to ``metadata`` (persisted).

        Raises:
            ValueError: nothing to add.
            KeyError: a key is already present; existing metadata is never overwritten.
        """
        if not data:
            raise ValueError("add_to_metadata() needs at least one key")
        self.metadata = dict_merge_update_into_origin(self.metadata or {}, data, inplace=False)
        return self

    def add_to_ephemeral_state(self, **data: Any) -> Message:
        """Add keys to ``ephemeral_state`` (in memory only).

        Raises:
            ValueError: nothing to add.
            KeyError: a key is already present.
        """
        if not data:
            raise ValueError("add_to_ephemeral_state() needs at least one key")
        self.ephemeral_state = dict_merge_update_into_origin(self.ephemeral_state, data)
        return self

    def duplicate(self, uuid: str | None = None) -> Message:
        """A copy under a new identity (``uuid`` or a fresh one), with no lock linked."""
        return self.clone().update(uuid=uuid or _make_uuid(), linked_lock=None)

    def increment_retries(self) -> Message:
        """Count one more failed attempt, and push ``ready_at`` out by the new backoff.

        The backoff runs from now (the failure), not from ``created_at``, and ``ready_at`` is set
        explicitly so that it survives being persisted and reloaded. Nothing is written anywhere.
        """
        now = utcnow_timestamp_ms()
        self.update(retries=self.retries + 1, updated_at=now)
        self._ready_at = now + self.get_backoff_duration()
        return self
