"""What every group of admin steps stands on: the broker, names, decoding, the status writes
an operator's action records (a status tracker on the broker's own Redis and namespace)."""

from __future__ import annotations

from functools import cached_property

from alsek.core.broker import BaseBroker
from alsek.core.status import AsyncStatusTracker, StatusTracker
from alsek.core.status.base import BaseStatusTracker
from alsek.storage.serialization import Serializer

#: Members of a ready set start with the zero-padded sequence (see ``member`` in ``lib_keys.lua``).
SEQ_DIGITS = 16


def uuid_of(member: str) -> str:
    """The uuid of a ready-set member."""
    return member[SEQ_DIGITS + 1 :]


def check_page(offset: int, limit: int) -> None:
    """Refuse an offset below 0 or a limit below 1, naming it."""
    for name, value, least in (("offset", offset, 0), ("limit", limit, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"{name} must be an int >= {least}, got {value!r}")


class AdminCalls:
    """The broker an admin operates on, and what its steps share."""

    def __init__(self, broker: BaseBroker) -> None:
        self.broker = broker

    def __repr__(self) -> str:
        return f"{type(self).__name__}(broker={self.broker!r})"

    @property
    def _serializer(self) -> Serializer:
        return self.broker.backend.serializer

    def _full(self, name: str) -> str:
        return f"{self.broker.backend.namespace}:{name}"

    @cached_property
    def _tracker(self) -> BaseStatusTracker:
        """A status tracker on the broker's backend, for the statuses operators' actions write
        (with the default ttl: the tasks' own trackers are not known here)."""
        if self.broker.backend.IS_ASYNC:
            return AsyncStatusTracker(self.broker.backend)  # type: ignore[arg-type]
        return StatusTracker(self.broker.backend)
