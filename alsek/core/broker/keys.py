"""Where the engine keeps things in Redis: short key names (the backend adds ``{namespace}:``).

Every key of one queue carries the hash tag ``{queue}``, so the scripts that touch a queue touch
one Redis Cluster slot. The Lua library (``scripts/lib.lua``) builds the same names; see
``docs/redis-layout.md`` for the whole layout.
"""

from __future__ import annotations

#: The namespace's queue registry and its wake list share one hash tag (one Cluster slot).
QUEUE_REGISTRY = "registry:{queues}"
QUEUE_REGISTRY_WAKE = "registry:{queues}:wake"
REVOCATIONS_CHANNEL = "revocations"
#: Separates the fields of a uuid record (``uuid_record``); never part of a name.
UUID_RECORD_SEPARATOR = "\x1f"
#: How long a wake token waits for a consumer (``WAKE_TTL_MS`` in ``scripts/lib.lua``).
WAKE_TTL_MS = 60_000


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


def paused_key(queue: str) -> str:
    """Flag set while ``queue`` is paused (no pool claims from it); no TTL: an operator's
    decision stays until it is undone."""
    return f"{queue_base(queue)}:paused"


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


def revoked_key(queue: str, uuid: str) -> str:
    """Flag set when a message is revoked."""
    return f"{queue_base(queue)}:revoked:{uuid}"


def group_key(queue: str, group_id: str) -> str:
    """A group's count of members still to succeed (its completion callback at ``:callback``);
    in the slot of ``queue``, its members' queue."""
    return f"{queue_base(queue)}:groups:{group_id}"


def unique_key(queue: str, key: str) -> str:
    """The holder (a uuid) of unique key ``key`` among ``queue``'s messages."""
    return f"{queue_base(queue)}:unique:{key}"
