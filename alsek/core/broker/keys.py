"""Where the engine keeps things in Redis: short key names (the backend adds ``{namespace}:``).

Every key of one queue carries the hash tag ``{queue}``, so the scripts that touch a queue touch
one Redis Cluster slot. Every key a script touches is declared in its KEYS, named here
(``queue_keys``, ``task_keys``, ``message_keys``, ``throughput_keys``); the Lua library
(``scripts/lib_keys.lua``) builds the same names, and the tests run each script as an ACL user
allowed exactly those keys. See ``docs/redis-layout.md`` for the whole layout.
"""

from __future__ import annotations

from redis.crc import key_slot

#: The namespace's queue registry and its wake list share one hash tag (one Cluster slot).
QUEUE_REGISTRY = "registry:{queues}"
QUEUE_REGISTRY_WAKE = "registry:{queues}:wake"
#: When each queue was last registered (sorted set, same slot).
QUEUE_REGISTRY_SEEN = "registry:{queues}:seen"
#: Separates the fields of a uuid record (``uuid_record``); never part of a name.
UUID_RECORD_SEPARATOR = "\x1f"
#: How long a wake token waits for a consumer (``WAKE_TTL_MS`` in ``scripts/lib_keys.lua``).
WAKE_TTL_MS = 60_000


def queue_slot(queue: str) -> int:
    """The Redis Cluster hash slot of every key of ``queue`` (its hash tag is the name)."""
    return int(key_slot(queue.encode()))


def queue_base(queue: str) -> str:
    """Prefix shared by every key of ``queue``."""
    return f"queues:{{{queue}}}"


def message_key(queue: str, uuid: str) -> str:
    """Hash holding the message body and its delivery bookkeeping."""
    return f"{queue_base(queue)}:messages:{uuid}"


def lease_name(queue: str, uuid: str) -> str:
    """Lock name of a message's lease (the Redis key is ``lock:{namespace}:{name}``)."""
    return message_key(queue, uuid)


def ready_key(queue: str, task_name: str) -> str:
    """Sorted set of ready messages of one task, by (priority, submission order)."""
    return f"{queue_base(queue)}:tasks:{task_name}:ready"


def tasks_key(queue: str) -> str:
    """Set of the task names that have had messages in ``queue``."""
    return f"{queue_base(queue)}:tasks"


def delayed_key(queue: str) -> str:
    """Sorted set of messages not ready yet, by ready time."""
    return f"{queue_base(queue)}:delayed"


def leases_key(queue: str) -> str:
    """Sorted set of leased messages, by lease deadline."""
    return f"{queue_base(queue)}:leases"


def wake_key(queue: str) -> str:
    """List idle consumers block on; submits push a token."""
    return f"{queue_base(queue)}:wake"


def dlq_index_key(queue: str) -> str:
    """Sorted set of dead-lettered uuids, by expiry."""
    return f"{queue_base(queue)}:dlq"


def dlq_key(queue: str, uuid: str) -> str:
    """Hash of a dead-lettered message: body, reason, time of failure."""
    return f"{queue_base(queue)}:dlq:{uuid}"


def seq_key(queue: str) -> str:
    """Counter giving each submitted message its place (FIFO within a priority)."""
    return f"{queue_base(queue)}:seq"


def requests_key(queue: str) -> str:
    """Sorted set of recent submit request ids (a re-sent submit changes nothing)."""
    return f"{queue_base(queue)}:requests"


def paused_key(queue: str) -> str:
    """Flag set while ``queue`` is paused (no pool claims from it); no TTL: an operator's
    decision stays until it is undone."""
    return f"{queue_base(queue)}:paused"


def claim_reply_key(queue: str, owner_id: str) -> str:
    """The last non-empty claim reply of consumer ``owner_id`` (its first queue's slot), for
    a retried identical request."""
    return f"{queue_base(queue)}:claim:{owner_id}"


def queue_keys(queue: str) -> list[str]:
    """The keys of ``queue`` itself that the scripts changing its messages may touch."""
    return [
        tasks_key(queue),
        delayed_key(queue),
        leases_key(queue),
        wake_key(queue),
        seq_key(queue),
        requests_key(queue),
        dlq_index_key(queue),
        paused_key(queue),
    ]


def task_keys(queue: str, task_name: str) -> list[str]:
    """The keys of task ``task_name`` in ``queue``: its ready set, its index mirrors and its
    parked set."""
    return [
        ready_key(queue, task_name),
        *(task_index_key(queue, task_name, index) for index in ("delayed", "leases", "dlq")),
        served_key(queue, task_name),
        task_parked_key(queue, task_name),
    ]


def message_keys(queue: str, uuid: str) -> list[str]:
    """The keys of message ``uuid`` (its body, revocation flag and dead letter); its lease is
    ``lock:`` + the full name of ``lease_name``, added by the caller who knows the namespace."""
    return [message_key(queue, uuid), revoked_key(queue, uuid), dlq_key(queue, uuid)]


def task_index_key(queue: str, task_name: str, index: str) -> str:
    """A per-task mirror of a queue index (``delayed``, ``leases``, ``dlq``), for counting."""
    return f"{queue_base(queue)}:tasks:{task_name}:{index}"


def served_key(queue: str, task_name: str) -> str:
    """Worker id → time (ms) until which it serves ``task_name`` on ``queue`` (heartbeats)."""
    return f"{queue_base(queue)}:tasks:{task_name}:served"


def uuid_key(uuid: str) -> str:
    """Where a message's queue and task are found by uuid alone (its own Cluster slot)."""
    return f"uuids:{uuid}"


def uuid_record(queue: str, task_name: str, progenitor_uuid: str | None) -> str:
    """What ``uuid_key`` holds: queue, task and progenitor (for its result's name)."""
    return UUID_RECORD_SEPARATOR.join((queue, task_name, progenitor_uuid or ""))


def revocations_channel(queue: str) -> str:
    """Pub/sub channel announcing the uuids of ``queue``'s revoked messages."""
    return f"revocations:{{{queue}}}"


def revoked_key(queue: str, uuid: str) -> str:
    """Flag set when a message is revoked."""
    return f"{queue_base(queue)}:revoked:{uuid}"


#: Upper bounds (ms, inclusive) of the run-time buckets of the throughput history; one more
#: bucket counts the runs beyond the last. ``RUN_MS_BUCKETS`` in ``scripts/lib_status.lua`` is
#: the same.
RUN_MS_BUCKETS: tuple[int, ...] = (
    10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000
)  # fmt: skip
#: Steps of the throughput history: its length in ms, and how long one is kept (``lib_status.lua``'s
#: ``THROUGHPUT_STEPS``).
THROUGHPUT_STEP_MS = {"minute": 60_000, "hour": 3_600_000}
THROUGHPUT_KEPT_MS = {"minute": 48 * 3_600_000, "hour": 14 * 24 * 3_600_000}
#: Outcomes a throughput hash counts (``count_outcome`` in ``lib_status.lua``): succeeded, retried,
#: failed into the dead-letter queue, failed with no dead letter kept.
THROUGHPUT_OUTCOMES = ("s", "r", "d", "x")
#: The bucket of a message that failed without running.
UNRUN_BUCKET = "-"


def throughput_key(queue: str, step: str, start_ms: int) -> str:
    """Hash counting the attempts of ``queue`` that ended in the ``step`` starting at
    ``start_ms`` (server time): fields ``outcome|bucket`` (the queue) and
    ``outcome|bucket|task``."""
    return f"{queue_base(queue)}:throughput:{step}:{start_ms}"


def throughput_keys(queue: str, now_ms: int) -> list[str]:
    """The throughput hashes an attempt of ``queue`` ending at ``now_ms`` counts in (one per
    step). ``now_ms`` is the caller's clock (ARGV[2] of the script): the caller declares them."""
    return [
        throughput_key(queue, step, now_ms - now_ms % length)
        for step, length in THROUGHPUT_STEP_MS.items()
    ]


def group_key(queue: str, group_id: str) -> str:
    """A group's count of members still to succeed (its completion callback at ``:callback``);
    in the slot of ``queue``, its members' queue."""
    return f"{queue_base(queue)}:groups:{group_id}"


def unique_key(queue: str, key: str) -> str:
    """The holder (a uuid) of unique key ``key`` among ``queue``'s messages."""
    return f"{queue_base(queue)}:unique:{key}"


def running_key(queue: str, task_name: str, concurrency_key: str = "") -> str:
    """The messages of ``task_name`` holding a concurrency slot (of ``concurrency_key``), by
    lease deadline (``running_key`` in lib_limits.lua)."""
    base = f"{queue_base(queue)}:limits:{task_name}:running"
    return f"{base}:{concurrency_key}" if concurrency_key else base


def task_parked_key(queue: str, task_name: str) -> str:
    """Every parked message of ``task_name``: refused by a claim because its concurrency key
    was full, out of the ready set until a slot of its key frees; same scores and members as
    the ready set (``task_parked_key`` in lib_limits.lua). Queued, for every count."""
    return f"{queue_base(queue)}:tasks:{task_name}:parked"


def parked_key(queue: str, task_name: str, concurrency_key: str) -> str:
    """The parked messages of ``task_name`` with concurrency key ``concurrency_key``, given
    back first when one of its slots frees (``parked_key`` in lib_limits.lua)."""
    return f"{queue_base(queue)}:limits:{task_name}:parked:{concurrency_key}"


def rechecks_key(queue: str) -> str:
    """``task:key`` of each full concurrency key with parked messages, by when to look at it
    again (its earliest holder's lease deadline)."""
    return f"{queue_base(queue)}:limits:rechecks"


def rate_key(queue: str, task_name: str) -> str:
    """The claims of ``task_name`` in its rate limit's window, by time (``rate_key`` in
    lib_limits.lua)."""
    return f"{queue_base(queue)}:limits:{task_name}:rate"
