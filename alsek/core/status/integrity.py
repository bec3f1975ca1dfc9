"""``StatusTrackerIntegrityScanner``: mark UNKNOWN the statuses whose message is gone.

A status stuck in SUBMITTED, RUNNING or RETRYING while its message no longer exists (its worker
died between ack and status, the message expired, someone deleted it) would be waited on forever.
The scanner finds them without a keyspace SCAN: for every queue in the broker's registry
(``broker.queues()``) it walks the queue's live-status index ``status:{<queue>}:live`` (kept by
every status write, see ``base``) with ZSCAN, reads those statuses in one round trip, and settles
each with a small script that, atomically:

* drops the index entry of a status that vanished (expired) or is no longer in flight;
* leaves the status alone if it changed since it was read (a handler wrote SUCCEEDED meanwhile:
  the handler wins), or if the message still exists or is leased;
* otherwise writes UNKNOWN (with the tracker's TTL), publishes it and drops the index entry.

The status, the index, the message body and its lease share the queue's hash tag, so the script
runs on one Redis Cluster slot. The tracker must use the broker's Redis server.
"""

from __future__ import annotations

import logging
from collections import Counter

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from alsek.core.broker import Broker, keys
from alsek.core.message import Message
from alsek.core.status.sync import StatusTracker
from alsek.core.status.types import LIVE_TASK_STATUSES, StatusUpdate, TaskStatus
from alsek.core.steps.drivers import run
from alsek.core.steps.ops import Script, ScriptCall, Steps, call

log = logging.getLogger(__name__)

#: Index entries read (and settled) per round trip.
SCAN_BATCH_SIZE = 500

#: KEYS: status, live index, message body, lease. ARGV: status as read ('' if missing), UNKNOWN
#: payload, ttl (0: none), channel ('': no publish), index member, mode ('check' or 'drop').
SETTLE_SCRIPT = Script.from_text(
    "settle",
    """
local current = redis.call('GET', KEYS[1])
if not current then
  redis.call('ZREM', KEYS[2], ARGV[5])
  return 'GONE'
end
if current ~= ARGV[1] then return 'CHANGED' end
if ARGV[6] == 'drop' then
  redis.call('ZREM', KEYS[2], ARGV[5])
  return 'DROPPED'
end
if redis.call('EXISTS', KEYS[3]) == 1 or redis.call('EXISTS', KEYS[4]) == 1 then
  return 'ALIVE'
end
local ttl = tonumber(ARGV[3])
if ttl > 0 then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
else
  redis.call('SET', KEYS[1], ARGV[2])
end
if ARGV[4] ~= '' then redis.call(PUBLISH, ARGV[4], ARGV[2]) end
redis.call('ZREM', KEYS[2], ARGV[5])
return 'MARKED'
""",
)


def _name2message(queue: str, member: str) -> Message | None:
    """The stub message of a live-index member ``<task>:<uuid>`` (task names have no ``:``);
    ``None`` for a member that names no message."""
    task_name, _, uuid = member.partition(":")
    try:
        return Message(task_name, queue=queue, uuid=uuid)
    except (TypeError, ValueError):
        return None


class StatusTrackerIntegrityScanner:
    """Periodically mark UNKNOWN the in-flight statuses whose message no longer exists.

    Args:
        status_tracker: a sync tracker on the broker's Redis server.
        broker: the broker whose queues (and messages) to check.
        trigger: when to scan (an APScheduler trigger); falsy: never on its own (call ``scan``).

    Raises:
        ValueError: ``Async backends not supported``.
    """

    def __init__(
        self,
        status_tracker: StatusTracker,
        broker: Broker,
        trigger: CronTrigger | DateTrigger | IntervalTrigger | None = IntervalTrigger(hours=1),
    ) -> None:
        if status_tracker.backend.IS_ASYNC or broker.backend.IS_ASYNC:
            raise ValueError("Async backends not supported")
        self.status_tracker = status_tracker
        self.broker = broker
        self.trigger = trigger
        self.scheduler = BackgroundScheduler()
        if trigger:
            self.scheduler.start()
            self.scheduler.add_job(self.scan, trigger=trigger, id="integrity_scan")

    def scan(self) -> None:
        """Check every in-flight status of every queue once."""
        outcomes: Counter[str] = Counter()
        for queue in self.broker.queues():
            conn = self.status_tracker.backend.conn
            outcomes += run(self._scan_queue_steps(queue), conn)
        if outcomes["MARKED"]:
            log.warning("Integrity scan marked %s statuses UNKNOWN.", outcomes["MARKED"])
        log.debug("Integrity scan: %s", dict(outcomes))

    def _scan_queue_steps(self, queue: str) -> Steps[Counter[str]]:
        tracker = self.status_tracker
        index = tracker._full(tracker.get_index_name(queue))
        outcomes: Counter[str] = Counter()
        cursor = 0
        while True:
            [(cursor, entries)] = yield call(("ZSCAN", index, cursor, "COUNT", SCAN_BATCH_SIZE))
            members = [member for member, _ in entries]
            if members:
                outcomes += yield from self._settle_steps(queue, index, members)
            if int(cursor) == 0:
                return outcomes

    def _settle_steps(self, queue: str, index: str, members: list[str]) -> Steps[Counter[str]]:
        tracker = self.status_tracker
        named = [(member, _name2message(queue, member)) for member in members]
        junk = [member for member, stub in named if stub is None]
        if junk:
            yield call(("ZREM", index, *junk))
        members = [member for member, stub in named if stub is not None]
        stubs = [stub for _, stub in named if stub is not None]
        if not stubs:
            return Counter(DROPPED=len(junk))
        status_keys = [tracker._key(stub) for stub in stubs]
        raws = yield call(*(("GET", key) for key in status_keys))
        unknown = tracker._encode(StatusUpdate(TaskStatus.UNKNOWN))
        replies = yield call(
            *(
                ScriptCall(
                    SETTLE_SCRIPT,
                    (
                        key,
                        index,
                        f"{self.broker.backend.namespace}:{keys.message_key(queue, stub.uuid)}",
                        self.broker.lease_key(stub),
                    ),
                    (
                        raw or "",
                        unknown,
                        tracker.ttl or 0,
                        tracker._channel(stub) if tracker.enable_pubsub else "",
                        member,
                        self._mode(raw),
                    ),
                )
                for key, stub, member, raw in zip(status_keys, stubs, members, raws)
            )
        )
        return Counter(str(reply) for reply in replies) + Counter(DROPPED=len(junk))

    def _mode(self, raw: str | None) -> str:
        """'check' a status in flight (or missing); 'drop' the index entry of any other."""
        if raw is None:
            return "check"
        try:
            live = self.status_tracker._decode(raw).value in LIVE_TASK_STATUSES
        except (KeyError, TypeError, ValueError, AttributeError):
            log.warning("Unreadable status %r; removing it from the live index.", raw)
            return "drop"
        return "check" if live else "drop"

    def __repr__(self) -> str:
        return (
            f"StatusTrackerIntegrityScanner(status_tracker={self.status_tracker!r}, "
            f"broker={self.broker!r}, trigger={self.trigger!r})"
        )
