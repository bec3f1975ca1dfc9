"""Small shared types: the ``Empty`` sentinel and the supported execution mechanisms."""

from __future__ import annotations

from typing import Literal, cast


class Empty:
    """Sentinel meaning "no default: raise ``KeyError`` if missing".

    Pass the class itself (``default=Empty``), not an instance.
    """


SupportedMechanismType = Literal["process", "thread"]
SUPPORTED_MECHANISMS: tuple[str, ...] = ("process", "thread")


def check_mechanism(value: object) -> SupportedMechanismType:
    """``value`` if it is a supported mechanism (how workers run a task), else ``ValueError``.

    The one check for messages, tasks and the ``task()`` decorator, so a bad value reads the
    same wherever it is given.
    """
    if value not in SUPPORTED_MECHANISMS:
        raise ValueError(f"The mechanism must be one of {SUPPORTED_MECHANISMS}, got {value!r}")
    return cast(SupportedMechanismType, value)
