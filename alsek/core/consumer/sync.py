"""``Consumer``: claims messages with a blocking client and waits on Redis when idle."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from alsek.core.backoff import Backoff, LinearBackoff
from alsek.core.broker import Broker, Claim
from alsek.core.consumer.base import BaseConsumer, SubsetType
from alsek.core.message import Message
from alsek.core.steps.drivers import run, stream
from alsek.defaults import DEFAULT_LEASE_TTL


class Consumer(BaseConsumer):
    """Claims messages from a ``Broker``; see ``BaseConsumer`` for the arguments."""

    broker: Broker

    def __init__(
        self,
        broker: Broker,
        subset: SubsetType = None,
        backoff: Backoff | None = LinearBackoff(
            1 * 1000, floor=1000, ceiling=30_000, zero_override=False
        ),
        *,
        lease_ttl: int = DEFAULT_LEASE_TTL,
        owner_id: str | None = None,
        task_names: Iterable[str] | None = None,
    ) -> None:
        super().__init__(
            subset, backoff, lease_ttl=lease_ttl, owner_id=owner_id, task_names=task_names
        )
        self.broker = broker

    def claim(self, n: int = 1) -> Claim:
        """Lease up to ``n`` messages in one round trip (a retry after an outage is idempotent)."""
        return run(self._claim_steps(n))

    def _poll(self) -> list[Message]:
        return self.claim(1).messages

    def wait_for_work(self, next_due: int | None) -> None:
        """Block until a submit wakes us, something is due, the backoff elapses, or a stop."""
        run(self._wait_for_work_steps(next_due))

    def pause_for_outage(self, error: Exception) -> None:
        """Wait before retrying after a Redis connection error (logged once per outage)."""
        self.stop_signal.wait(self._outage.failed(error, self.lease_ttl))

    def stream(self) -> Iterator[Message]:
        """Yield claimed messages one at a time until a stop signal; survives Redis outages."""
        return stream(self._stream_steps())
