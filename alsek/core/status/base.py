"""``BaseStatusTracker``: every status decision, shared by ``StatusTracker`` and its async twin.

Redis layout (short names; the backend namespace goes in front):

* ``status:{<queue>}:<task>:<uuid>`` (STRING): the serialized
  ``{"value": <TaskStatus name>, "details": ..., "at": <ms of the write>}``. The braces are a
  literal Redis Cluster hash tag, the same one every key of the queue carries (see
  ``alsek.core.broker.keys``), so a status write can ride inside the queue's broker scripts.
  Every write sets ``PX ttl``: a status expires ``ttl`` after its *last* write, whatever the
  first one was (``ttl=None``: never).
* ``status:{<queue>}:<task>:<uuid>:history`` (LIST): every status written, oldest first, as
  ``"<ms> <payload>"`` (the time of the write, by the Redis server's clock when written by a
  broker script), the last ``HISTORY_LENGTH`` kept; it expires with the status.
* ``status:{<queue>}:live`` (ZSET): the statuses still in flight (SUBMITTED, RUNNING, RETRYING),
  member ``<task>:<uuid>``, score = time of the write. The integrity scanner walks it instead of
  scanning the keyspace; a write of any other status removes the member.
* Pub/sub channel ``{namespace}:channel:{<queue>}:<task>:<uuid>``: namespaced, so two namespaces
  on one Redis never hear each other. Every write publishes the stored payload.

Writing a status with a broker operation: ``effects()`` describes the writes (SET with PX, PUBLISH,
index update) for ``broker.submit/ack/retry/fail/revoke(..., effects=...)``, and
``claim_status()`` the RUNNING write of ``broker.claim(..., status=...)``; the broker applies them
in the same round trip, only if its operation succeeds. The tracker must then use the same Redis
server as the broker. ``set()`` applies the same writes on their own (one MULTI/EXEC).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from alsek.core.broker.effects import (
    ClaimStatus,
    Effect,
    HistoryEffect,
    IndexAddEffect,
    IndexRemoveEffect,
    PublishEffect,
    SetEffect,
    effect_commands,
)
from alsek.core.status.types import (
    LIVE_TASK_STATUSES,
    TERMINAL_TASK_STATUSES,
    StatusSubject,
    StatusUpdate,
    TaskStatus,
)
from alsek.core.steps.hub import Published
from alsek.core.steps.ops import Emit, Receive, Sleep, Steps, Subscribe, batched, call
from alsek.core.steps.waiting import deadline_after, first_emitted, seconds_left, snapshot_steps
from alsek.defaults import DEFAULT_TTL
from alsek.exceptions import ValidationError
from alsek.storage.backends.base import BaseBackend
from alsek.storage.backends.helpers import check_backend_kind, encode_value, rebuild_backend
from alsek.utils.temporal import utcnow_timestamp_ms

TrackerT = TypeVar("TrackerT", bound="BaseStatusTracker")


@dataclass(frozen=True)
class _Placeholders:
    """The placeholders of ``ClaimStatus`` templates, as a subject the name builders accept."""

    queue: str = "<queue>"
    task_name: str = "<task>"
    uuid: str = "<uuid>"


_PLACEHOLDERS = _Placeholders()
#: Statuses kept per message in its history (the latest).
HISTORY_LENGTH = 50
#: Details of the FAILED status of a message dead-lettered because no live worker serves its task.
UNSERVED_DETAILS = "no worker serves this task: moved to the dead-letter queue"
#: Details of the FAILED status of a claimed message whose body could not be decoded.
REJECTED_DETAILS = "undecodable message body: moved to the dead-letter queue"

StatusTarget = TaskStatus | tuple[TaskStatus, ...] | list[TaskStatus]


def _identity(message: object) -> tuple[str, str, str]:
    """Queue, task name and uuid of ``message``; ``ValidationError`` naming what is missing."""
    queue = getattr(message, "queue", None)
    task_name = getattr(message, "task_name", None)
    uuid = getattr(message, "uuid", None)
    if queue and task_name and uuid:
        return queue, task_name, uuid
    given = {"queue": queue, "task_name": task_name, "uuid": uuid}
    missing = [name for name, value in given.items() if not value]
    raise ValidationError(f"A status needs the message's queue, task_name and uuid: {missing}")


def _targets(status: Any) -> tuple[TaskStatus, ...]:
    if isinstance(status, TaskStatus):
        return (status,)
    if isinstance(status, (tuple, list)) and all(isinstance(s, TaskStatus) for s in status):
        return tuple(status)
    raise ValueError(f"status must be a TaskStatus, or a tuple or list of them, got {status!r}")


def _positive_ms(name: str, value: Any) -> int | None:
    """``value`` if it is ``None`` or a positive int of milliseconds, else ``ValueError``."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
        raise ValueError(f"{name} must be a positive int of milliseconds or None, got {value!r}")
    return value


def _check_status(status: Any) -> TaskStatus:
    if not isinstance(status, TaskStatus):
        raise ValueError(f"status must be a TaskStatus, got {status!r}")
    return status


class BaseStatusTracker(ABC):
    """Track message statuses in Redis, and publish every change.

    Args:
        backend: where statuses live; use the broker's Redis when writing with broker operations.
        ttl: how long (ms) a status lives after its last write; ``None``: forever.
        enable_pubsub: publish every write (needed by ``listen_to_updates``; ``wait_for`` polls
            without it); ``None`` means ``backend.SUPPORTS_PUBSUB``.

    Raises:
        AssertionError: ``enable_pubsub=True`` with a backend without pub/sub, or a backend of
            the wrong kind (sync vs async).
    """

    _IS_ASYNC = False

    def __init__(
        self,
        backend: BaseBackend,
        ttl: int | None = DEFAULT_TTL,
        enable_pubsub: bool | None = None,
    ) -> None:
        check_backend_kind(type(self).__name__.removeprefix("Async"), backend, self._IS_ASYNC)
        if enable_pubsub and not backend.SUPPORTS_PUBSUB:
            raise AssertionError(f"{type(backend).__name__} does not support PUBSUB")
        self.backend = backend
        self.ttl = _positive_ms("ttl", ttl)
        self.enable_pubsub = backend.SUPPORTS_PUBSUB if enable_pubsub is None else enable_pubsub

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(backend={self.backend!r}, ttl={self.ttl!r}, "
            f"enable_pubsub={self.enable_pubsub!r})"
        )

    def serialize(self) -> dict[str, Any]:
        """Settings that rebuild this tracker in another process."""
        return {
            "backend": self.backend.encode(),
            "ttl": self.ttl,
            "enable_pubsub": self.enable_pubsub,
        }

    @classmethod
    def deserialize(cls: type[TrackerT], data: dict[str, Any]) -> TrackerT:
        """Rebuild a tracker (with a new connection pool) from ``serialize()``'s output."""
        return cls(
            backend=rebuild_backend(data["backend"]),
            ttl=data["ttl"],
            enable_pubsub=data["enable_pubsub"],
        )

    # -- names -------------------------------------------------------------------------------

    @staticmethod
    def get_storage_name(message: StatusSubject) -> str:
        """``status:{<queue>}:<task>:<uuid>``; ``ValidationError`` if one of them is empty."""
        queue, task_name, uuid = _identity(message)
        return f"status:{{{queue}}}:{task_name}:{uuid}"

    @staticmethod
    def get_pubsub_name(message: StatusSubject) -> str:
        """``channel:{<queue>}:<task>:<uuid>`` (the backend namespace goes in front)."""
        queue, task_name, uuid = _identity(message)
        return f"channel:{{{queue}}}:{task_name}:{uuid}"

    @staticmethod
    def get_history_name(message: StatusSubject) -> str:
        """``status:{<queue>}:<task>:<uuid>:history``: every status the message had."""
        return f"{BaseStatusTracker.get_storage_name(message)}:history"

    @staticmethod
    def get_index_name(queue: str) -> str:
        """``status:{<queue>}:live``: the queue's statuses still in flight."""
        return f"status:{{{queue}}}:live"

    def _full(self, name: str) -> str:
        return f"{self.backend.namespace}:{name}"

    def _key(self, message: StatusSubject) -> str:
        return self._full(self.get_storage_name(message))

    def _history_key(self, message: StatusSubject) -> str:
        return self._full(self.get_history_name(message))

    def _channel(self, message: StatusSubject) -> str:
        return self._full(self.get_pubsub_name(message))

    # -- payloads ----------------------------------------------------------------------------

    def _encode(self, update: StatusUpdate, at: int | None = None, stamped: bool = True) -> str:
        """The stored and published form (``at``: time of the write, default now; none when
        not ``stamped``); ``TypeError`` (nothing written) if it cannot be."""
        when = (utcnow_timestamp_ms() if at is None else at) if stamped else None
        data = {**update.as_dict(), "at": when}
        return encode_value(self.backend, data, f"The details of status {update.value.name}")

    def _decode(self, raw: str) -> StatusUpdate:
        data = self.backend.serializer.reverse(raw)
        return StatusUpdate(TaskStatus[data["value"]], data.get("details"), data.get("at"))

    # -- writes that ride with broker operations ---------------------------------------------

    def effects(
        self, message: StatusSubject, status: TaskStatus, details: Any = None
    ) -> list[Effect]:
        """The writes recording ``status``: pass them to a broker operation's ``effects``.

        SET with ``PX ttl``, PUBLISH (when pub/sub is on) and the live-index update. Raises
        ``TypeError`` here, before anything is sent, if ``details`` cannot be serialized.
        """
        update = StatusUpdate(_check_status(status), details)
        queue, task_name, uuid = _identity(message)
        now = utcnow_timestamp_ms()
        payload = self._encode(update, now)
        effects: list[Effect] = [
            SetEffect(self._key(message), payload, ttl=self.ttl),
            HistoryEffect(self._history_key(message), payload, HISTORY_LENGTH, self.ttl),
        ]
        if self.enable_pubsub:
            effects.append(PublishEffect(self._channel(message), payload))
        index, member = self._full(self.get_index_name(queue)), f"{task_name}:{uuid}"
        if update.value in LIVE_TASK_STATUSES:
            effects.append(IndexAddEffect(index, now, member, ttl=self.ttl))
        else:
            effects.append(IndexRemoveEffect(index, member))
        return effects

    def claim_status(
        self, status: TaskStatus = TaskStatus.RUNNING, tasks: Iterable[str] | None = None
    ) -> ClaimStatus:
        """The status ``broker.claim(..., status=...)`` writes for every message it claims.

        ``tasks`` limits it to those task names (``None``: every task). Built once for many
        claims, its payload carries no ``at`` (so the claim statuses of a pool's tasks are
        one and merge); the history records each write's time, by the server's clock.
        """
        payload = self._encode(StatusUpdate(_check_status(status)), stamped=False)
        return ClaimStatus(
            key_template=self._key(_PLACEHOLDERS),
            channel_template=self._channel(_PLACEHOLDERS),
            payload=payload,
            ttl=self.ttl or 0,
            tasks=None if tasks is None else frozenset(tasks),
            rejected_payload=self._encode(
                StatusUpdate(TaskStatus.FAILED, REJECTED_DETAILS), stamped=False
            ),
            index_template=self._full(self.get_index_name(_PLACEHOLDERS.queue)),
            history_template=self._history_key(_PLACEHOLDERS),
            history_length=HISTORY_LENGTH,
            unserved_payload=self._encode(
                StatusUpdate(TaskStatus.FAILED, UNSERVED_DETAILS), stamped=False
            ),
        )

    # -- operations, as steps (run by the sync and async shells) -----------------------------

    def _require_pubsub(self) -> None:
        if not self.enable_pubsub:
            raise ValueError("PUBSUB not enabled")

    def _exists_steps(self, message: StatusSubject) -> Steps[bool]:
        [count] = yield batched(("EXISTS", self._key(message)))
        return bool(count)

    def _publish_steps(self, message: StatusSubject, update: StatusUpdate) -> Steps[None]:
        yield call(("PUBLISH", self._channel(message), self._encode(update)))

    def _set_steps(self, message: StatusSubject, status: TaskStatus, details: Any) -> Steps[None]:
        yield call(*effect_commands(self.effects(message, status, details)), atomic=True)

    def _get_steps(self, message: StatusSubject) -> Steps[StatusUpdate]:
        [raw] = yield batched(("GET", self._key(message)))
        if not raw:
            raise KeyError(f"No status found for message {message.uuid}")
        return self._decode(raw)

    def _decode_history_item(self, item: str) -> StatusUpdate:
        """A history item, ``"<ms> <payload>"``: the status, at the time of its write."""
        at, _, raw = item.partition(" ")
        return self._decode(raw)._replace(at=int(at))

    def _history_steps(self, message: StatusSubject) -> Steps[list[StatusUpdate]]:
        [items] = yield batched(("LRANGE", self._history_key(message), 0, -1))
        return [self._decode_history_item(item) for item in items]

    def _delete_steps(self, message: StatusSubject, check: bool) -> Steps[None]:
        if check:
            current = yield from self._get_steps(message)
            if current.value not in TERMINAL_TASK_STATUSES:
                raise ValidationError(
                    f"Status of message {message.uuid} is {current.value.name}, which is not "
                    "terminal; pass check=False to delete it anyway"
                )
        queue, task_name, uuid = _identity(message)
        index = self._full(self.get_index_name(queue))
        history = self._history_key(message)
        deleted, _, _ = yield call(
            ("DEL", self._key(message)),
            ("ZREM", index, f"{task_name}:{uuid}"),
            ("DEL", history),
            atomic=True,
        )
        if not deleted:
            raise KeyError(f"No status found for message {uuid}")

    def _follow_steps(
        self, message: StatusSubject, auto_exit: bool, deadline: float | None
    ) -> Steps[None]:
        """Emit the current status, then every later one, in order and once each.

        Ends after a terminal status when ``auto_exit``, or when ``deadline`` passes.
        """
        key, channel = self._key(message), self._channel(message)
        subscription = yield Subscribe((channel,))
        last = None
        while True:
            raw = yield from snapshot_steps(subscription, key, channel)
            if raw and raw != last:
                last = raw
                update = self._decode(raw)
                yield Emit(update)
                if auto_exit and update.value in TERMINAL_TASK_STATUSES:
                    return
            while True:
                item = yield Receive(subscription, seconds_left(deadline))
                if item is None:
                    return
                if not isinstance(item, Published):
                    break  # RESYNC: read the state again (stale sync tokens never come here)
                last = item.data
                update = self._decode(item.data)
                yield Emit(update)
                if auto_exit and update.value in TERMINAL_TASK_STATUSES:
                    return

    def _poll_steps(
        self, message: StatusSubject, deadline: float | None, interval: float
    ) -> Steps[None]:
        """Emit the status every ``interval`` seconds until ``deadline`` (no pub/sub)."""
        while True:
            try:
                update = yield from self._get_steps(message)
            except KeyError:
                update = None
            if update is not None:
                yield Emit(update)
            remaining = seconds_left(deadline)
            if remaining == 0:
                return
            yield Sleep(interval if remaining is None else min(interval, remaining))

    def _wait_for_steps(
        self,
        message: StatusSubject,
        status: StatusTarget,
        timeout: float | None,
        poll_interval: float,
        raise_on_timeout: bool,
    ) -> Steps[TaskStatus]:
        targets = _targets(status)
        deadline = deadline_after(timeout)
        if self.enable_pubsub:
            updates = self._follow_steps(message, auto_exit=False, deadline=deadline)
        else:
            updates = self._poll_steps(message, deadline, poll_interval)
        last, found = yield from first_emitted(updates, lambda u: u.value in targets)
        if found:
            found_update: StatusUpdate = last
            return found_update.value
        if raise_on_timeout:
            raise TimeoutError(f"Timeout waiting for '{getattr(message, 'summary', message)}'")
        return TaskStatus.UNKNOWN if last is None else last.value

    # -- the interface (spec) ----------------------------------------------------------------

    @abstractmethod
    def exists(self, message: StatusSubject) -> bool | Any:
        """Whether the message has a status."""

    @abstractmethod
    def publish_update(self, message: StatusSubject, update: StatusUpdate) -> Any | None:
        """Publish ``update`` on the message's channel without storing it."""

    @abstractmethod
    def listen_to_updates(self, message: StatusSubject, auto_exit: bool = True) -> Any:
        """The current status, then every later one; stops after a terminal one if ``auto_exit``."""

    @abstractmethod
    def set(
        self, message: StatusSubject, status: TaskStatus, details: Any | None = None
    ) -> Any | None:
        """Write (and publish) a status."""

    @abstractmethod
    def get(self, message: StatusSubject) -> StatusUpdate | Any:
        """The current status; ``KeyError`` if there is none."""

    @abstractmethod
    def wait_for(
        self,
        message: StatusSubject,
        status: StatusTarget,
        timeout: float | None = 5.0,
        poll_interval: float = 0.05,
        raise_on_timeout: bool = True,
    ) -> TaskStatus | Any:
        """Wait (seconds) until the status is one of ``status``."""

    @abstractmethod
    def delete(self, message: StatusSubject, check: bool = True) -> Any | None:
        """Delete the status; with ``check``, only a terminal one."""

    @abstractmethod
    def history(self, message: StatusSubject) -> list[StatusUpdate] | Any:
        """Every status the message had, oldest first, each with the time it was written."""
