"""The hygiene checker: every alsek key of a namespace is accounted for, and bounded.

``audit(conn, namespace)`` reads the whole keyspace of the namespace (SCAN, then one pipelined
read per key) and sorts every key into what ``docs/redis-layout.md`` says may exist:

* a live message (body hash) with exactly one index entry (ready set, its task's parked set,
  delayed set or lease index), its lease lock when it is leased, and index keys living at
  least as long as it;
* an index, registry, counter, wake list, claim-reply cache or the request ids of recent
  submits, every index entry of which points to a live message (a dead letter, for the DLQ
  index);
* a finish mark: the lease key of a finished message, which keeps ``finished-by:<owner>`` for
  the rest of the lease and at least 40 s (so a repeat of the ack or fail is recognised), in no
  lease index;
* a status (a non-terminal one only for a live message, and listed in the live index), a
  result or a failure record;
* a dead letter (body, reason, time of failure) listed in its DLQ index;
* the per-task mirrors of the delayed, leases and DLQ indexes (holding what their queue's index
  holds), the served index, a pause flag, uuid records, worker records and their registry,
  status histories;
* task limits: concurrency slot holders and rate windows, a concurrency key's parked set (each
  entry also in its task's parked set) and the queue's recheck index of such keys.

Every key must have a TTL (but a pause flag, which an operator sets and removes). Anything else
is a violation: an unknown key, a key without TTL, an index entry pointing nowhere (an orphan),
a message in no index or in two.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import redis

#: Terminal status names: a status that is not one of them belongs to a live message.
TERMINAL = ("SUCCEEDED", "FAILED")
#: Fields every message body hash has.
MESSAGE_FIELDS = ("data", "task", "prio", "seq")
#: What a finished message's lease key holds, followed by the owner that finished it.
FINISH_MARK = "finished-by:"
#: Fields every dead letter has.
DLQ_FIELDS = ("data", "reason", "failed_at")
#: Slack (ms) between reading a message's TTL and its index's, and for lease deadlines.
CLOCK_SLACK_MS = 5_000


@dataclass
class Audit:
    """What ``audit`` found: keys by kind, live messages by index, and every violation."""

    kinds: Counter[str] = field(default_factory=Counter)
    live: dict[str, str] = field(default_factory=dict)  # "<queue>/<uuid>" -> where
    dead_letters: dict[str, str] = field(default_factory=dict)  # "<queue>/<uuid>" -> reason
    violations: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Counts, for the figures."""
        return {
            "keys": sum(self.kinds.values()),
            "by_kind": {kind: count for kind, count in sorted(self.kinds.items()) if count},
            "live_messages": len(self.live),
            "dead_letters": len(self.dead_letters),
            "violations": len(self.violations),
        }


def _patterns(ns: str) -> list[tuple[str, re.Pattern[str]]]:
    q = r"queues:\{(?P<q>[^}]+)\}"
    n = re.escape(ns)
    table = [
        ("registry", rf"{n}:registry:\{{queues\}}"),
        ("registry_wake", rf"{n}:registry:\{{queues\}}:wake"),
        ("registry_seen", rf"{n}:registry:\{{queues\}}:seen"),
        ("workers", rf"{n}:registry:\{{workers\}}"),
        ("worker", rf"{n}:registry:\{{workers\}}:(?P<w>.+)"),
        ("uuid_record", rf"{n}:uuids:(?P<u>[^:]+)"),
        ("paused", rf"{n}:{q}:paused"),
        ("task_delayed", rf"{n}:{q}:tasks:(?P<t>[^:]+):delayed"),
        ("task_leases", rf"{n}:{q}:tasks:(?P<t>[^:]+):leases"),
        ("task_dlq", rf"{n}:{q}:tasks:(?P<t>[^:]+):dlq"),
        ("served", rf"{n}:{q}:tasks:(?P<t>[^:]+):served"),
        ("parked", rf"{n}:{q}:tasks:(?P<t>[^:]+):parked"),
        ("key_parked", rf"{n}:{q}:limits:(?P<t>[^:]+):parked:(?P<k>.+)"),
        ("running", rf"{n}:{q}:limits:(?P<t>[^:]+):running(?::(?P<k>.+))?"),
        ("rate", rf"{n}:{q}:limits:(?P<t>[^:]+):rate"),
        ("rechecks", rf"{n}:{q}:limits:rechecks"),
        ("status_history", rf"{n}:status:\{{(?P<q>[^}}]+)\}}:(?P<t>[^:]+):(?P<u>[^:]+):history"),
        ("message", rf"{n}:{q}:messages:(?P<u>[^:]+)"),
        ("lock", rf"lock:{n}:{q}:messages:(?P<u>[^:]+)"),
        ("ready", rf"{n}:{q}:tasks:(?P<t>[^:]+):ready"),
        ("tasks", rf"{n}:{q}:tasks"),
        ("delayed", rf"{n}:{q}:delayed"),
        ("leases", rf"{n}:{q}:leases"),
        ("wake", rf"{n}:{q}:wake"),
        ("seq", rf"{n}:{q}:seq"),
        ("requests", rf"{n}:{q}:requests"),
        ("claim_cache", rf"{n}:{q}:claim:(?P<owner>.+)"),
        ("dlq_index", rf"{n}:{q}:dlq"),
        ("throughput", rf"{n}:{q}:throughput:(?:minute|hour):\d+"),
        ("dead_letter", rf"{n}:{q}:dlq:(?P<u>[^:]+)"),
        ("revoked", rf"{n}:{q}:revoked:(?P<u>[^:]+)"),
        ("trigger", rf"{n}:{q}:triggers:(?P<u>[^:]+)"),
        # The throughput history (Admin.throughput): counters per minute and per hour.
        ("throughput", rf"{n}:{q}:throughput:(?:minute|hour):\d+"),
        ("status_live", rf"{n}:status:\{{(?P<q>[^}}]+)\}}:live"),
        ("status", rf"{n}:status:\{{(?P<q>[^}}]+)\}}:(?P<t>[^:]+):(?P<u>[^:]+)"),
        ("result", rf"{n}:results:\{{(?P<q>[^}}]+)\}}:(?:(?P<p>[^:]+):descendants:)?(?P<u>[^:]+)"),
        (
            "failure",
            rf"{n}:failures:\{{(?P<q>[^}}]+)\}}:(?:(?P<p>[^:]+):descendants:)?(?P<u>[^:]+)",
        ),
    ]
    return [(kind, re.compile(pattern + r"\Z")) for kind, pattern in table]


def _classify(key: str, patterns: list[tuple[str, re.Pattern[str]]]) -> tuple[str, dict[str, str]]:
    for kind, pattern in patterns:
        match = pattern.match(key)
        if match:
            return kind, {k: v for k, v in match.groupdict().items() if v is not None}
    return "unknown", {}


_READERS = {
    "hash": "HGETALL",
    "zset": "ZRANGE",
    "set": "SMEMBERS",
    "string": "GET",
    "list": "LRANGE",
}


def _read_all(conn: redis.Redis, keys: list[str]) -> dict[str, tuple[str, int, Any]]:
    """Key -> (type, PTTL, content), in two pipelined round trips per thousand keys."""
    out: dict[str, tuple[str, int, Any]] = {}
    for start in range(0, len(keys), 1000):
        chunk = keys[start : start + 1000]
        pipe = conn.pipeline(transaction=False)
        for key in chunk:
            pipe.type(key)
            pipe.pttl(key)
        meta = pipe.execute()
        pipe = conn.pipeline(transaction=False)
        for i, key in enumerate(chunk):
            kind = meta[2 * i]
            if kind == "zset":
                pipe.zrange(key, 0, -1, withscores=True)
            elif kind == "list":
                pipe.lrange(key, 0, -1)
            elif kind in _READERS:
                pipe.execute_command(_READERS[kind], key)
            else:
                pipe.exists(key)
        contents = pipe.execute()
        for i, key in enumerate(chunk):
            out[key] = (meta[2 * i], int(meta[2 * i + 1]), contents[i])
    return out


def audit(conn: redis.Redis, namespace: str, now_ms: int | None = None) -> Audit:
    """Check every key of ``namespace`` (``conn`` decodes responses); see the module doc."""
    keys = sorted(
        set(conn.scan_iter(match=f"{namespace}:*", count=1000))
        | set(conn.scan_iter(match=f"lock:{namespace}:*", count=1000))
    )
    # A key that expired between the SCAN and its reads (a finish mark, say) is simply gone.
    data = {
        key: read
        for key, read in _read_all(conn, keys).items()
        if read[0] != "none" and read[2] not in (None, [], {}, set())
    }
    now = now_ms if now_ms is not None else int(conn.time()[0]) * 1000
    report = Audit()
    patterns = _patterns(namespace)
    parsed = {key: _classify(key, patterns) for key in data}

    def bad(message: str) -> None:
        report.violations.append(message)

    by_kind: dict[str, list[tuple[str, dict[str, str]]]] = {}
    for key, (kind, parts) in parsed.items():
        report.kinds[kind] += 1
        by_kind.setdefault(kind, []).append((key, parts))
        if kind == "unknown":
            bad(f"unknown key {key!r} ({data[key][0]})")
        elif data[key][1] == -1 and kind != "paused":  # an operator's pause stays until resumed
            bad(f"{kind} key {key!r} has no TTL")

    index = {(kind, parts.get("q"), parts.get("t")): key for key, (kind, parts) in parsed.items()}

    def zset(kind: str, q: str, t: str | None = None) -> tuple[str | None, dict[str, float]]:
        key = index.get((kind, q, t))
        return key, (dict(data[key][2]) if key else {})

    messages = {(p["q"], p["u"]): key for key, p in by_kind.get("message", [])}
    dead = {(p["q"], p["u"]): key for key, p in by_kind.get("dead_letter", [])}
    locks = {(p["q"], p["u"]): key for key, p in by_kind.get("lock", [])}

    for (q, u), key in messages.items():
        _, ttl, body = data[key]
        missing = [name for name in MESSAGE_FIELDS if name not in body]
        if missing:
            bad(f"message {q}/{u} lacks {missing}")
            continue
        places = []
        ready_key, ready = zset("ready", q, body["task"])
        if f"{int(body['seq']):016d}:{u}" in ready:
            places.append(("ready", ready_key))
        task_parked_key, parked = zset("parked", q, body["task"])
        if f"{int(body['seq']):016d}:{u}" in parked:
            places.append(("parked", task_parked_key))
        delayed_key, delayed = zset("delayed", q)
        if u in delayed:
            places.append(("delayed", delayed_key))
        leases_key, leases = zset("leases", q)
        if u in leases:
            places.append(("leased", leases_key))
            if (q, u) not in locks and leases[u] > now + CLOCK_SLACK_MS:
                bad(f"message {q}/{u} is in the lease index but its lock is gone")
        if len(places) != 1:
            bad(f"message {q}/{u} is in {len(places)} indexes: {[p for p, _ in places]}")
            continue
        where, holder = places[0]
        report.live[f"{q}/{u}"] = where
        holder_ttl = data[holder][1] if holder else -2
        if ttl > 0 and holder_ttl != -1 and holder_ttl < ttl - CLOCK_SLACK_MS:
            bad(f"index {holder!r} expires before message {q}/{u} ({holder_ttl} < {ttl} ms)")

    for (q, u), key in locks.items():
        _, leases = zset("leases", q)
        if str(data[key][2]).startswith(FINISH_MARK):
            report.kinds["lock"] -= 1
            report.kinds["finish_mark"] += 1
            if u in leases:
                bad(f"finish mark {key!r} of a message still in the lease index")
        elif (q, u) not in messages or u not in leases:
            bad(f"lease lock {key!r} without a leased message")

    for key, p in by_kind.get("ready", []):
        for member in dict(data[key][2]):
            if (p["q"], member[17:]) not in messages:
                bad(f"ready entry {member} of {key!r} points to no message")
    for key, p in by_kind.get("parked", []):
        for member in dict(data[key][2]):
            if (p["q"], member[17:]) not in messages:
                bad(f"parked entry {member} of {key!r} points to no message")
    for key, p in by_kind.get("key_parked", []):
        _, whole = zset("parked", p["q"], p["t"])
        for member in dict(data[key][2]):
            if member not in whole:
                bad(f"parked entry {member} of {key!r} is not in its task's parked set")
    for kind in ("delayed", "leases"):
        for key, p in by_kind.get(kind, []):
            for u in dict(data[key][2]):
                if (p["q"], u) not in messages:
                    bad(f"{kind} entry {u} of {key!r} points to no message")

    # The per-task mirrors hold what their queue's index holds, for that task.
    for kind, queue_kind in (("task_delayed", "delayed"), ("task_leases", "leases")):
        for key, p in by_kind.get(kind, []):
            _, whole = zset(queue_kind, p["q"])
            for u in dict(data[key][2]):
                if (p["q"], u) not in messages or u not in whole:
                    bad(f"{kind} entry {u} of {key!r} is not in the queue's {queue_kind} index")
    for key, p in by_kind.get("task_dlq", []):
        for u, expires in dict(data[key][2]).items():
            if (p["q"], u) not in dead and expires > now:
                bad(f"task DLQ entry {u} of {key!r} points to no dead letter")

    for (q, u), key in dead.items():
        _, _, body = data[key]
        missing = [name for name in DLQ_FIELDS if name not in body]
        if missing:
            bad(f"dead letter {q}/{u} lacks {missing}")
        _, dlq_index = zset("dlq_index", q)
        if u not in dlq_index:
            bad(f"dead letter {q}/{u} is not in its DLQ index")
        report.dead_letters[f"{q}/{u}"] = body.get("reason", "")
    for key, p in by_kind.get("dlq_index", []):
        for u, expires in dict(data[key][2]).items():
            if (p["q"], u) not in dead and expires > now:
                bad(f"DLQ entry {u} of {key!r} points to no dead letter")

    live_status: dict[str, set[str]] = {}
    for key, p in by_kind.get("status_live", []):
        live_status[p["q"]] = set(dict(data[key][2]))
    for key, p in by_kind.get("status", []):
        try:
            value = json.loads(data[key][2])["value"]
        except (TypeError, ValueError, KeyError):
            bad(f"status {key!r} is not a status record")
            continue
        member = f"{p['t']}:{p['u']}"
        listed = member in live_status.get(p["q"], set())
        if value not in TERMINAL:
            if (p["q"], p["u"]) not in messages:
                bad(f"status {value} of {p['q']}/{p['u']} but the message is gone")
            if not listed:
                bad(f"status {value} of {p['q']}/{p['u']} is missing from the live index")
        elif listed:
            bad(f"terminal status {value} of {p['q']}/{p['u']} is still in the live index")
    for q, members in live_status.items():
        for member in members:
            _, _, u = member.partition(":")
            if (q, u) not in messages:
                bad(f"live-status entry {member} of queue {q} points to no message")
    return report
