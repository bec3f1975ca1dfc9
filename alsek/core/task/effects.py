"""What a task's outcomes write, and which of those writes ride along with the broker's call.

Reaching a status records it (status tracker) and, for SUCCEEDED and FAILED, the result or the
failure record (result store). Those writes travel as *effects* inside the broker call that
reached the status (submit, claim, retry, fail, ack, revoke), so the futures and pools finish a
message in one round trip. Effects ride along only on the broker's own Redis database: a
tracker or store elsewhere is left out of them and written directly right after the broker call
(``write_unshared``); ``_on_broker_server`` is the one place that decides which.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any

from alsek.core.broker.effects import (
    ClaimStatus,
    Effect,
    GroupMemberDoneEffect,
    UniqueEffect,
    effect_commands,
)
from alsek.core.message import Message
from alsek.core.status.types import TaskStatus
from alsek.core.steps.ops import Steps, call
from alsek.core.task.follow_ups import carried_options
from alsek.storage.backends.clients import is_cluster, node_names, server_identity

if TYPE_CHECKING:
    from alsek.core.backoff import Backoff
    from alsek.core.broker import BaseBroker
    from alsek.core.status.base import BaseStatusTracker
    from alsek.storage.result._base import BaseResultStore


def same_database(a: Any, b: Any) -> bool:
    """Whether Redis clients ``a`` and ``b`` reach the same database, so a script run through
    one writes the keys the other reads (two clients of one cluster share a node)."""
    if a is b or getattr(a, "connection_pool", None) is getattr(b, "connection_pool", False):
        return True
    if is_cluster(a) or is_cluster(b):
        return is_cluster(a) and is_cluster(b) and bool(node_names(a) & node_names(b))
    return server_identity(a) == server_identity(b)


def _apply_steps(effects: list[Effect]) -> Steps[None]:
    """Apply ``effects`` in one MULTI/EXEC, without a broker operation."""
    yield call(*effect_commands(effects), atomic=True)


class TaskEffects(ABC):
    """The effects of a task's outcomes; ``BaseTask`` provides the components and the name."""

    broker: BaseBroker
    backoff: Backoff
    result_store: BaseResultStore | None
    status_tracker: BaseStatusTracker | None

    @property
    @abstractmethod
    def name(self) -> str:
        """The task's name (its claim status is limited to it)."""

    def _on_broker_server(self, component: Any) -> bool:
        """Whether ``component``'s backend talks to the broker's Redis database.

        Effects are applied by the broker's script in the broker's database, so only the
        writes of a component on that same database may ride along; the others are written
        directly.
        """
        key = id(component)
        known = self._same_server.get(key)
        if known is None:
            same = same_database(self.broker.backend.conn, component.backend.conn)
            known = self._same_server[key] = same
        return known

    @cached_property
    def _same_server(self) -> dict[int, bool]:
        # Components are fixed once the task is built: decide once per component.
        return {}

    def _outcome_records(
        self,
        message: Message,
        status: TaskStatus,
        result: Any = None,
        requeued: bool = False,
        skipped: bool = False,
    ) -> list[tuple[Any, Callable[[], list[Effect]]]]:
        """What reaching ``status`` records, as (component, effects builder): the result
        (SUCCEEDED, unless ``skipped``: no result), failure record (FAILED) or its removal
        (``requeued`` from the DLQ) of the result store, then the status."""
        records: list[tuple[Any, Callable[[], list[Effect]]]] = []
        store = self.result_store
        if store is not None and status is TaskStatus.SUCCEEDED and not skipped:
            records.append((store, partial(store.effects, message, result)))
        elif store is not None and status is TaskStatus.FAILED:
            records.append((store, partial(store.failure_effects, message)))
        elif store is not None and requeued:
            records.append((store, partial(store.requeue_effects, message)))
        tracker = self.status_tracker
        if tracker is not None:
            records.append((tracker, partial(tracker.effects, message, status)))
        return records

    def _effects(
        self,
        message: Message,
        status: TaskStatus,
        result: Any = None,
        requeued: bool = False,
        skipped: bool = False,
    ) -> list[Effect]:
        records = self._outcome_records(message, status, result, requeued, skipped)
        return [
            effect
            for component, build in records
            if self._on_broker_server(component)
            for effect in build()
        ]

    def _direct_writes(
        self,
        message: Message,
        status: TaskStatus,
        result: Any = None,
        requeued: bool = False,
        skipped: bool = False,
    ) -> list[tuple[Any, Steps[None]]]:
        """(client, steps) of the records that cannot ride along: each written on its own
        component's Redis, atomically (what ``write_unshared`` runs)."""
        records = self._outcome_records(message, status, result, requeued, skipped)
        return [
            (component.backend.conn, _apply_steps(build()))
            for component, build in records
            if not self._on_broker_server(component)
        ]

    def submit_effects(self, message: Message) -> list[Effect]:
        """Effects for ``broker.submit``: the SUBMITTED status, and the unique key the message
        holds (``generate(unique_key=...)``)."""
        return [*self._effects(message, TaskStatus.SUBMITTED), *self._unique_effects(message)]

    def _unique_effects(self, message: Message) -> list[Effect]:
        spec = carried_options(message).get("unique")
        if not spec:
            return []
        status = self.running_claim_status()  # its templates name any message's status
        return [
            UniqueEffect(
                self.broker.unique_key(message.queue, spec["key"]),
                message.uuid,
                message.queue,
                spec["ttl"] or 0,
                spec["mode"],
                status.key_template if status else "",
                status.index_template if status else "",
            )
        ]

    def _submitter(self, message: Message) -> Callable[..., Any]:
        """The broker's submit for ``message``: ``submit_unique`` (which returns the message
        that stands) when it carries a unique key."""
        broker = self.broker
        submit: Callable[..., Any] = (
            broker.submit_unique if carried_options(message).get("unique") else broker.submit
        )
        return submit

    def running_claim_status(self) -> ClaimStatus | None:
        """The RUNNING write for ``broker.claim(..., status=...)`` of this task's messages.

        ``None`` without a tracker, or when the tracker is on another Redis: then write RUNNING
        with ``write_unshared(message, TaskStatus.RUNNING)`` after the claim.
        """
        tracker = self.status_tracker
        if tracker is None or not self._on_broker_server(tracker):
            return None
        return tracker.claim_status(TaskStatus.RUNNING, tasks=(self.name,))

    def retry_effects(self, message: Message) -> list[Effect]:
        """Effects for ``broker.retry``: the RETRYING status."""
        return self._effects(message, TaskStatus.RETRYING)

    def failure_effects(self, message: Message) -> list[Effect]:
        """Effects for ``broker.fail``: the failure record (result store) and FAILED."""
        return self._effects(message, TaskStatus.FAILED)

    def success_effects(self, message: Message, result: Any) -> list[Effect]:
        """Effects for ``broker.ack``: the result (result store) and SUCCEEDED, and a group
        member's count."""
        return [*self._effects(message, TaskStatus.SUCCEEDED, result), *_group_done(message)]

    def skip_effects(self, message: Message) -> list[Effect]:
        """Effects for ``broker.ack`` of a skipped message: SUCCEEDED, no result stored (a
        group member that skips counts as done)."""
        return [*self._effects(message, TaskStatus.SUCCEEDED, skipped=True), *_group_done(message)]

    def requeue_effects(self, message: Message) -> list[Effect]:
        """Effects for ``broker.requeue_from_dlq``: the failure record cleared (so a result
        waiter waits for the new attempt) and SUBMITTED."""
        return self._effects(message, TaskStatus.SUBMITTED, requeued=True)

    def _requeue_options(self, message: Message) -> dict[str, Any]:
        """What ``broker.requeue_from_dlq`` takes from this task besides the message: its
        effects and the task's current backoff.

        Raises:
            ValueError: the message belongs to another task.
        """
        if message.task_name != self.name:
            raise ValueError(
                f"{message.summary} belongs to task {message.task_name!r}, not {self.name!r}: "
                "requeue it through that task"
            )
        return {
            "effects": self.requeue_effects(message),
            "backoff_settings": dict(self.backoff.settings),
        }

    def revocation_effects(self, message: Message) -> list[Effect]:
        """Effects for ``broker.revoke``: the failure record and FAILED."""
        return self._effects(message, TaskStatus.FAILED)


def _group_done(message: Message) -> list[Effect]:
    """The count-down of the group ``message`` is a member of (none outside a group): it rides
    with the ack only, whatever server the tracker and the store are on."""
    key = carried_options(message).get("group")
    return [GroupMemberDoneEffect(key)] if key else []
