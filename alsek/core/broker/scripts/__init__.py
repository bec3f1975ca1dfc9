"""The broker's Redis protocol: one Lua script per operation, sharing ``lib.lua``.

Scripts are identified by the SHA1 of their text, called with EVALSHA, and loaded again
transparently when Redis answers NOSCRIPT (after a restart or ``SCRIPT FLUSH``).
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from alsek.core.steps.ops import Script

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
def get_script(name: str) -> Script:
    """Return the script called ``name``: ``lib.lua`` then its body (read once per process)."""
    if name not in SCRIPT_NAMES:
        raise KeyError(f"No broker script named {name!r}")
    folder = resources.files(__package__)
    text = (
        folder.joinpath("lib.lua").read_text() + "\n" + folder.joinpath(f"{name}.lua").read_text()
    )
    return Script.from_text(name, text)
