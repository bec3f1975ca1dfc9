"""Send requests (commands and script calls) on a Redis client, pipelined in one round trip.

Scripts go by SHA1 (EVALSHA); when Redis answers NOSCRIPT (after a restart or ``SCRIPT
FLUSH``) the script is loaded and the refused calls are sent again, transparently. Each reply
is a value, or the error Redis answered for that request: one caller's refused request never
fails the others' in a shared pipeline. ``send`` and ``async_send`` differ only in I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.exceptions import NoScriptError, ResponseError

from alsek.core.steps.ops import Command, Request, Script, ScriptCall


def command_of(request: Request) -> Command:
    """The Redis command that carries out ``request``."""
    return request.command() if isinstance(request, ScriptCall) else request


def first_error(replies: list[Any]) -> list[Any]:
    """``replies``, unless one is an error: then raise it."""
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies


def _script_of(request: Request) -> Script:
    if not isinstance(request, ScriptCall):
        raise TypeError(f"NOSCRIPT for a plain command: {request!r}")
    return request.script


def _unknown_scripts(replies: list[Any]) -> list[int]:
    """Indexes of the requests Redis refused because their script is not loaded."""
    return [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]


def send(conn: Any, requests: Sequence[Request]) -> list[Any]:
    """Send ``requests`` on a blocking client; a reply (or error) per request, in order."""
    if len(requests) == 1:
        return [_send_one(conn, requests[0])]
    replies = _pipeline(conn, requests)
    missing = _unknown_scripts(replies)
    if missing:
        for script in {_script_of(requests[i]) for i in missing}:
            conn.script_load(script.text)
        for i, reply in zip(missing, _pipeline(conn, [requests[i] for i in missing])):
            replies[i] = reply
    return replies


def _send_one(conn: Any, request: Request) -> Any:
    try:
        try:
            return conn.execute_command(*command_of(request))
        except NoScriptError:
            conn.script_load(_script_of(request).text)
            return conn.execute_command(*command_of(request))
    except ResponseError as error:  # Redis refused this request: its caller's error
        return error


def _pipeline(conn: Any, requests: Sequence[Request]) -> list[Any]:
    pipe = conn.pipeline(transaction=False)
    for request in requests:
        pipe.execute_command(*command_of(request))
    return list(pipe.execute(raise_on_error=False))


async def async_send(conn: Any, requests: Sequence[Request]) -> list[Any]:
    """Send ``requests`` on an asyncio client; a reply (or error) per request, in order."""
    if len(requests) == 1:
        return [await _async_send_one(conn, requests[0])]
    replies = await _async_pipeline(conn, requests)
    missing = _unknown_scripts(replies)
    if missing:
        for script in {_script_of(requests[i]) for i in missing}:
            await conn.script_load(script.text)
        for i, reply in zip(missing, await _async_pipeline(conn, [requests[i] for i in missing])):
            replies[i] = reply
    return replies


async def _async_send_one(conn: Any, request: Request) -> Any:
    try:
        try:
            return await conn.execute_command(*command_of(request))
        except NoScriptError:
            await conn.script_load(_script_of(request).text)
            return await conn.execute_command(*command_of(request))
    except ResponseError as error:  # Redis refused this request: its caller's error
        return error


async def _async_pipeline(conn: Any, requests: Sequence[Request]) -> list[Any]:
    pipe = conn.pipeline(transaction=False)
    for request in requests:
        pipe.execute_command(*command_of(request))
    return list(await pipe.execute(raise_on_error=False))
