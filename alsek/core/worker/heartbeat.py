"""Worker heartbeats: each pool registers itself in Redis and beats every few seconds.

A beat is one round trip per pool every ``interval`` ms (never per message). It writes:

* ``registry:{workers}:<id>`` (STRING, JSON): what the pool is (``WorkerRecord``), expiring
  ``MISSED_BEATS`` intervals after the beat, so a killed pool leaves the list by itself;
* ``registry:{workers}`` (ZSET): worker ids by last beat (ms), the list operators read; members
  whose record expired are pruned by later beats after ``REGISTRY_RETENTION_MS``;
* ``queues:{<queue>}:tasks:<task>:served`` (ZSET, one per task a pool serves on a queue):
  worker id → time (ms) until which it serves that task. A task is *served* while one score lies
  in the future; the highest score says since when it is not. It carries the queue's hash tag,
  so the queue's scripts can read it (dead-lettering messages nobody serves). At most
  ``SERVED_MEMBERS_KEPT`` members (the latest) are kept.

A graceful stop deletes the pool's record and sets its served scores to the time it stopped
(it serves no more, and the time is kept), so a rolling restart is not mistaken for a task that
nobody has served for long. The registry is its own Cluster slot (``{workers}``): it is off the
per-message path, and a beat reaches it and each queue's slot in one pipelined round trip.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from alsek._version import __version__
from alsek.core.broker.keys import served_key
from alsek.core.steps.ops import Command, Request, Steps, batched
from alsek.defaults import DEFAULT_TTL
from alsek.utils.temporal import utcnow_timestamp_ms

#: Default time (ms) between two beats of a pool.
DEFAULT_HEARTBEAT_INTERVAL = 5_000
#: Beats a pool may miss before it counts as dead and its record expires.
MISSED_BEATS = 3
#: How long the ids of dead workers stay in the registry set before a beat prunes them.
REGISTRY_RETENTION_MS = 60 * 60 * 1000
#: Served-index members kept per task (the latest): enough to remember when the task was last
#: served while bounding the set under many restarts.
SERVED_MEMBERS_KEPT = 50
#: How long a served index outlives the last beat that touched it.
SERVED_RETENTION_MS = DEFAULT_TTL

WORKER_REGISTRY = "registry:{workers}"


def worker_key(worker_id: str) -> str:
    """Record of one worker (same hash tag as the registry)."""
    return f"{WORKER_REGISTRY}:{worker_id}"


def beat_timeout(interval_ms: int) -> int:
    """How long after its last beat a pool counts as dead."""
    return interval_ms * MISSED_BEATS


def new_worker_id() -> str:
    """A worker id: host, pid and a random token (a restarted pool is a new worker)."""
    return f"{socket.gethostname()}-{os.getpid()}-{os.urandom(4).hex()}"


@dataclass(frozen=True)
class WorkerRecord:
    """What a pool says about itself with each beat (times in ms since the epoch).

    ``serves`` maps each queue the pool consumes to the tasks it claims there; ``state`` is
    ``"running"`` or ``"stopping"`` (draining after a stop signal).
    """

    id: str
    kind: str
    host: str
    pid: int
    version: str
    serves: dict[str, list[str]]
    slots: int
    busy: int
    started_at: int
    last_beat_at: int
    interval_ms: int
    state: str = "running"

    @property
    def queues(self) -> list[str]:
        """The queues the pool consumes, in its order."""
        return list(self.serves)

    @property
    def tasks(self) -> list[str]:
        """The task names the pool runs, sorted."""
        return sorted({task for tasks in self.serves.values() for task in tasks})

    def encode(self) -> str:
        """The stored form (JSON, whatever the broker's serializer)."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def decode(cls, raw: str) -> WorkerRecord:
        """A record from its stored form."""
        data = json.loads(raw)
        data["serves"] = {str(q): [str(t) for t in tasks] for q, tasks in data["serves"].items()}
        return cls(**data)


@dataclass
class Heartbeat:
    """The beats of one pool, as steps (the pool drives them, sync or asyncio).

    Args:
        prefix: the namespace prefix of every key (``"alsek:"``).
        kind: ``"thread"``, ``"process"`` or ``"async"``.
        serves: queue → task names the pool claims there.
        interval_ms: time between beats.
    """

    prefix: str
    kind: str
    serves: Mapping[str, Sequence[str]]
    interval_ms: int = DEFAULT_HEARTBEAT_INTERVAL
    worker_id: str = field(default_factory=new_worker_id)
    started_at: int = field(default_factory=utcnow_timestamp_ms)

    @property
    def timeout_ms(self) -> int:
        """How long after a beat this pool counts as dead."""
        return beat_timeout(self.interval_ms)

    def _full(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def record(self, busy: int, slots: int, state: str, now: int) -> WorkerRecord:
        """What a beat at ``now`` writes."""
        return WorkerRecord(
            id=self.worker_id,
            kind=self.kind,
            host=socket.gethostname(),
            pid=os.getpid(),
            version=__version__,
            serves={queue: list(tasks) for queue, tasks in self.serves.items()},
            slots=slots,
            busy=busy,
            started_at=self.started_at,
            last_beat_at=now,
            interval_ms=self.interval_ms,
            state=state,
        )

    def _served_commands(self, until: int) -> list[Command]:
        commands: list[Command] = []
        for queue, tasks in self.serves.items():
            for task in tasks:
                key = self._full(served_key(queue, task))
                commands += [
                    ("ZADD", key, until, self.worker_id),
                    ("ZREMRANGEBYRANK", key, 0, -(SERVED_MEMBERS_KEPT + 1)),
                    ("PEXPIRE", key, SERVED_RETENTION_MS),
                ]
        return commands

    def beat_commands(self, busy: int, slots: int, state: str = "running") -> list[Command]:
        """The commands of one beat (idempotent: a repeat writes the same)."""
        now = utcnow_timestamp_ms()
        registry = self._full(WORKER_REGISTRY)
        record = self.record(busy, slots, state, now).encode()
        return [
            ("SET", self._full(worker_key(self.worker_id)), record, "PX", self.timeout_ms),
            ("ZADD", registry, now, self.worker_id),
            ("ZREMRANGEBYSCORE", registry, "-inf", now - REGISTRY_RETENTION_MS),
            ("PEXPIRE", registry, REGISTRY_RETENTION_MS),
            *self._served_commands(now + self.timeout_ms),
        ]

    def beat_steps(
        self, busy: int, slots: int, state: str = "running", extra: Sequence[Request] = ()
    ) -> Steps[list[Any]]:
        """Beat once (``busy`` of ``slots`` running): refresh the record, the registry and the
        served index; ``extra`` requests ride in the same round trip (their replies are
        returned)."""
        replies = yield batched(*self.beat_commands(busy, slots, state), *extra)
        return list(replies[len(replies) - len(extra) :])

    def leave_steps(self) -> Steps[None]:
        """Leave at a graceful stop: delete the record; served until now."""
        now = utcnow_timestamp_ms()
        yield batched(
            ("DEL", self._full(worker_key(self.worker_id))),
            ("ZREM", self._full(WORKER_REGISTRY), self.worker_id),
            *self._served_commands(now),
        )
