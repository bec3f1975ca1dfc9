"""Which event loop an async pool runs on: asyncio's own, or uvloop's (libuv, in C).

uvloop makes each loop iteration cheaper (socket reads, callbacks, timers), which is most of an
async pool's own cost per message; it is an optional extra (``pip install 'alsek[uvloop]'``).
``"auto"`` takes it when it is installed and asyncio's loop otherwise.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar, cast

T = TypeVar("T")

LoopName = Literal["auto", "asyncio", "uvloop"]
#: The names a pool's ``loop`` option and ``alsek async-pool --loop`` accept.
LOOP_NAMES: tuple[LoopName, ...] = ("auto", "asyncio", "uvloop")


def _uvloop() -> Any:
    """The uvloop module, or ``None`` when it is not installed."""
    try:
        return importlib.import_module("uvloop")
    except ImportError:
        return None


def check_loop_name(loop: str) -> LoopName:
    """``loop`` if it names a loop this machine can run, else a one-line ``ValueError``."""
    if loop not in LOOP_NAMES:
        raise ValueError(f"loop must be one of {', '.join(LOOP_NAMES)}, not {loop!r}")
    if loop == "uvloop" and _uvloop() is None:
        raise ValueError(
            "loop='uvloop' asks for uvloop, which is not installed: "
            "pip install 'alsek[uvloop]', or use loop='auto' or 'asyncio'"
        )
    return loop


def _runner(loop: str) -> Callable[[Coroutine[Any, Any, T]], T]:
    """What runs a coroutine to its end on a new loop of the kind ``loop`` names:
    ``asyncio.run``, or ``uvloop.run`` (Python 3.10 has no ``asyncio.Runner``)."""
    uvloop = None if check_loop_name(loop) == "asyncio" else _uvloop()
    return (
        asyncio.run if uvloop is None else cast(Callable[[Coroutine[Any, Any, T]], T], uvloop.run)
    )


def loop_kind(event_loop: asyncio.AbstractEventLoop) -> Literal["asyncio", "uvloop"]:
    """Which kind of loop ``event_loop`` is (for the pool's boot log and its check)."""
    return "uvloop" if type(event_loop).__module__.startswith("uvloop") else "asyncio"


def run_on_loop(main: Coroutine[Any, Any, T], loop: str = "auto") -> T:
    """``asyncio.run(main)``, on a new event loop of the kind ``loop`` names."""
    try:
        run = _runner(loop)
    except ValueError:
        main.close()  # never awaited: close it, so that no warning hides the error
        raise
    return run(main)
