"""What a run cost: CPU of process trees (``/proc``) and of Redis (``INFO cpu``), and the
commands Redis ran (``INFO commandstats``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import redis


def _tree_cpu_seconds(root: int) -> float:
    """CPU time of ``root`` and every descendant, including children they have reaped."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    times: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        times[pid] = sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    total = 0
    for pid in times:
        ancestor = pid
        while ancestor > 1 and ancestor != root:
            ancestor = parents.get(ancestor, 0)
        if ancestor == root:
            total += times[pid]
    return total / ticks


def cpu_seconds(roots: Sequence[int]) -> float:
    """CPU time of the process trees under ``roots``."""
    return sum(_tree_cpu_seconds(root) for root in roots)


def redis_cpu_seconds(conn: redis.Redis) -> float:
    """CPU time the Redis server has used."""
    cpu = conn.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def command_stats(conn: redis.Redis) -> tuple[int, int]:
    """``(calls, usec)`` of every command since the stats were reset (INFO/CONFIG excluded)."""
    stats = conn.info("commandstats")
    measured = {k: v for k, v in stats.items() if k not in ("cmdstat_info", "cmdstat_config")}
    return (
        sum(int(v["calls"]) for v in measured.values()),
        sum(int(v["usec"]) for v in measured.values()),
    )
