"""What ``generate`` and ``generate_many`` log, and what ``generate_many`` hands its broker
(kept apart from ``base.py`` so that module stays short)."""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

from alsek.core.broker.effects import Effect
from alsek.core.message import Message

log = logging.getLogger("alsek.core.task.base")


class ManySubmission(NamedTuple):
    """The rest of ``generate_many``'s ``broker.submit_many`` call: the messages' SUBMITTED
    effects, and the broker's own options (e.g. ``ttl``)."""

    effects: list[list[Effect]]
    options: dict[str, Any]


def _log_generated(output: Message) -> None:
    log.debug("Generated %s", output.summary)


def _log_generated_many(output: list[Message]) -> None:
    log.debug("Generated %s message(s)", len(output))
