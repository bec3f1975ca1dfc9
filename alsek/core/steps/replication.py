"""Durable writes: ``WAIT`` after them, on the connection (and node) that carried them.

``WAIT n timeout`` blocks the connection that sent it until the writes it sent before reached
``n`` replicas, or ``timeout`` ms passed, and answers how many did. So it rides in the pipeline
of the writes, after them: on a single server once, on a cluster once per node written (redis-py
sends a pipeline's commands for one node on one connection, in order). A node whose replicas
fall short (they lag, or the node just took over from a dead master and has none yet) is logged,
at most once per ``SHORTFALL_LOG_SECONDS``: the writes stand, since Redis cannot undo them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from alsek.core.steps.ops import Command, Replication, Request, ScriptCall
from alsek.storage.backends.clients import is_cluster

log = logging.getLogger(__name__)

#: Least time between two warnings about replicas falling short.
SHORTFALL_LOG_SECONDS = 10.0
_last_warning = [0.0]

#: A WAIT to queue in the pipeline: the command and its redis-py options (the node to run on).
Wait = tuple[Command, dict[str, Any]]


def _first_key(request: Request) -> Any:
    if isinstance(request, ScriptCall):
        return request.keys[0] if request.keys else None
    return request[1] if len(request) > 1 else None


def wait_commands(
    conn: Any, requests: Sequence[Request], replicas: Replication | None
) -> list[Wait]:
    """The WAITs that follow ``requests`` in their pipeline (none without ``replicas``)."""
    if replicas is None:
        return []
    command: Command = ("WAIT", *replicas)
    if not is_cluster(conn):
        return [(command, {})]
    nodes = {}
    for request in requests:
        key = _first_key(request)
        if key is not None:
            node = conn.get_node_from_key(key)
            nodes[node.name] = node
    return [(command, {"target_nodes": node}) for node in nodes.values()]


def check_replication(
    conn: Any, replies: list[Any], count: int, waits: Sequence[Wait], replicas: Replication | None
) -> list[Any]:
    """The replies of the ``count`` requests; the WAIT replies after them are checked."""
    if replicas is None:
        return replies
    wanted, timeout = replicas
    short = [
        options.get("target_nodes", conn)
        for (_, options), reply in zip(waits, replies[count:])
        if isinstance(reply, Exception) or int(reply) < wanted
    ]
    now = time.monotonic()
    if short and now - _last_warning[0] >= SHORTFALL_LOG_SECONDS:
        _last_warning[0] = now
        log.warning(
            "Writes on %s reached fewer than %d replicas within %d ms; they stand, but a "
            "failover now could lose them (this is logged at most every %.0f s)",
            ", ".join(str(getattr(node, "name", node)) for node in short),
            wanted,
            timeout,
            SHORTFALL_LOG_SECONDS,
        )
    return replies[:count]
