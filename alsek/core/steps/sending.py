"""Send requests (commands and script calls) on a Redis client, pipelined in one round trip.

Scripts go by SHA1 (EVALSHA); when Redis answers NOSCRIPT (after a restart, a failover to a
replica that never ran them, a new cluster node, or ``SCRIPT FLUSH``) the script is loaded and
the refused calls are sent again, transparently. Each reply is a value, or the error Redis
answered for that request: one caller's refused request never fails the others' in a shared
pipeline. A refusal that means "not now" (``outage``) is handed back as a
``RedisUnavailableError``, to be waited out like a dropped connection.

Publishes follow the client's pub/sub (``publishing``): on a cluster with sharded pub/sub a
PUBLISH is sent as SPUBLISH, and a script as its sharded variant. On a cluster, redis-py routes
each request by its first key, follows MOVED and ASK, and splits a pipeline by node.

Durable writes (``replicas``): a ``WAIT replicas timeout`` follows the requests in the same
pipeline, on the same connection (on a cluster, one per node written, routed to that node), so
the round trip returns once the writes reached that many replicas. A request whose writes
reached fewer in time answers ``ReplicationShortfallError`` (an outage to its caller, who sends
it again) instead of its reply: see ``replication``.
``send`` and ``async_send`` differ only in I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.exceptions import NoScriptError, ResponseError

from alsek.core.steps.ops import Command, Replication, Request, Script, ScriptCall
from alsek.core.steps.outage import (
    CLUSTER_UNAVAILABLE_ERRORS,
    RedisUnavailableError,
    is_unavailable_reply,
)
from alsek.core.steps.publishing import (
    async_uses_sharded_pubsub,
    sharded_command,
    uses_sharded_pubsub,
)
from alsek.core.steps.replication import check_replication, wait_commands
from alsek.storage.backends.clients import is_cluster


def command_of(request: Request, sharded: bool = False) -> Command:
    """The Redis command that carries out ``request`` (with sharded publishes if ``sharded``)."""
    if isinstance(request, ScriptCall):
        return request.command(sharded)
    return sharded_command(request) if sharded else request


def first_error(replies: list[Any]) -> list[Any]:
    """``replies``, unless one is an error: then raise it."""
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies


def _script_of(request: Request, sharded: bool) -> Script:
    if not isinstance(request, ScriptCall):
        raise TypeError(f"NOSCRIPT for a plain command: {request!r}")
    return request.script.sharded if sharded else request.script


def _unknown_scripts(replies: list[Any]) -> list[int]:
    """Indexes of the requests Redis refused because their script is not loaded."""
    return [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]


def _settled(replies: list[Any]) -> list[Any]:
    """``replies`` with every "not now" refusal turned into a ``RedisUnavailableError``."""
    return [
        RedisUnavailableError(f"Redis cannot serve the request now: {reply}")
        if is_unavailable_reply(reply)
        else reply
        for reply in replies
    ]


def _unavailable(error: Exception) -> RedisUnavailableError:
    return RedisUnavailableError(f"The cluster cannot serve the request now: {error}")


# -- blocking -----------------------------------------------------------------------------------


def send(conn: Any, requests: Sequence[Request], replicas: Replication | None = None) -> list[Any]:
    """Send ``requests`` on a blocking client; a reply (or error) per request, in order.

    ``replicas``: wait for the writes to reach them (see the module)."""
    try:
        sharded = uses_sharded_pubsub(conn)
        if len(requests) == 1 and replicas is None:
            return _settled([_send_one(conn, requests[0], sharded)])
        replies = _pipeline(conn, requests, sharded, replicas)
        missing = _unknown_scripts(replies)
        if missing:
            for script in {_script_of(requests[i], sharded) for i in missing}:
                conn.script_load(script.text)
            again = _pipeline(conn, [requests[i] for i in missing], sharded, replicas)
            for i, reply in zip(missing, again):
                replies[i] = reply
        return _settled(replies)
    except CLUSTER_UNAVAILABLE_ERRORS as error:
        raise _unavailable(error) from error


def _send_one(conn: Any, request: Request, sharded: bool) -> Any:
    try:
        try:
            return conn.execute_command(*command_of(request, sharded))
        except NoScriptError:
            conn.script_load(_script_of(request, sharded).text)
            return conn.execute_command(*command_of(request, sharded))
    except ResponseError as error:  # Redis refused this request: its caller's error
        return error


def _pipeline(
    conn: Any, requests: Sequence[Request], sharded: bool, replicas: Replication | None = None
) -> list[Any]:
    pipe = conn.pipeline(transaction=False)
    for request in requests:
        pipe.execute_command(*command_of(request, sharded))
    waits = wait_commands(conn, requests, replicas)
    for command, options in waits.commands:
        pipe.execute_command(*command, **options)
    replies = list(pipe.execute(raise_on_error=False))
    return check_replication(conn, replies, waits, replicas)


def send_atomic(conn: Any, commands: Sequence[Command]) -> list[Any]:
    """Send plain ``commands`` in one MULTI/EXEC (one slot on a cluster); their replies."""
    try:
        sharded = uses_sharded_pubsub(conn)
        pipe = conn.pipeline(transaction=True)
        for command in commands:
            pipe.execute_command(*command_of(command, sharded))
        return first_error(_settled(list(pipe.execute())))
    except CLUSTER_UNAVAILABLE_ERRORS as error:
        raise _unavailable(error) from error


# -- asyncio ------------------------------------------------------------------------------------


async def async_send(
    conn: Any, requests: Sequence[Request], replicas: Replication | None = None
) -> list[Any]:
    """Send ``requests`` on an asyncio client; a reply (or error) per request, in order.

    ``replicas``: wait for the writes to reach them (see the module)."""
    try:
        sharded = await async_uses_sharded_pubsub(conn)
        if len(requests) == 1 and replicas is None:
            return _settled([await _async_send_one(conn, requests[0], sharded)])
        replies = await _async_pipeline(conn, requests, sharded, replicas)
        missing = _unknown_scripts(replies)
        if missing:
            for script in {_script_of(requests[i], sharded) for i in missing}:
                await conn.script_load(script.text)
            again = await _async_pipeline(conn, [requests[i] for i in missing], sharded, replicas)
            for i, reply in zip(missing, again):
                replies[i] = reply
        return _settled(replies)
    except CLUSTER_UNAVAILABLE_ERRORS as error:
        raise _unavailable(error) from error


async def _async_send_one(conn: Any, request: Request, sharded: bool) -> Any:
    try:
        try:
            return await conn.execute_command(*command_of(request, sharded))
        except NoScriptError:
            await conn.script_load(_script_of(request, sharded).text)
            return await conn.execute_command(*command_of(request, sharded))
    except ResponseError as error:  # Redis refused this request: its caller's error
        return error


async def _async_pipeline(
    conn: Any, requests: Sequence[Request], sharded: bool, replicas: Replication | None = None
) -> list[Any]:
    if replicas is not None and is_cluster(conn):
        await conn.initialize()  # the nodes of the keys are known from here on
    pipe = conn.pipeline(transaction=False)
    for request in requests:
        pipe.execute_command(*command_of(request, sharded))
    waits = wait_commands(conn, requests, replicas)
    for command, options in waits.commands:
        pipe.execute_command(*command, **options)
    replies = list(await pipe.execute(raise_on_error=False))
    return check_replication(conn, replies, waits, replicas)


async def async_send_atomic(conn: Any, commands: Sequence[Command]) -> list[Any]:
    """Send plain ``commands`` in one MULTI/EXEC (one slot on a cluster); their replies."""
    try:
        sharded = await async_uses_sharded_pubsub(conn)
        pipe = conn.pipeline(transaction=True)
        for command in commands:
            pipe.execute_command(*command_of(command, sharded))
        return first_error(_settled(list(await pipe.execute())))
    except CLUSTER_UNAVAILABLE_ERRORS as error:
        raise _unavailable(error) from error
