"""Durable writes: ``WAIT`` after them, on the connection (and node) that carried them.

``WAIT n timeout`` blocks the connection that sent it until the writes it sent before reached
``n`` replicas, or ``timeout`` ms passed, and answers how many did. So it rides in the pipeline
of the writes, after them: on a single server once, on a cluster once per node written (redis-py
sends a pipeline's commands for one node on one connection, in order).

A node whose replicas fall short (they lag or are gone, or the node just took over from a dead
master and has none yet), or whose WAIT fails, leaves its writes unacknowledged: each request
it carried answers ``ReplicationShortfallError`` instead of its reply. Redis cannot undo the
writes, so they may stand; the error is an outage to its callers, who send the operation again
as is, and the repeat (which changes nothing, but writes a mark so that its own WAIT covers the
first: see the scripts' ``confirm_repeat``) is acknowledged once the replicas have it all. The
shortfall is also logged, at most once per ``SHORTFALL_LOG_SECONDS``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

from alsek.core.steps.ops import Command, Replication, Request, ScriptCall
from alsek.exceptions import ReplicationShortfallError
from alsek.storage.backends.clients import is_cluster

log = logging.getLogger(__name__)

#: Least time between two warnings about replicas falling short.
SHORTFALL_LOG_SECONDS = 10.0
_last_warning = [0.0]


class Waits(NamedTuple):
    """The WAITs to queue after some requests in their pipeline (each a command and its
    redis-py options: the node to run on), and for each request the index of the WAIT that
    covers it (``None``: none, a request without a key on a cluster)."""

    commands: list[tuple[Command, dict[str, Any]]]
    covering: list[int | None]


NO_WAITS = Waits([], [])


def _first_key(request: Request) -> Any:
    if isinstance(request, ScriptCall):
        return request.keys[0] if request.keys else None
    return request[1] if len(request) > 1 else None


def wait_commands(conn: Any, requests: Sequence[Request], replicas: Replication | None) -> Waits:
    """The WAITs that follow ``requests`` in their pipeline (none without ``replicas``)."""
    if replicas is None:
        return NO_WAITS
    command: Command = ("WAIT", *replicas)
    if not is_cluster(conn):
        return Waits([(command, {})], [0] * len(requests))
    nodes: dict[str, int] = {}
    targets: list[Any] = []
    covering: list[int | None] = []
    for request in requests:
        key = _first_key(request)
        if key is None:
            covering.append(None)
            continue
        node = conn.get_node_from_key(key)
        if node.name not in nodes:
            nodes[node.name] = len(targets)
            targets.append(node)
        covering.append(nodes[node.name])
    return Waits([(command, {"target_nodes": node}) for node in targets], covering)


def _where(node: Any) -> str:
    """A node's address for messages: a cluster node's name, a client's host and port."""
    name = getattr(node, "name", None)
    if isinstance(name, str):
        return name
    kwargs = getattr(getattr(node, "connection_pool", None), "connection_kwargs", {})
    if "host" in kwargs:
        return f"{kwargs['host']}:{kwargs.get('port', 6379)}"
    return "the Redis master"


def _shortfall(where: str, reply: Any, replicas: Replication) -> str:
    """Why the writes on ``where`` are not acknowledged (``reply``: WAIT's answer)."""
    wanted, timeout = replicas
    if isinstance(reply, Exception):
        what = f"writes on {where} could not be confirmed on {wanted} replicas (WAIT: {reply})"
    else:
        what = f"writes on {where} reached {int(reply)} of {wanted} replicas within {timeout} ms"
    return (
        f"{what}; not acknowledged (they may still be applied: sending the operation again is "
        "safe, a repeat changes nothing)"
    )


def check_replication(
    conn: Any, replies: list[Any], waits: Waits, replicas: Replication | None
) -> list[Any]:
    """The replies of the requests (the WAIT replies after them are checked): a request whose
    WAIT fell short answers ``ReplicationShortfallError`` instead (see the module)."""
    if replicas is None:
        return replies
    count = len(waits.covering)
    short: dict[int, str] = {}
    for index, ((_, options), reply) in enumerate(zip(waits.commands, replies[count:])):
        if isinstance(reply, Exception) or int(reply) < replicas[0]:
            short[index] = _shortfall(_where(options.get("target_nodes", conn)), reply, replicas)
    if not short:
        return replies[:count]
    _warn(list(short.values()))
    return [
        ReplicationShortfallError(short[wait])
        if wait in short and not isinstance(reply, Exception)
        else reply
        for reply, wait in zip(replies[:count], waits.covering)
    ]


def _warn(reasons: list[str]) -> None:
    now = time.monotonic()
    if now - _last_warning[0] >= SHORTFALL_LOG_SECONDS:
        _last_warning[0] = now
        log.warning(
            "Durable writes fell short: %s (this is logged at most every %.0f s)",
            "; ".join(reasons),
            SHORTFALL_LOG_SECONDS,
        )
