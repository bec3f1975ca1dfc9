"""Which event loop an async pool runs on: asyncio's own, or uvloop's (libuv, in C).

uvloop makes each loop iteration cheaper (socket reads, callbacks, timers), which is most of an
async pool's own cost per message; it is an optional extra (``pip install 'alsek[uvloop]'``).
``"auto"`` takes it when it is installed and asyncio's loop otherwise.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

T = TypeVar("T")

LoopName = Literal["auto", "asyncio", "uvloop"]
#: The names a pool's ``loop`` option and ``alsek async-pool --loop`` accept.
LOOP_NAMES: tuple[LoopName, ...] = ("auto", "asyncio", "uvloop")

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def _uvloop_factory() -> LoopFactory | None:
    """uvloop's ``new_event_loop``, or ``None`` when uvloop is not installed."""
    try:
        module = importlib.import_module("uvloop")
    except ImportError:
        return None
    factory: LoopFactory = module.new_event_loop
    return factory


def check_loop_name(loop: str) -> LoopName:
    """``loop`` if it names a loop this machine can run, else a one-line ``ValueError``."""
    if loop not in LOOP_NAMES:
        raise ValueError(f"loop must be one of {', '.join(LOOP_NAMES)}, not {loop!r}")
    if loop == "uvloop" and _uvloop_factory() is None:
        raise ValueError(
            "loop='uvloop' asks for uvloop, which is not installed: "
            "pip install 'alsek[uvloop]', or use loop='auto' or 'asyncio'"
        )
    return loop  # type: ignore[return-value]


def loop_factory(loop: str) -> LoopFactory | None:
    """What builds the event loop ``loop`` names; ``None`` means asyncio's default loop."""
    if check_loop_name(loop) == "asyncio":
        return None
    return _uvloop_factory()


def loop_kind(event_loop: asyncio.AbstractEventLoop) -> Literal["asyncio", "uvloop"]:
    """Which kind of loop ``event_loop`` is (for the pool's boot log and its check)."""
    return "uvloop" if type(event_loop).__module__.startswith("uvloop") else "asyncio"


def run_on_loop(main: Coroutine[Any, Any, T], loop: str = "auto") -> T:
    """``asyncio.run(main)``, on a new event loop of the kind ``loop`` names."""
    try:
        factory = loop_factory(loop)
    except ValueError:
        main.close()  # never awaited: close it, so that no warning hides the error
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
