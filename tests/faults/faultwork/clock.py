"""A skewed host clock for a pool process: alsek reads the time through ``alsek.utils.temporal``,
so shifting it there makes the whole pool (and the process groups it forks) run as on a host
whose clock is ``ALSEK_FAULTS_CLOCK_SKEW_MS`` off. The probe keeps the true time."""

from __future__ import annotations

import os
import time

import alsek.utils.temporal as temporal
from faultwork import settings


class ShiftedTime:
    """The ``time`` module as a host ``offset_ms`` off sees it (only ``time()`` is used)."""

    def __init__(self, offset_ms: int) -> None:
        self.offset = offset_ms / 1000

    def time(self) -> float:
        return time.time() + self.offset


def apply_skew() -> None:
    """Shift alsek's clock by ``ALSEK_FAULTS_CLOCK_SKEW_MS``, if set."""
    skew = int(os.environ.get(settings.CLOCK_SKEW_VAR, "0"))
    if skew:
        temporal.time = ShiftedTime(skew)  # type: ignore[assignment]
