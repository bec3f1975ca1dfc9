"""Run every script call as a Redis ACL user allowed exactly the keys the call declares.

``KeyCheckedRedis`` is a ``redis.Redis`` for a backend: plain commands go as usual; before each
EVALSHA/EVAL it sets the ACL user ``CHECK_USER`` to ``~key`` for each of that call's KEYS (and
nothing else), and runs the script on a connection logged in as that user. A script touching a
key it did not declare then fails with NOPERM, and the call is recorded in ``refused``. Scripts
named in ``unchecked`` (still known to build keys from data inside Lua) run unrestricted; each
run is recorded in ``unchecked_runs``, so a test can say which ran.

Script calls in a pipeline are sent one by one (the order kept): the test checks keys, not
round trips.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from typing import Any

import redis
from redis.exceptions import ResponseError

from alsek.core.broker.scripts import SCRIPT_NAMES, get_script

CHECK_USER = "alsek-keycheck"
_GLOB = re.compile(r"([*?\[\]\\])")
#: How Redis 6.2 and Valkey 8 word an ACL refusal inside a script.
_REFUSED = re.compile(r"NOPERM|no permissions|can't access", re.IGNORECASE)


def _script_names() -> dict[str, str]:
    names = {}
    for name in SCRIPT_NAMES:
        script = get_script(name)
        names[script.sha] = name
        names[script.sharded.sha] = name
    return names


def _pattern(key: str) -> str:
    """An ACL key pattern matching ``key`` alone (glob characters escaped)."""
    return _GLOB.sub(r"\\\1", key)


class KeyCheckedRedis(redis.Redis):
    """A client that runs each script call as an ACL user allowed only that call's KEYS."""

    def __init__(self, url: str, unchecked: Iterable[str] = ()) -> None:
        pool = redis.ConnectionPool.from_url(url, decode_responses=True)
        super().__init__(connection_pool=pool)
        password = secrets.token_hex(16)
        self.acl_setuser(CHECK_USER, enabled=True, reset=True, passwords=[f"+{password}"])
        self.checked = redis.Redis.from_url(
            url, username=CHECK_USER, password=password, decode_responses=True
        )
        self.password = password
        self.unchecked = set(unchecked)
        self.names = _script_names()
        #: (script name, KEYS, error) of each call the server refused.
        self.refused: list[tuple[str, tuple[str, ...], str]] = []
        #: Script names run unrestricted because they are listed in ``unchecked``.
        self.unchecked_runs: list[str] = []
        #: Script names run restricted to their KEYS, and accepted.
        self.checked_runs: list[str] = []

    def close(self) -> None:
        self.acl_deluser(CHECK_USER)
        self.checked.close()
        super().close()

    def execute_command(self, *args: Any, **options: Any) -> Any:
        if args and str(args[0]).upper() in ("EVALSHA", "EVAL"):
            return self._run_script(args, options)
        return super().execute_command(*args, **options)

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        return _SequentialPipeline(self)

    def _run_script(self, args: tuple[Any, ...], options: dict[str, Any]) -> Any:
        name = self.names.get(str(args[1]), str(args[1])[:12])
        declared = tuple(str(key) for key in args[3 : 3 + int(args[2])])
        if name in self.unchecked:
            self.unchecked_runs.append(name)
            return super().execute_command(*args, **options)
        self.acl_setuser(
            CHECK_USER,
            enabled=True,
            reset_keys=True,
            reset_channels=True,
            passwords=[f"+{self.password}"],
            keys=[_pattern(key) for key in declared],
            channels=["*"],
            commands=["+@all"],
        )
        try:
            reply = self.checked.execute_command(*args, **options)
        except ResponseError as error:
            if _REFUSED.search(str(error)):
                self.refused.append((name, declared, str(error)))
            raise
        self.checked_runs.append(name)
        return reply


class _SequentialPipeline:
    """What the engine's sending needs of a pipeline, sending each command alone."""

    def __init__(self, client: KeyCheckedRedis) -> None:
        self.client = client
        self.stack: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def __enter__(self) -> _SequentialPipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stack.clear()

    def execute_command(self, *args: Any, **options: Any) -> _SequentialPipeline:
        self.stack.append((args, options))
        return self

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        replies: list[Any] = []
        for args, options in self.stack:
            try:
                replies.append(self.client.execute_command(*args, **options))
            except ResponseError as error:
                if raise_on_error:
                    raise
                replies.append(error)
        self.stack.clear()
        return replies

    def reset(self) -> None:
        self.stack.clear()
