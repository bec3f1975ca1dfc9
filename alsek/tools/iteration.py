"""``ResultPool``: iterate over the results of many messages as they arrive.

Cost: one subscription (through the process' shared pub/sub connection) to every message's result
channel, then one read per message when its channel announces a write. ``wait`` (ms) is only the
longest time between two full re-reads, a safety net for results written by something that does
not publish (``wait <= 0``: no safety net); nothing sleeps while results arrive.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from alsek.core.message import Message
from alsek.core.steps.drivers import stream as drive_stream
from alsek.core.steps.hub import Published
from alsek.core.steps.ops import Emit, Steps, Subscribe
from alsek.core.steps.waiting import wait_steps
from alsek.exceptions import ValidationError
from alsek.storage.result.sync import ResultStore
from alsek.utils.system import StopSignalListener, stop_requested


class ResultPool:
    """Collect the results of many messages, woken by their arrival.

    Args:
        result_store: a sync result store.

    Built in the main thread it installs alsek's SIGTERM/SIGINT listener, so a stop signal ends
    a stream; built elsewhere it only reads the process-wide stop flag.
    """

    def __init__(self, result_store: ResultStore) -> None:
        if not isinstance(result_store, ResultStore):
            raise TypeError(f"ResultPool needs a ResultStore, got {type(result_store).__name__}")
        self.result_store = result_store
        self.stop_signal: StopSignalListener | None = None
        if threading.current_thread() is threading.main_thread():
            self.stop_signal = StopSignalListener(exit_override=False)

    @staticmethod
    def _validate(messages: Sequence[Message]) -> None:
        if len({message.uuid for message in messages}) != len(messages):
            raise ValidationError("Duplicate messages detected")

    def _stopped(self) -> bool:
        return stop_requested() or bool(self.stop_signal and self.stop_signal.received)

    def _engine_steps(
        self, messages: Sequence[Message], wait: int, break_on_error: bool, **kwargs: Any
    ) -> Steps[None]:
        """Yield ``(message, result)``: as they come, or in input order if ``break_on_error``."""
        store = self.result_store
        descendants = bool(kwargs.get("descendants"))
        owners: dict[str, set[int]] = {}
        for index, message in enumerate(messages):
            for channel in store._wake_channels(message, descendants):
                owners.setdefault(channel, set()).add(index)
        subscription = yield Subscribe(tuple(owners))
        outstanding = list(range(len(messages)))
        to_check = set(outstanding)
        while outstanding and not self._stopped():
            for index in list(outstanding):
                if index in to_check:
                    to_check.discard(index)
                    try:
                        result = yield from store._get_steps(messages[index], **kwargs)
                    except (KeyError, TimeoutError):
                        pass
                    else:
                        outstanding.remove(index)
                        yield Emit((messages[index], result))
                        continue
                if break_on_error:
                    break  # keep the input order: nothing after the first missing result
            if outstanding:
                deadline = time.monotonic() + wait / 1000 if wait > 0 else None
                item = yield from wait_steps(subscription, deadline)
                if isinstance(item, Published):
                    to_check |= owners.get(item.channel, set())
                else:  # the safety-net timeout, or a reconnection: read everything again
                    to_check = set(outstanding)

    def _engine(
        self, messages: Sequence[Message], wait: int, break_on_error: bool, **kwargs: Any
    ) -> Iterator[tuple[Message, Any]]:
        self._validate(messages)
        return drive_stream(
            self._engine_steps(messages, wait, break_on_error, **kwargs),
            self.result_store.backend.conn,
        )

    def istream(
        self,
        *messages: Message,
        wait: int = 5 * 1000,
        descendants: bool = False,
        **kwargs: Any,
    ) -> Iterator[tuple[Message, Any]]:
        """Yield ``(message, result)`` as results arrive, in any order.

        ``kwargs`` go to ``ResultStore.get``. With ``keep=False`` each result is deleted once
        yielded. Ends when every result was yielded or a stop signal arrived.

        Raises:
            ValidationError: the same message was given twice.
            TaskFailedError: a message failed for good (it will never have a result).
        """
        return self._engine(messages, wait, False, descendants=descendants, **kwargs)

    def stream(
        self,
        *messages: Message,
        wait: int = 5 * 1000,
        descendants: bool = False,
        **kwargs: Any,
    ) -> Iterator[tuple[Message, Any]]:
        """Yield ``(message, result)`` in the order of ``messages``; see ``istream``."""
        return self._engine(messages, wait, True, descendants=descendants, **kwargs)
