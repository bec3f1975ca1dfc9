"""Every error alsek raises on purpose derives from :class:`AlsekError`."""

from __future__ import annotations

import redis


class AlsekError(Exception):
    """Root of alsek's exception hierarchy."""


class MessageAlreadyExistsError(AlsekError):
    """A message with the same uuid is already in the broker; nothing was written."""


class MessageDoesNotExistsError(AlsekError):
    """The broker holds no message (nor DLQ copy) under this identity."""


class MultipleBrokersError(AlsekError):
    """A worker pool was given tasks that use more than one broker."""


class NoTasksFoundError(AlsekError):
    """Task collection found nothing, or a pool has no task it can run."""


class RevokedError(AlsekError):
    """Injected into, or recorded for, a task whose message was revoked."""


class SchedulingError(AlsekError):
    """A trigger task cannot be scheduled (it takes parameters, or it is already scheduled)."""


class TaskNameCollisionError(AlsekError):
    """Two different tasks were found under the same name."""


class TerminationError(AlsekError):
    """A running future was stopped at shutdown or clean-up."""


class ValidationError(AlsekError):
    """Data handed to alsek is invalid; the message says which value and why."""


class LeaseLostError(AlsekError):
    """The worker's lease on a message expired, so it may no longer ack, retry or fail it.

    The message may already be running elsewhere; the refused operation changed nothing.
    """


class WorkerLostError(AlsekError):
    """Recorded on a message whose worker stopped renewing its lease (it died or hung)."""


class TaskFailedError(AlsekError):
    """The message failed for good, so it has no result; the text names the task's exception."""


class Retry(AlsekError):
    """Raised by a task to be run again later: after ``delay`` ms, or its backoff when ``None``.

    The attempt counts against ``max_retries``, as any failed attempt does, and it is logged at
    INFO rather than as an error. ``throws`` and ``retry_when`` are not consulted: the task
    asked for the retry itself.

    Args:
        message: why (recorded on the message as its last error).
        delay: ms to wait before the next attempt; ``None`` waits the task's backoff.

    Raises:
        ValueError: ``delay`` is not an int of ms >= 0.
    """

    def __init__(self, message: str = "", delay: int | None = None) -> None:
        if delay is not None and (isinstance(delay, bool) or not isinstance(delay, int)):
            raise ValueError(f"Retry delay must be an int of ms or None, got {delay!r}")
        if delay is not None and delay < 0:
            raise ValueError(f"Retry delay must be >= 0 ms, got {delay}")
        super().__init__(message)
        self.delay = delay


class SkipMessage(AlsekError):
    """Raised by a task (or a middleware's ``before_process``) to stop running its message:
    the message is acked, its status becomes SUCCEEDED, and no result is stored."""


class RateLimitExceeded(AlsekError):
    """A rate limiter (``alsek.core.limits``) had no room.

    Raised in a task, the message is retried after its backoff *without* counting an attempt:
    being throttled is not a failure, so it never exhausts ``max_retries``.
    """


class MaxAgeExceeded(AlsekError):
    """A message was older than its ``max_age`` when a worker claimed it: it was dead-lettered
    without running (its dead letter's reason starts with ``max_age``)."""


class RedisAccessError(AlsekError):
    """Redis answered a worker pool's start with a refusal (credentials, rights, a database that
    does not exist): the pool stops at once rather than wait, as waiting would not fix it."""


class MetricsUnavailableError(AlsekError):
    """A pool's metrics cannot be served: the port cannot be bound, or prometheus-client is
    not installed (``alsek[metrics]``)."""


class ReplicationShortfallError(AlsekError, redis.ConnectionError):
    """A durable write (``Broker(wait_replicas=N)``) reached fewer than N replicas in time, so it
    is not acknowledged: a failover now could lose it. It may still have been applied; being a
    ``redis.ConnectionError``, it is waited out like an outage and the operation re-sent (every
    such operation recognises a repeat of itself)."""
