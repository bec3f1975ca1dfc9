"""Redis CPU per call of each broker script's library part: the whole library vs its own share.

Redis runs a script's whole text on every call, so the library definitions before the body cost
each call (closures and tables made again). For each script this times, on a fresh server, the
library part alone followed by ``return 1``: as every script carried it before (the whole
library) and as assembled now (only what the body uses, ``scripts/assemble.py``), plus a bare
``return 1`` for the cost of a call itself. ``INFO cpu`` deltas over ``--calls`` pipelined
EVALSHA, rounds alternating, medians printed (µs per call).

    .venv/bin/python bench/prelude.py [--calls N] [--rounds N] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import statistics
from importlib import resources

import redis

from alsek.core.broker.scripts import SCRIPT_NAMES, get_script, library_text
from alsek.core.steps.ops import PUBLISH_PRELUDE
from alsek.testing import RedisServer

ARGS = ("alsek:", "0")


def redis_cpu(conn: redis.Redis) -> float:
    """Redis's CPU seconds so far (user + system)."""
    info = conn.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def cpu_per_call_us(conn: redis.Redis, text: str, calls: int) -> float:
    """Redis CPU µs per EVALSHA of ``text``, over ``calls`` pipelined calls."""
    sha = conn.script_load(text)
    pipe = conn.pipeline(transaction=False)
    for _ in range(calls):
        pipe.evalsha(sha, 0, *ARGS)
    before = redis_cpu(conn)
    pipe.execute()
    return (redis_cpu(conn) - before) * 1e6 / calls


def library_part(name: str) -> str:
    """The library text script ``name`` carries now: its text less its body."""
    folder = resources.files("alsek.core.broker.scripts")
    return get_script(name).body.removesuffix(folder.joinpath(f"{name}.lua").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", action="append", default=[])
    options = parser.parse_args()
    names = options.only or list(SCRIPT_NAMES)
    texts = {"bare": PUBLISH_PRELUDE.format("PUBLISH") + "return 1"}
    texts["whole library"] = PUBLISH_PRELUDE.format("PUBLISH") + library_text() + "\nreturn 1"
    for name in names:
        texts[name] = PUBLISH_PRELUDE.format("PUBLISH") + library_part(name) + "\nreturn 1"
    with RedisServer() as server:
        conn = redis.Redis.from_url(server.url)
        print(f"redis {conn.info('server')['redis_version']}, {options.calls} calls per round")
        samples: dict[str, list[float]] = {label: [] for label in texts}
        for _ in range(options.rounds):
            for label, text in texts.items():
                samples[label].append(cpu_per_call_us(conn, text, options.calls))
        conn.close()
    print(f"{'library part of':<18} {'µs/call':>8} {'rounds':>40}")
    for label, values in samples.items():
        rounds = " ".join(f"{value:.1f}" for value in values)
        print(f"{label:<18} {statistics.median(values):8.1f}   {rounds}")


if __name__ == "__main__":
    main()
