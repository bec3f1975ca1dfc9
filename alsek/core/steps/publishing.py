"""Which pub/sub a client uses: classic (PUBLISH, SUBSCRIBE) or sharded (SPUBLISH, SSUBSCRIBE).

On a single server (plain or behind Sentinel) alsek publishes classically. On a Redis Cluster,
a classic publish is copied to every node over the cluster bus, so its cost grows with the
cluster; a sharded publish stays on the node that owns the channel's slot. alsek's channels
carry their queue's hash tag, so a sharded channel lives with the queue's keys and a script of
the queue may publish on it. Sharded pub/sub needs Redis or Valkey 7 or newer: a cluster whose
servers lack it (Redis 6.2) publishes classically.

The choice is made per client, once (one ``COMMAND INFO`` on a cluster), and applied where
requests are sent (``sending``) and subscriptions opened (``hub``): operations always write
``PUBLISH`` commands, and their scripts call ``redis.call(PUBLISH, ...)`` with the command
their *variant* names (``Script.sharded``).
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from alsek.storage.backends.clients import is_cluster

_SHARDED: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()
_PROBE = ("COMMAND", "INFO", "SPUBLISH")


def _has_spublish(reply: Any) -> bool:
    """Whether a ``COMMAND INFO SPUBLISH`` reply describes the command (``[None]``: unknown)."""
    if isinstance(reply, dict):  # redis-py parses it into {name: info}
        return any(bool(info) for info in reply.values())
    return bool(reply) and any(bool(entry) for entry in reply)


def known_sharded(conn: Any) -> bool | None:
    """The decision for ``conn`` if made already (``False`` at once off a cluster)."""
    if not is_cluster(conn):
        return False
    return _SHARDED.get(conn)


def _remember(conn: Any, reply: Any) -> bool:
    sharded = _has_spublish(reply)
    with _LOCK:
        _SHARDED[conn] = sharded
    return sharded


def uses_sharded_pubsub(conn: Any) -> bool:
    """Whether publishes and subscriptions on the blocking client ``conn`` are sharded."""
    known = known_sharded(conn)
    if known is not None:
        return known
    return _remember(conn, conn.execute_command(*_PROBE))


async def async_uses_sharded_pubsub(conn: Any) -> bool:
    """Whether publishes and subscriptions on the asyncio client ``conn`` are sharded."""
    known = known_sharded(conn)
    if known is not None:
        return known
    return _remember(conn, await conn.execute_command(*_PROBE))


def sharded_command(command: tuple[Any, ...]) -> tuple[Any, ...]:
    """``command`` as sent with sharded pub/sub: a PUBLISH becomes an SPUBLISH."""
    if command and str(command[0]).upper() == "PUBLISH":
        return ("SPUBLISH", *command[1:])
    return command
