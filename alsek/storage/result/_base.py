"""``BaseResultStore``: every result decision, shared by ``ResultStore`` and its async twin.

Redis layout (short names; the backend namespace goes in front):

* ``results:{<queue>}:<uuid>`` (STRING): the serialized ``{"result": ..., "timestamp": <ms>}`` of
  a message. A descendant of a callback chain is stored under
  ``results:{<its queue>}:<progenitor uuid>:descendants:<uuid>``. The braces are a literal Redis
  Cluster hash tag, the tag of the queue whose ack writes the result, so the write can ride in
  that ack's script (``effects()``).
* ``failures:{<queue>}:<uuid>`` (and ``failures:...:descendants:<uuid>``): written instead when
  the message failed for good (``failure_effects()``), so ``get`` raises ``TaskFailedError``
  naming the exception rather than waiting for a result that will never come.
* Pub/sub channel ``{namespace}:channel:<result name>``: every write publishes on it, so a
  ``get(timeout=...)`` wakes when the result arrives instead of polling.

Both keys expire after the first of these that is set, in ms: the message's ``result_ttl``
(``generate(result_ttl=...)``, else the task's ``default_result_ttl``, which ``generate`` puts
on the message), then the store's ``default_ttl`` (read where the result is written: the
worker's store). When none is set they are kept **forever**: Redis memory then grows with every
message run, until you ``delete`` them (or ``get(keep=False)``). Give the store a
``default_ttl`` to bound every result in one place.

Writing with a broker operation (``broker.ack(message, effects=store.effects(message, result))``)
needs the store on the broker's Redis server; ``set()`` works on its own. The result is written
``NX``: a redelivered message's second result keeps the first (and does not fail the ack).

Descendants: when the message carries its callback chain (``callback_message_data``) their names
are known, in chain order, and read directly. Only when it does not is the keyspace SCANned for
``results:{*}:<progenitor uuid>:descendants:*`` (then ordered by write time).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import Any, Protocol, TypeVar

from alsek.core.broker.effects import (
    DeleteEffect,
    Effect,
    PublishEffect,
    SetEffect,
    effect_commands,
)
from alsek.core.steps.ops import ScanKeys, Steps, Subscribe, batched, call
from alsek.core.steps.waiting import wait_steps
from alsek.defaults import _GET_RESULT_WAIT_SLEEP_INTERVAL, DEFAULT_QUEUE
from alsek.exceptions import TaskFailedError
from alsek.storage.backends.base import BaseBackend, glob_escape
from alsek.storage.backends.helpers import check_backend_kind, encode_value, rebuild_backend
from alsek.utils.parsing import ExceptionDetails
from alsek.utils.system import stop_requested
from alsek.utils.temporal import utcnow_timestamp_ms

StoreT = TypeVar("StoreT", bound="BaseResultStore")

#: Keys asked for per SCAN call when a chain's descendants must be found by SCAN.
SCAN_COUNT = 1000
#: How often a waiter looks again when the backend has no pub/sub to wake it.
NO_PUBSUB_POLL_SECONDS = _GET_RESULT_WAIT_SLEEP_INTERVAL / 1000
#: Published on a result's channel to wake its waiters (they read the key again).
WAKE_PAYLOAD = "1"


class ResultSubject(Protocol):
    """What a result is kept for: a message (a ``Message``), with its place in a callback chain,
    its result TTL and, once it failed, the exception that failed it."""

    @property
    def uuid(self) -> str: ...

    @property
    def queue(self) -> str: ...

    @property
    def progenitor_uuid(self) -> str | None: ...

    @property
    def callback_message_data(self) -> dict[str, Any] | None: ...

    @property
    def result_ttl(self) -> int | None: ...

    @property
    def exception_details(self) -> ExceptionDetails | None: ...


def _result_name(queue: str, uuid: str, progenitor_uuid: str | None) -> str:
    if progenitor_uuid:
        return f"results:{{{queue}}}:{progenitor_uuid}:descendants:{uuid}"
    return f"results:{{{queue}}}:{uuid}"


def _failure_name(name: str) -> str:
    return "failures:" + name.removeprefix("results:")


def _check_default_ttl(default_ttl: object) -> int | None:
    if default_ttl is None:
        return None
    if isinstance(default_ttl, bool) or not isinstance(default_ttl, int) or default_ttl < 1:
        raise ValueError(
            f"default_ttl must be a number of ms >= 1, or None to keep results without a "
            f"result_ttl forever; got {default_ttl!r}"
        )
    return default_ttl


class BaseResultStore(ABC):
    """Store task results in Redis, one key per message, woken waiters on every write.

    Args:
        backend: where results are kept.
        default_ttl: ms a result (or failure record) is kept when its message has no
            ``result_ttl`` (neither its own nor its task's ``default_result_ttl``); ``None``
            keeps those forever.

    Raises:
        AssertionError: a backend of the wrong kind (sync vs async).
        ValueError: ``default_ttl`` is not an int >= 1 or ``None``.
    """

    _IS_ASYNC = False

    def __init__(self, backend: BaseBackend, default_ttl: int | None = None) -> None:
        check_backend_kind(type(self).__name__.removeprefix("Async"), backend, self._IS_ASYNC)
        self.backend = backend
        self.default_ttl = _check_default_ttl(default_ttl)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(backend={self.backend!r}, default_ttl={self.default_ttl!r})"

    def serialize(self) -> dict[str, Any]:
        """Settings that rebuild this store in another process."""
        return {"backend": self.backend.encode(), "default_ttl": self.default_ttl}

    @classmethod
    def deserialize(cls: type[StoreT], data: dict[str, Any]) -> StoreT:
        """Rebuild a store (with a new connection pool) from ``serialize()``'s output."""
        return cls(backend=rebuild_backend(data["backend"]), default_ttl=data.get("default_ttl"))

    def ttl_for(self, message: ResultSubject) -> int | None:
        """How long (ms) the message's result is kept: its ``result_ttl``, else the store's
        ``default_ttl``; ``None``: forever."""
        return message.result_ttl if message.result_ttl is not None else self.default_ttl

    # -- names -------------------------------------------------------------------------------

    @staticmethod
    def get_storage_name(message: ResultSubject) -> str:
        """``results:{<queue>}:<uuid>``, or ``...:<progenitor uuid>:descendants:<uuid>``.

        Raises:
            ValueError: the message has no uuid.
        """
        if not getattr(message, "uuid", None):
            raise ValueError(f"A result needs the message's uuid; got {message!r} without one")
        queue = getattr(message, "queue", None) or DEFAULT_QUEUE
        return _result_name(queue, message.uuid, getattr(message, "progenitor_uuid", None))

    @staticmethod
    def _extract_uuid(storage_name: str) -> str:
        return storage_name.rsplit(":", 1)[-1]

    def _full(self, name: str) -> str:
        return f"{self.backend.namespace}:{name}"

    def _channel(self, name: str) -> str:
        return self._full(f"channel:{name}")

    def _chain_names(self, message: ResultSubject) -> list[str] | None:
        """The message's name then its descendants', in chain order; ``None`` if unknown."""
        data = getattr(message, "callback_message_data", None)
        if not data:
            return None
        progenitor = message.progenitor_uuid or message.uuid
        names = [self.get_storage_name(message)]
        while data:
            names.append(_result_name(data.get("queue") or DEFAULT_QUEUE, data["uuid"], progenitor))
            data = data.get("callback_message_data")
        return names

    def _wake_channels(self, message: ResultSubject, descendants: bool) -> list[str]:
        """Channels on which the message's results (known ones) are announced."""
        names = self._chain_names(message) if descendants else None
        return [self._channel(name) for name in names or [self.get_storage_name(message)]]

    # -- records -----------------------------------------------------------------------------

    def _encode(self, message: ResultSubject, record: dict[str, Any]) -> str:
        """Serialize a record; ``TypeError`` naming the message before anything is written."""
        return encode_value(self.backend, record, f"The result of message {message.uuid}")

    def _result_effects(self, message: ResultSubject, result: Any, nx: bool) -> list[Effect]:
        name = self.get_storage_name(message)
        record = self._encode(message, {"result": result, "timestamp": utcnow_timestamp_ms()})
        return [
            SetEffect(self._full(name), record, ttl=self.ttl_for(message), nx=nx),
            PublishEffect(self._channel(name), WAKE_PAYLOAD),
        ]

    def effects(self, message: ResultSubject, result: Any) -> list[Effect]:
        """The writes storing ``result``: pass them to ``broker.ack(message, effects=...)``.

        ``SET NX`` with ``PX ttl_for(message)`` (an existing result is kept: a redelivery's
        second result does not replace the first, and the ack still succeeds) plus a wake-up
        publish.
        ``TypeError`` here, before anything is sent, if ``result`` cannot be serialized.
        """
        return self._result_effects(message, result, nx=True)

    def failure_effects(self, message: ResultSubject) -> list[Effect]:
        """The writes recording that the message failed for good: pass them to ``broker.fail``.

        ``get`` then raises ``TaskFailedError`` with the exception's type and text (taken from
        ``message.exception_details``). A later result (after a requeue from the DLQ) wins.
        """
        name = self.get_storage_name(message)
        details = message.exception_details
        record = {
            "name": details.name if details else "UnknownError",
            "text": details.text if details else None,
            "timestamp": utcnow_timestamp_ms(),
        }
        return [
            SetEffect(
                self._full(_failure_name(name)),
                self._encode(message, record),
                self.ttl_for(message),
            ),
            PublishEffect(self._channel(name), WAKE_PAYLOAD),
        ]

    def requeue_effects(self, message: ResultSubject) -> list[Effect]:
        """The writes of a requeue from the DLQ: the failure record is deleted, so that ``get``
        waits for the new attempt instead of raising ``TaskFailedError``."""
        name = self.get_storage_name(message)
        return [DeleteEffect(self._full(_failure_name(name)))]

    def _failed(self, name: str, raw: str) -> TaskFailedError:
        record = self.backend.serializer.reverse(raw)
        text = f": {record['text']}" if record.get("text") else ""
        return TaskFailedError(
            f"Message {self._extract_uuid(name)} failed for good, so it has no result "
            f"({record['name']}{text})"
        )

    # -- operations, as steps (run by the sync and async shells) -----------------------------

    def _names_steps(
        self, message: ResultSubject, descendants: bool
    ) -> Steps[tuple[list[str], bool]]:
        """Names to read, and whether they are in chain order (else: sort by write time)."""
        own = self.get_storage_name(message)
        if not descendants:
            return [own], True
        chain = self._chain_names(message)
        if chain is not None:
            return chain, True
        progenitor = glob_escape(message.progenitor_uuid or message.uuid)
        pattern = self._full(f"results:{{*}}:{progenitor}:descendants:*")
        keys = yield ScanKeys(pattern, SCAN_COUNT)
        found = {key[len(self._full("")) :] for key in keys}
        return [own, *sorted(found - {own})], False

    def _exists_steps(self, message: ResultSubject, descendants: bool) -> Steps[bool]:
        names, _ = yield from self._names_steps(message, descendants)
        counts = yield batched(*(("EXISTS", self._full(name)) for name in names))
        return bool(names) and all(counts)

    def _set_steps(self, message: ResultSubject, result: Any, nx: bool) -> Steps[None]:
        effects = self._result_effects(message, result, nx=nx)
        written, _ = yield call(*effect_commands(effects), atomic=True)
        if nx and not written:
            raise KeyError(f"A result for message {message.uuid} already exists")

    def _read_steps(self, names: list[str]) -> Steps[list[dict[str, Any]] | None]:
        """Every record, or ``None`` while one is missing; ``TaskFailedError`` for a failure."""
        replies = yield batched(
            *(("GET", self._full(name)) for name in names),
            *(("GET", self._full(_failure_name(name))) for name in names),
        )
        results, failures = replies[: len(names)], replies[len(names) :]
        for name, raw, failure in zip(names, results, failures):
            if raw is None and failure is not None:
                raise self._failed(name, failure)
        if any(raw is None for raw in results):
            return None
        records = [self.backend.serializer.reverse(raw) for raw in results]
        for name, record in zip(names, records):
            record["uuid"] = self._extract_uuid(name)
        return records

    def _get_steps(
        self,
        message: ResultSubject,
        timeout: int = 0,
        keep: bool = True,
        with_metadata: bool = False,
        descendants: bool = False,
    ) -> Steps[Any]:
        deadline = time.monotonic() + timeout / 1000 if timeout else None
        subscription = None
        while True:
            names, in_order = yield from self._names_steps(message, descendants)
            records = yield from self._read_steps(names)
            if records is not None:
                break
            if not timeout:
                raise KeyError(f"No results for {message.uuid}")
            if subscription is None and self.backend.SUPPORTS_PUBSUB:
                # Subscribe, then read again: a result written in between is not missed.
                subscription = yield Subscribe(tuple(self._channel(name) for name in names))
                continue
            if deadline is None or time.monotonic() >= deadline or stop_requested():
                raise TimeoutError(f"Timeout waiting for the result(s) of message {message.uuid}")
            yield from wait_steps(subscription, deadline, NO_PUBSUB_POLL_SECONDS)
        if not in_order:
            records.sort(key=lambda record: record["timestamp"])
        if not keep:
            yield from self._delete_names_steps(names)
        output = records if with_metadata else [record["result"] for record in records]
        return output if descendants else output[0]

    def _delete_names_steps(self, names: list[str]) -> Steps[list[int]]:
        """Delete results (and failure records); how many keys each name had."""
        counts = yield call(
            *(("DEL", self._full(name), self._full(_failure_name(name))) for name in names)
        )
        return [int(count) for count in counts]

    def _delete_steps(
        self, message: ResultSubject, descendants: bool, missing_ok: bool
    ) -> Steps[int]:
        names, _ = yield from self._names_steps(message, descendants)
        counts = yield from self._delete_names_steps(names)
        missing = [self._extract_uuid(name) for name, count in zip(names, counts) if not count]
        if missing and not missing_ok:
            raise KeyError(f"No results to delete for message(s) {', '.join(missing)}")
        return len(names)

    # -- the interface (spec) ----------------------------------------------------------------

    @abstractmethod
    def exists(self, message: ResultSubject, descendants: bool = False) -> bool | Any:
        """Whether every result (the message's, and its descendants') exists."""

    @abstractmethod
    def set(self, message: ResultSubject, result: Any, nx: bool = True) -> Any | None:
        """Store a result; with ``nx`` an existing one raises ``KeyError``."""

    @abstractmethod
    def get(
        self,
        message: ResultSubject,
        timeout: int = 0,
        keep: bool = True,
        with_metadata: bool = False,
        descendants: bool = False,
    ) -> Any:
        """The result(s); ``timeout`` (ms) waits for them to arrive."""

    @abstractmethod
    def delete(
        self, message: ResultSubject, descendants: bool = True, missing_ok: bool = False
    ) -> int | Any:
        """Delete the result(s); returns how many names were processed."""
