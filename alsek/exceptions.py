"""Every error alsek raises on purpose derives from :class:`AlsekError`."""

from __future__ import annotations


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


class RedisAccessError(AlsekError):
    """Redis answered a worker pool's start with a refusal (credentials, rights, a database that
    does not exist): the pool stops at once rather than wait, as waiting would not fix it."""
