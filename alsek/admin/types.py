"""What the operator's API returns: plain, frozen values that turn into JSON (``as_dict``).

Times are milliseconds since the epoch, durations milliseconds; every value comes from Redis
as it was at one moment, judged by the Redis server's clock (``TIME``), not the caller's.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Literal

from alsek.core.broker.keys import RUN_MS_BUCKETS
from alsek.core.status.types import StatusUpdate

__all__ = [
    "RUN_MS_BUCKETS",
    "ErrorInfo",
    "MessageInfo",
    "QueueStats",
    "TaskStats",
    "ThroughputPoint",
    "WorkerInfo",
]

#: Where a message is: waiting to run (``ready``), waiting for its ready time (``delayed``, a
#: delay or a retry's backoff), leased to a worker (``running``), in the dead-letter queue
#: (``dead``), finished with a result (``done``), or gone with only a status left (``unknown``).
MessageState = Literal["ready", "delayed", "running", "dead", "done", "unknown"]
MESSAGE_STATES: tuple[str, ...] = ("ready", "delayed", "running", "dead", "done", "unknown")
#: The states ``messages()`` pages through.
LISTED_STATES: tuple[str, ...] = ("ready", "delayed", "running", "dead")
#: What ``purge()`` empties.
PURGEABLE_STATES: tuple[str, ...] = ("ready", "delayed", "all")


def _plain(value: Any) -> Any:
    """``value`` with every nested type turned into JSON-ready dicts and lists."""
    if isinstance(value, StatusUpdate):
        return {"value": value.value.name, "details": _plain(value.details), "at": value.at}
    if hasattr(value, "as_dict") and hasattr(value, "__dataclass_fields__"):
        return value.as_dict()
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


class _AsDict:
    """``as_dict()``: the fields as a JSON-ready dict, exactly the dataclass's keys."""

    def as_dict(self) -> dict[str, Any]:
        """The fields, nested values included, as plain dicts and lists."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]


@dataclass(frozen=True)
class TaskStats(_AsDict):
    """The counts of one task in one queue, and whether a live worker serves it there."""

    task: str
    ready: int
    delayed: int
    running: int
    dead: int
    served: bool


@dataclass(frozen=True)
class QueueStats(_AsDict):
    """The counts of one queue.

    ``delayed`` holds messages waiting for a delay or a retry backoff; ``running`` the leased
    ones; ``dead`` the dead-letter queue. ``oldest_ready_ms`` is how long the message at the
    head of a task's ready set has been ready, the longest over the queue's tasks (``None``:
    nothing ready); with one priority that is the oldest ready message.
    """

    queue: str
    ready: int
    delayed: int
    running: int
    dead: int
    paused: bool
    oldest_ready_ms: int | None
    tasks: list[TaskStats]


@dataclass(frozen=True)
class WorkerInfo(_AsDict):
    """A worker pool as its last heartbeat described it.

    ``kind`` is ``thread``, ``process`` or ``async``; ``slots`` how many messages it runs at
    once and ``busy`` how many it ran at its last beat; ``state`` is ``running`` or
    ``stopping``; ``alive`` whether its last beat is recent enough (within its beat timeout).
    """

    id: str
    kind: str
    host: str
    pid: int
    version: str
    queues: list[str]
    tasks: list[str]
    slots: int
    busy: int
    started_at: int
    last_beat_at: int
    alive: bool
    state: str


@dataclass(frozen=True)
class ErrorInfo(_AsDict):
    """Why a message failed: the exception's type, its message and traceback (when kept)."""

    type: str
    message: str | None
    traceback: str | None


@dataclass(frozen=True)
class MessageInfo(_AsDict):
    """One message, found by uuid.

    ``data`` is the stored message (``Message.data``; ``None`` once only a status or result
    remains), ``status`` its current status and ``history`` every status it had (oldest first,
    with the time of each write, when a status tracker records them), ``result`` what it
    returned (with a result store), ``error`` why it failed (a failure, a dead letter, or the
    last failed attempt of a message being retried).
    """

    uuid: str
    queue: str
    task: str
    state: MessageState
    data: dict[str, Any] | None
    status: StatusUpdate | None
    history: list[StatusUpdate]
    result: Any
    error: ErrorInfo | None


@dataclass(frozen=True)
class ThroughputPoint(_AsDict):
    """The attempts that ended in one minute or hour (``Admin.throughput``).

    ``at_ms`` is the start of the minute or hour (server time). ``failed`` counts messages
    that failed for good (dead-lettered, or dropped when no dead letter is kept), of which
    ``dead_lettered`` went to the dead-letter queue; ``retried`` attempts that failed and were
    given another. ``run_ms_buckets[i]`` counts the runs that ended there (any outcome) and
    took at most ``RUN_MS_BUCKETS[i]`` ms (and more than the bound before); the last item
    counts those beyond the last bound. Messages failed without a run (a lost worker's last
    attempt, an expired unserved message) count as failed but in no bucket.
    """

    at_ms: int
    succeeded: int
    failed: int
    retried: int
    dead_lettered: int
    run_ms_buckets: tuple[int, ...]
