"""The broker's Redis protocol: one Lua script per operation, sharing the library parts.

Each script is its body after the library definitions it uses, directly or through others
(``assemble.py``), taken from the library parts (``LIBRARY_PARTS``, in that order: a part uses
only names of the parts before it): Redis runs a script's whole text on every call.

Scripts are identified by the SHA1 of their text, called with EVALSHA, and loaded again
transparently when Redis answers NOSCRIPT (after a restart or ``SCRIPT FLUSH``).
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from alsek.core.broker.scripts.assemble import Block, shake, split_blocks
from alsek.core.steps.ops import Script

#: The library scripts take their definitions from, one job per file, in the order they are read.
LIBRARY_PARTS = (
    "lib_keys",  # conventions, clock, replies, per-call limits, key builders
    "lib_index",  # putting messages in their indexes, wake-ups
    "lib_limits",  # task limits at claim time and their slots
    "lib_finish",  # the lease check, the ends of a message, unique keys, groups
    "lib_status",  # status writes, the throughput history
    "lib_effects",  # side effects applied with an operation
    "lib_sweep",  # promotion of due messages, reclaim of expired leases
)

SCRIPT_NAMES = (
    "ack",
    "claim",
    "dlq_index",
    "expire_unserved",
    "fail",
    "forget_queue",
    "purge",
    "purge_dead",
    "purge_dlq",
    "queues",
    "reclaim",
    "register",
    "release",
    "renew",
    "requeue",
    "resume",
    "retry",
    "revoke",
    "run_now",
    "stats",
    "submit",
    "sync_to",
    "unregister",
)


@cache
def library_text() -> str:
    """The library parts joined in their order (read once per process)."""
    folder = resources.files(__package__)
    return "\n".join(folder.joinpath(f"{part}.lua").read_text() for part in LIBRARY_PARTS)


@cache
def library_blocks() -> list[Block]:
    """The library's top-level statements, split once per process."""
    return split_blocks(library_text())


@cache
def get_script(name: str) -> Script:
    """Return the script called ``name``: the library definitions it uses, then its body."""
    if name not in SCRIPT_NAMES:
        raise KeyError(f"No broker script named {name!r}")
    body = resources.files(__package__).joinpath(f"{name}.lua").read_text()
    return Script.from_text(name, shake(library_blocks(), body))
