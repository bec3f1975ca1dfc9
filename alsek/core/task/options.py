"""A task's settings and their defaults, written once (``TaskOptions``, ``TASK_DEFAULTS``).

Every public way to build a task (``BaseTask``, ``Task``, ``AsyncTask``, ``TriggerTask``,
``AsyncTriggerTask`` and the ``task()`` decorator) spells its parameters out, in SPEC's order,
because users, type checkers, the API docs and ``serialize()`` (``gather_init_params``) read
them; Dramatiq's per-message options (``max_age``, ``throws``, ``retry_when``) follow SPEC's
parameters, keyword-only. Their defaults all come from ``TASK_DEFAULTS``, and
``tests/task/test_task_options.py`` holds every signature to it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from alsek.core.backoff import Backoff, ExponentialBackoff
from alsek.core.task.message_options import (
    RetryWhen,
    check_max_age,
    check_retry_when,
    check_throws,
)
from alsek.core.task_limits import RateLimit, check_task_limits
from alsek.defaults import DEFAULT_MAX_RETRIES, DEFAULT_MECHANISM, DEFAULT_TASK_TIMEOUT
from alsek.types import SupportedMechanismType, check_mechanism

#: One instance, shared by every task that keeps the default (a backoff holds no state).
_DEFAULT_BACKOFF = ExponentialBackoff()
_DEFAULT_MECHANISM = check_mechanism(DEFAULT_MECHANISM)


@dataclass(frozen=True)
class TaskOptions:
    """How a task runs: every constructor argument but the function, the trigger and the I/O
    components (broker, result store, status tracker; the latter two default to ``None``).

    Args:
        name: the task's identity in keys and dispatch; default ``function.__name__``.
        queue: where its messages go; default ``DEFAULT_QUEUE``.
        timeout: how long (ms) one run may take before it is stopped.
        max_retries: attempts after the first; ``None`` retries without limit.
        backoff: wait before each retry; ``None`` retries at once.
        default_result_ttl: ``result_ttl`` (ms) of messages that do not give one.
        mechanism: ``"thread"`` or ``"process"``: how workers run it.
        run_in_main_thread: run in the worker's main thread (for code that needs it). The
            trigger tasks and the decorator default to ``None`` (as SPEC gives them), which
            means the same.
        no_positional_args: refuse ``args`` in ``generate`` (keyword arguments only).
        max_age: ms after its submit beyond which a message is dead-lettered unrun when a
            worker claims it (reason ``max_age``); ``None``: no limit.
        throws: exception classes the task is expected to raise: the message fails for good
            at once, without retry, logged at INFO.
        retry_when: ``retry_when(retries, exception) -> bool`` decides whether a failed
            attempt is retried, instead of ``max_retries``.

        concurrency_limit: at most this many of its messages run at once, across every
            pool (per ``concurrency_key`` when given); ``None``: no limit.
        concurrency_key: ``concurrency_key(*args, **kwargs) -> str | int``, computed at
            ``generate``: the limit applies per key.
        rate_limit: ``"100/m"`` or ``RateLimit(limit, window_ms)``: at most that many claims
            in any window (sliding, across every pool). The limits are enforced where messages
            are claimed (see ``task_limits``).

        The three before these may be overridden per message at ``generate()``; see
        ``message_options`` for how they combine.

    Raises:
        ValueError: an unsupported mechanism, or a ``max_age`` that is not an int of ms > 0.
        TypeError: ``throws`` items that are not exception classes; a ``retry_when`` that is
            not callable.
    """

    name: str | None = None
    queue: str | None = None
    timeout: int = DEFAULT_TASK_TIMEOUT
    max_retries: int | None = DEFAULT_MAX_RETRIES
    backoff: Backoff | None = _DEFAULT_BACKOFF
    default_result_ttl: int | None = None
    mechanism: SupportedMechanismType = _DEFAULT_MECHANISM
    run_in_main_thread: bool = False
    no_positional_args: bool = False
    max_age: int | None = None
    throws: tuple[type[BaseException], ...] = ()
    retry_when: RetryWhen | None = None
    concurrency_limit: int | None = None
    concurrency_key: Callable[..., Any] | None = None
    rate_limit: str | RateLimit | None = None

    def __post_init__(self) -> None:
        check_mechanism(self.mechanism)
        check_max_age(self.max_age)
        object.__setattr__(self, "throws", check_throws(self.throws))
        check_retry_when(self.retry_when)
        check_task_limits(self.concurrency_limit, self.concurrency_key, self.rate_limit)

    def as_kwargs(self) -> dict[str, Any]:
        """The options as keyword arguments of a task class (values as given, not copied)."""
        return {field.name: getattr(self, field.name) for field in fields(self)}


#: The defaults of every task constructor and of ``task()``.
TASK_DEFAULTS = TaskOptions()
