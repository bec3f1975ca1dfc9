"""The engine's I/O vocabulary: what an operation written as *steps* may ask for.

An operation is a generator (``Steps[T]``): it yields one op at a time, receives the op's
answer, and finally returns its result. It performs no I/O itself, so it is written once and
run by either driver (``drivers.run`` with a blocking Redis client, ``drivers.async_run`` with an
asyncio one), or stepped in memory by a test. An op that fails raises its error at the
``yield`` that asked for it, where the operation may handle it.

* ``RoundTrip``: Redis requests (commands or script calls) sent together; the answer is their
  replies, in order.
* ``Subscribe`` / ``Receive``: a subscription through the process' pub/sub hub (``hub``), and
  the next item it receives.
* ``ScanKeys``: every key matching a glob (SCAN, on every master of a cluster); for the rare
  reads that cannot know their keys, never on a hot path.
* ``Sleep``: a pause, where nothing can wake the operation earlier.
* ``Emit``: a value handed to whoever iterates a streaming operation.
* ``Invoke``: a call of a plain function (a task hook, a broker operation); the async driver
  awaits what it returns when that is awaitable.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

from alsek.core.steps.hub import BaseSubscription

T = TypeVar("T")

#: A plain Redis command, e.g. ``("GET", key)``.
Command = tuple[Any, ...]


#: First line of every script: the publish command its ``redis.call(PUBLISH, ...)`` sends.
PUBLISH_PRELUDE = "local PUBLISH = '{}'\n"


@dataclass(frozen=True)
class Script:
    """A Lua script, run by SHA1 (EVALSHA) and loaded again whenever Redis does not know it.

    ``text`` is ``body`` after a prelude naming the publish command (``PUBLISH``); the
    ``sharded`` variant names ``SPUBLISH`` instead (see ``publishing``).
    """

    name: str
    text: str
    sha: str
    body: str = ""

    @classmethod
    def from_text(cls, name: str, body: str, publish: str = "PUBLISH") -> Script:
        """The script ``name`` whose source is ``body``, publishing with ``publish``."""
        text = PUBLISH_PRELUDE.format(publish) + body
        return cls(name=name, text=text, sha=hashlib.sha1(text.encode()).hexdigest(), body=body)

    @cached_property
    def sharded(self) -> Script:
        """This script publishing with SPUBLISH (sharded pub/sub)."""
        return Script.from_text(self.name, self.body, publish="SPUBLISH")


@dataclass(frozen=True)
class ScriptCall:
    """One run of ``script``: ``keys`` are its KEYS (they pick the Cluster slot), ``args`` ARGV."""

    script: Script
    keys: tuple[str, ...]
    args: tuple[str | int | float, ...] = ()

    def command(self, sharded: bool = False) -> Command:
        """The EVALSHA command of this call (of the script's sharded variant if ``sharded``)."""
        script = self.script.sharded if sharded else self.script
        return ("EVALSHA", script.sha, len(self.keys), *self.keys, *self.args)


#: What a round trip sends: a command or a script call.
Request = Command | ScriptCall


#: What a durable round trip waits for: (replicas, timeout in ms), as Redis ``WAIT`` takes them.
Replication = tuple[int, int]


@dataclass(frozen=True)
class RoundTrip:
    """Requests pipelined in one round trip; the answer is their replies, in order.

    ``atomic``: inside MULTI/EXEC (plain commands only). ``batched``: idempotent requests
    (reads, and scripts that recognise a repeat of themselves), which may share a pipeline with
    other callers' requests and be sent again if that pipeline is interrupted. A blocking
    command (BLPOP) is never batched: it would hold everyone else's replies. ``replicas``: wait
    until that many replicas have the writes (``WAIT``, in the same round trip; see
    ``sending``).
    """

    requests: tuple[Request, ...]
    atomic: bool = False
    batched: bool = False
    replicas: Replication | None = None

    def __post_init__(self) -> None:
        if self.atomic and self.batched:
            raise ValueError("A round trip is either atomic (MULTI/EXEC) or batched, not both")
        if self.atomic and any(isinstance(request, ScriptCall) for request in self.requests):
            raise ValueError("An atomic round trip takes plain commands only")


@dataclass(frozen=True)
class Subscribe:
    """Subscribe to ``channels`` through the hub; the answer is the subscription."""

    channels: tuple[str, ...]


@dataclass(frozen=True)
class Receive:
    """The subscription's next item, or ``None`` after ``timeout`` seconds (``None``: no limit)."""

    subscription: BaseSubscription
    timeout: float | None


@dataclass(frozen=True)
class ScanKeys:
    """Every key matching the glob ``match`` (SCAN, ``count`` per call; every master of a
    cluster); the answer is a list of keys."""

    match: str
    count: int


@dataclass(frozen=True)
class Sleep:
    """Pause for ``seconds`` (only where nothing can wake the operation earlier)."""

    seconds: float


@dataclass(frozen=True)
class Emit:
    """Hand ``value`` to whoever iterates a streaming operation; the answer is ``None``."""

    value: Any


@dataclass(frozen=True)
class Invoke:
    """Call ``function(*args, **kwargs)``; the answer is what it returns (awaited by the async
    driver when awaitable)."""

    function: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)


Op = RoundTrip | Subscribe | Receive | ScanKeys | Sleep | Emit | Invoke
#: An operation: yields ops, receives their answers, returns a ``T``.
Steps = Generator[Op, Any, T]


def call(*requests: Request, atomic: bool = False) -> RoundTrip:
    """A round trip of ``requests`` sent on their own (in MULTI/EXEC when ``atomic``)."""
    return RoundTrip(tuple(requests), atomic=atomic)


def invoke(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Invoke:
    """The op calling ``function(*args, **kwargs)``."""
    return Invoke(function, args, kwargs)


def batched(*requests: Request, replicas: Replication | None = None) -> RoundTrip:
    """A round trip of idempotent ``requests``, batched with concurrent callers' requests
    (that wait for the same ``replicas``)."""
    return RoundTrip(tuple(requests), batched=True, replicas=replicas)


class Cursor:
    """Steps an operation: hands it the answer (or the error) of its last op, gets the next op.

    Whoever carries the ops out (a driver, or a step that passes another's ops on) sets
    ``answer`` or ``fail`` after each op; an op left unanswered (``Emit``) is answered ``None``.
    """

    def __init__(self, steps: Steps[Any]) -> None:
        self._steps = steps
        self._answer: Any = None
        self._error: Exception | None = None

    def next(self) -> Op | None:
        """The next op, or ``None`` once the operation has returned."""
        answer, error = self._answer, self._error
        self._answer, self._error = None, None
        try:
            return self._steps.throw(error) if error is not None else self._steps.send(answer)
        except StopIteration:
            return None

    def answer(self, value: Any) -> None:
        """The last op's answer."""
        self._answer = value

    def fail(self, error: Exception) -> None:
        """The last op failed with ``error``: it is raised in the operation, at its ``yield``."""
        self._error = error

    def close(self) -> None:
        """End the operation (its ``finally`` blocks run)."""
        self._steps.close()
