"""Composing messages: pipelines (``pipeline``, ``message_a | message_b``) and groups
(``group``).

Steps are messages built with ``task.generate(..., submit=False)``; what runs after what rides
on the engine's callback chains, so each next step is submitted by the ack of the one before,
in the same round trip.
"""

from alsek.core.workflow.group import Group, group
from alsek.core.workflow.pipeline import Pipeline, pipeline

__all__ = ["Group", "Pipeline", "group", "pipeline"]
