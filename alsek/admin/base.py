"""``BaseAdmin``: the operator's operations, written once as steps (``inspect`` reads,
``manage`` acts) for the ``Admin`` and ``AsyncAdmin`` shells."""

from __future__ import annotations

from alsek.admin.manage import ManageSteps
from alsek.admin.throughput import ThroughputSteps


class BaseAdmin(ManageSteps, ThroughputSteps):
    """Inspect and manage queues, workers, messages and the dead-letter queue of a broker.

    Args:
        broker: the broker whose Redis (and namespace) to operate on; its serializer decodes
            the messages (nothing is unpickled unless it is a binary serializer).
    """
