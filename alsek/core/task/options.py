"""A task's settings and their defaults, written once (``TaskOptions``, ``TASK_DEFAULTS``).

Every public way to build a task (``BaseTask``, ``Task``, ``AsyncTask``, ``TriggerTask``,
``AsyncTriggerTask`` and the ``task()`` decorator) spells its parameters out, in SPEC's order,
because users, type checkers, the API docs and ``serialize()`` (``gather_init_params``) read
them. Their defaults all come from ``TASK_DEFAULTS``, and ``tests/task/test_task_options.py``
holds every signature to it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from alsek.core.backoff import Backoff, ExponentialBackoff
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

    Raises:
        ValueError: an unsupported mechanism.
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

    def __post_init__(self) -> None:
        check_mechanism(self.mechanism)

    def as_kwargs(self) -> dict[str, Any]:
        """The options as keyword arguments of a task class (values as given, not copied)."""
        return {field.name: getattr(self, field.name) for field in fields(self)}


#: The defaults of every task constructor and of ``task()``.
TASK_DEFAULTS = TaskOptions()
