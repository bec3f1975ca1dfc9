"""Task statuses: the values a status tracker stores, publishes and waits for."""

from __future__ import annotations

from enum import Enum
from typing import Any, NamedTuple, Protocol


class TaskStatus(Enum):
    """Where a message is in its life; stored and published by **name**, never by number."""

    UNKNOWN = 0
    SUBMITTED = 1
    RUNNING = 2
    RETRYING = 3
    FAILED = 4
    SUCCEEDED = 5


#: Statuses after which nothing more happens to a message.
TERMINAL_TASK_STATUSES = (TaskStatus.FAILED, TaskStatus.SUCCEEDED)

#: Statuses of a message still in flight: the ones the integrity scanner checks. UNKNOWN is not
#: terminal, but it is the scanner's own verdict, so it is not checked again.
LIVE_TASK_STATUSES = (TaskStatus.SUBMITTED, TaskStatus.RUNNING, TaskStatus.RETRYING)


class StatusSubject(Protocol):
    """What a status is kept for: a message's queue, task name and uuid (a ``Message``)."""

    @property
    def queue(self) -> str: ...

    @property
    def task_name(self) -> str: ...

    @property
    def uuid(self) -> str: ...


class StatusUpdate(NamedTuple):
    """A status, whatever details its writer attached, and when it was written (``at``, ms
    since the epoch; ``None`` for an update built by hand).

    Two updates are equal when their value and details are, and their times too when both
    have one: ``tracker.get(m) == StatusUpdate(TaskStatus.RUNNING)`` holds whenever it ran.
    """

    value: TaskStatus
    details: Any | None = None
    at: int | None = None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StatusUpdate):
            return NotImplemented
        same_time = self.at is None or other.at is None or self.at == other.at
        return self.value == other.value and self.details == other.details and same_time

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __hash__(self) -> int:
        return hash((self.value, self.details))

    def as_dict(self) -> dict[str, Any]:
        """``{"value": <status name>, "details": ...}``."""
        return {"value": self.value.name, "details": self.details}
