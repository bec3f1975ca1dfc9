"""Small shared types: the ``Empty`` sentinel and the supported execution mechanisms."""

from __future__ import annotations

from typing import Literal


class Empty:
    """Sentinel meaning "no default: raise ``KeyError`` if missing".

    Pass the class itself (``default=Empty``), not an instance.
    """


SupportedMechanismType = Literal["process", "thread"]
SUPPORTED_MECHANISMS: tuple[str, ...] = ("process", "thread")
