"""Dramatiq's per-message options: ``max_age``, ``throws`` and ``retry_when``.

A task holds their defaults (``task(broker, max_age=..., throws=..., retry_when=...)``); a
message may override them at ``generate(..., max_age=..., throws=..., retry_when=...)``. An
override travels inside the message, in ``metadata["alsek.options"]``, so every worker reads
it: ``max_age`` as a number, exception classes and the ``retry_when`` function *by import
path* (``"package.module:QualName"``), since message bodies are JSON. That is why an override
must be importable (a module-level class or function); a lambda can only be a task's default.

How they combine with ``max_retries`` and ``do_retry`` (see ``BaseTask.retry_verdict``): an
exception the task ``throws`` is never retried; otherwise ``retry_when(retries, exception)``,
when given, decides alone (as in Dramatiq, it takes precedence over ``max_retries``); otherwise
``max_retries`` does. ``Retry`` counts against ``max_retries`` and skips ``throws`` and
``retry_when``; ``RateLimitExceeded`` is always retried and not counted. A revoked message is
never retried. ``do_retry`` applies all of this, and a subclass overriding it has the last word.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, NamedTuple

from alsek.core.message import OPTIONS_METADATA_KEY, Message
from alsek.exceptions import RateLimitExceeded, Retry
from alsek.utils.temporal import utcnow_timestamp_ms

__all__ = [
    "MESSAGE_OPTIONS",
    "METADATA_KEY",
    "MessageOptions",
    "OptionDecisions",
    "RetryWhen",
    "check_max_age",
    "check_retry_when",
    "check_throws",
    "message_overrides",
    "split_message_options",
    "with_overrides",
]

log = logging.getLogger(__name__)

#: Where a message carries its overrides (defined with the message).
METADATA_KEY = OPTIONS_METADATA_KEY
#: The options a message may override.
MESSAGE_OPTIONS = ("max_age", "throws", "retry_when")

#: ``retry_when(retries, exception) -> bool``.
RetryWhen = Callable[[int, BaseException], bool]


class MessageOptions(NamedTuple):
    """The options in force for one message: its overrides, else its task's defaults."""

    max_age: int | None
    throws: tuple[type[BaseException], ...]
    retry_when: RetryWhen | None


# -- checking values --------------------------------------------------------------------------


def check_max_age(value: Any) -> int | None:
    """``value`` if it is ``None`` or an int of ms > 0.

    Raises:
        ValueError: anything else.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"max_age must be an int of ms > 0 or None, got {value!r}")
    return value


def check_throws(value: Any) -> tuple[type[BaseException], ...]:
    """``value`` as a tuple of exception classes (one class, a tuple, or ``None``/empty).

    Raises:
        TypeError: an item that is not an exception class.
    """
    items = () if value is None else (value,) if isinstance(value, type) else tuple(value)
    for item in items:
        if not (isinstance(item, type) and issubclass(item, BaseException)):
            raise TypeError(f"throws must hold exception classes, got {item!r}")
    return items


def check_retry_when(value: Any) -> RetryWhen | None:
    """``value`` if it is ``None`` or callable.

    Raises:
        TypeError: anything else.
    """
    if value is not None and not callable(value):
        raise TypeError(f"retry_when must be a callable(retries, exception) or None, got {value!r}")
    retry_when: RetryWhen | None = value
    return retry_when


# -- import paths -----------------------------------------------------------------------------


def _import_path(obj: Any, option: str) -> str:
    """``"module:QualName"`` of a module-level class or function.

    Raises:
        ValueError: ``obj`` cannot be imported back by that path (a lambda, a nested function).
    """
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", "")
    path = f"{module}:{qualname}"
    if not module or "<" in qualname or _resolve(path) is not obj:
        raise ValueError(
            f"{option} given to generate() travels in the message by import path, so it must "
            f"be a module-level class or function; {obj!r} is not: give it to the task "
            f"instead (task(..., {option}=...))"
        )
    return path


@lru_cache(maxsize=512)
def _resolve(path: str) -> Any:
    """The object at ``"module:QualName"``; ``None`` when it cannot be imported."""
    module_name, _, qualname = path.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError, ValueError):
        return None
    return obj


def _resolved(path: str, option: str, message: Message) -> Any:
    obj = _resolve(path)
    if obj is None:
        log.error(
            "%s: its %s %r cannot be imported here; using the task's instead",
            message.summary,
            option,
            path,
        )
    return obj


# -- overrides in messages --------------------------------------------------------------------


def split_message_options(options: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``generate``'s ``**options`` as (the message's overrides, checked and encoded for its
    metadata; the rest, for the broker).

    Raises:
        ValueError, TypeError: an override of the wrong kind, or one that is not importable.
    """
    overrides: dict[str, Any] = {}
    rest = {name: value for name, value in options.items() if name not in MESSAGE_OPTIONS}
    if options.get("max_age") is not None:
        overrides["max_age"] = check_max_age(options["max_age"])
    throws = check_throws(options.get("throws"))
    if throws:
        overrides["throws"] = [_import_path(item, "throws") for item in throws]
    retry_when = check_retry_when(options.get("retry_when"))
    if retry_when is not None:
        overrides["retry_when"] = _import_path(retry_when, "retry_when")
    return overrides, rest


def with_overrides(message: Message, overrides: Mapping[str, Any]) -> Message:
    """``message`` carrying ``overrides`` (from ``split_message_options``) in its metadata."""
    if overrides:
        message.update(metadata={**(message.metadata or {}), METADATA_KEY: dict(overrides)})
    return message


def message_overrides(message: Message, defaults: MessageOptions) -> MessageOptions:
    """The options in force for ``message``: its overrides, else ``defaults`` (its task's).

    An override that cannot be imported here is logged and the default used.
    """
    metadata = message.metadata
    carried = metadata.get(METADATA_KEY) if metadata else None
    if not carried:
        return defaults
    max_age, throws, retry_when = defaults
    if carried.get("max_age") is not None:
        max_age = int(carried["max_age"])
    if carried.get("throws"):
        found = [_resolved(path, "throws", message) for path in carried["throws"]]
        if all(item is not None for item in found):
            throws = tuple(found)
    if carried.get("retry_when"):
        retry_when = _resolved(carried["retry_when"], "retry_when", message) or retry_when
    return MessageOptions(max_age, throws, retry_when)


class OptionDecisions:
    """What a task decides from its options (``BaseTask`` provides them): whether a message is
    too old to run, whether a failed attempt is retried."""

    max_retries: int | None
    max_age: int | None
    throws: tuple[type[BaseException], ...]
    retry_when: RetryWhen | None

    def _retries_left(self, message: Message) -> bool:
        return self.max_retries is None or message.retries < self.max_retries

    def options_for(self, message: Message) -> MessageOptions:
        """``max_age``, ``throws`` and ``retry_when`` in force for ``message``: its overrides,
        else this task's."""
        defaults = MessageOptions(self.max_age, self.throws, self.retry_when)
        return message_overrides(message, defaults)

    def age_beyond_max(self, message: Message, now: int | None = None) -> int | None:
        """The message's age (ms since its submit, at ``now``, default: this host's clock)
        when it is past its ``max_age``; ``None`` when it is not, or has no ``max_age``."""
        if self.max_age is None and not message.metadata:
            return None  # the common case, decided without building the options
        max_age = self.options_for(message).max_age
        age = (utcnow_timestamp_ms() if now is None else now) - message.created_at
        return age if max_age is not None and age > max_age else None

    def restart_age(self, message: Message) -> Message:
        """``message`` as it is requeued from the dead-letter queue: with a ``max_age`` in force,
        a copy whose age counts from now (else it would be too old again at its next claim)."""
        if self.options_for(message).max_age is None:
            return message
        now = utcnow_timestamp_ms()
        return message.clone().update(created_at=now, updated_at=now)

    def throws_exception(self, message: Message, exception: BaseException) -> bool:
        """Whether ``exception`` is one the task ``throws`` (expected: fail at once, at INFO)."""
        throws = self.options_for(message).throws
        return bool(throws) and isinstance(exception, throws)

    def retry_verdict(self, message: Message, exception: BaseException) -> bool:
        """Whether a failed attempt is retried, revocation aside (``do_retry`` adds it).

        ``RateLimitExceeded``: always (the attempt is not counted). ``Retry``: while
        ``max_retries`` allows. An exception the task ``throws``: never. Otherwise
        ``retry_when(retries, exception)`` when given (a ``retry_when`` that raises is logged,
        and ``max_retries`` decides), else ``max_retries``.
        """
        if isinstance(exception, RateLimitExceeded):
            return True
        if isinstance(exception, Retry):
            return self._retries_left(message)
        options = self.options_for(message)
        if options.throws and isinstance(exception, options.throws):
            return False
        if options.retry_when is not None:
            try:
                return bool(options.retry_when(message.retries, exception))
            except Exception as error:
                log.error(
                    "%s: retry_when raised %s: %s; max_retries decides instead",
                    message.summary,
                    type(error).__name__,
                    error,
                )
        return self._retries_left(message)
