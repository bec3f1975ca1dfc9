"""Hearing revocations of running messages through pub/sub, in a thread or an asyncio task.

A revocation is announced on its queue's channel (``broker.revocation_channel(queue)``: in the
queue's Cluster slot, sharded where the cluster has it), so a pool listens to the channels of the
queues it serves, through the process' subscription hub (one subscriber connection for the
listener and every waiter of the process). The set of queues may grow (a pool of "all queues"
learns new ones from the registry): the listener follows it. When the connection drops, or a
cluster moves a channel to another node, the hub subscribes again; announcements made meanwhile
are lost, and the pool's periodic revocation check finds those messages instead.

The listening is written once, as steps; ``RevocationListener`` runs them in a thread with the
blocking driver, ``AsyncRevocationListener`` in a task with the asyncio one.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

from alsek.core.steps.drivers import async_run, run
from alsek.core.steps.hub import BaseSubscription, Published
from alsek.core.steps.ops import Receive, Sleep, Steps, Subscribe, invoke

log = logging.getLogger(__name__)

#: How often a listener looks whether the queues it must hear have changed.
FOLLOW_SECONDS = 0.5
#: Pause after a failed subscription before trying again.
RETRY_SECONDS = 0.5
#: How long ``RevocationListener.start`` waits for the first subscription.
START_WAIT_SECONDS = 5.0


class BaseRevocationListener:
    """Calls ``on_revoked(uuid)`` for every revocation announced on the queues ``queues()``
    names now (awaited by the asyncio twin).

    Args:
        broker: the pool's broker (it names the channels and owns the client).
        queues: the queues the pool serves now.
        on_revoked: what to do with the uuid of a revoked message.
    """

    def __init__(
        self, broker: Any, queues: Callable[[], list[str]], on_revoked: Callable[[str], Any]
    ) -> None:
        self.broker = broker
        self.queues = queues
        self.on_revoked = on_revoked
        self.closed = threading.Event()
        self.ready = threading.Event()

    def wanted(self) -> tuple[str, ...]:
        """The channels to hear now, sorted."""
        return tuple(sorted({self.broker.revocation_channel(queue) for queue in self.queues()}))

    def _listen_steps(self) -> Steps[None]:
        while not self.closed.is_set():
            channels = self.wanted()
            if not channels:
                self.ready.set()
                yield Sleep(FOLLOW_SECONDS)
                continue
            try:
                subscription = yield Subscribe(channels)
            except Exception as error:  # an outage, or Redis slow to confirm: try again
                log.debug("Could not subscribe to revocations (%s); retrying.", error)
                yield Sleep(RETRY_SECONDS)
                continue
            self.ready.set()
            try:
                yield from self._hear_steps(subscription, channels)
            except Exception as error:  # the hub failed: subscribe again
                log.warning("Revocation listener interrupted (%s); subscribing again.", error)
                yield Sleep(RETRY_SECONDS)
            yield invoke(subscription.close)

    def _hear_steps(self, subscription: BaseSubscription, channels: tuple[str, ...]) -> Steps[None]:
        """Pass announcements on until closed or the channels to hear change."""
        while not self.closed.is_set() and self.wanted() == channels:
            item = yield Receive(subscription, FOLLOW_SECONDS)
            if isinstance(item, Published):
                yield invoke(self.on_revoked, item.data)


class RevocationListener(BaseRevocationListener):
    """Listens from a thread of its own, with blocking I/O."""

    def start(self) -> RevocationListener:
        """Start listening; returns once subscribed (or after ``START_WAIT_SECONDS``)."""
        self._thread = threading.Thread(target=self._run, name="alsek-revocations", daemon=True)
        self._thread.start()
        self.ready.wait(START_WAIT_SECONDS)
        return self

    def _run(self) -> None:
        run(self._listen_steps(), self.broker.backend.conn)

    def close(self) -> None:
        """Stop listening."""
        self.closed.set()
        self._thread.join(timeout=2)


class AsyncRevocationListener(BaseRevocationListener):
    """Listens from an asyncio task of its own, on the running event loop."""

    _task: asyncio.Task[None] | None = None

    def start(self) -> AsyncRevocationListener:
        """Start listening."""
        self._task = asyncio.get_running_loop().create_task(
            async_run(self._listen_steps(), self.broker.backend.conn)
        )
        return self

    def close(self) -> None:
        """Stop listening."""
        self.closed.set()
        if self._task is not None:
            self._task.cancel()
