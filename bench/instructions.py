"""Redis instructions per message (callgrind), for submit, claim(1), claim(50) and ack.

``bench/commands.py`` reads Redis CPU from ``INFO cpu``, which moves by a fifth from run to run
on a shared machine. This runs the same steps on a throwaway ``redis-server`` under valgrind's
callgrind, counting instructions only while a step runs: the figures repeat to within a few
tenths of a percent, so a change to a script can be judged in one run (issue 14). Needs
``valgrind`` (with ``callgrind_control``) on ``PATH``; about a minute for 300 messages.

    .venv/bin/python bench/instructions.py [--count N] [--tasks T]
"""

from __future__ import annotations

import argparse
import glob
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import redis
from commands import run_batch
from engine import PLAIN, tracked_lifecycle

from alsek.storage.backends import RedisBackend
from alsek.testing import find_redis_server_binary


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def callgrind_server(folder: str) -> Iterator[tuple[int, str]]:
    """A redis-server under callgrind, instrumentation off until asked: (its pid, its URL)."""
    port = free_port()
    command = [
        "valgrind", "--tool=callgrind", "--instr-atstart=no",
        f"--callgrind-out-file={folder}/cg.%p",
        find_redis_server_binary(), "--port", str(port), "--save", "", "--appendonly", "no",
    ]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        conn = redis.Redis.from_url(url)
        deadline = time.monotonic() + 60
        while True:
            try:
                conn.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield server.pid, url
    finally:
        server.terminate()
        server.wait(30)


def instruction_counter(
    pid: int, folder: str
) -> Callable[[redis.Redis, int, Callable[[], object]], tuple[dict[str, float], float]]:
    """A ``measure`` for ``run_batch``: thousands of Redis instructions per message."""

    def control(*flags: str) -> None:
        subprocess.run(["callgrind_control", *flags, str(pid)], check=True, capture_output=True)

    def measure(
        conn: redis.Redis, count: int, work: Callable[[], object]
    ) -> tuple[dict[str, float], float]:
        control("-i", "on")
        control("-z")
        work()
        before = set(glob.glob(f"{folder}/cg.*"))
        control("-d")
        control("-i", "off")
        dump = max(set(glob.glob(f"{folder}/cg.*")) - before, key=os.path.getmtime)
        with open(dump) as lines:
            total = next(int(line.split()[1]) for line in lines if line.startswith("summary:"))
        return {}, total / count / 1000

    return measure


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300, help="messages per operation")
    parser.add_argument("--tasks", type=int, default=1, help="tasks the messages spread over")
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder, callgrind_server(folder) as (pid, url):
        conn = redis.Redis.from_url(url, decode_responses=True)
        measure = instruction_counter(pid, folder)
        tracked = tracked_lifecycle(RedisBackend(url, namespace="cmds"))
        lifecycles = [PLAIN] if isinstance(tracked, str) else [PLAIN, tracked]
        print("| lifecycle | operation | Redis kilo-instructions/msg |")
        print("|---|---|---|")
        for lifecycle in lifecycles:
            for batch in (1, 50):
                rows = run_batch(conn, url, lifecycle, options.count, batch, options.tasks, measure)
                for label, op, _, thousands in rows:
                    print(f"| {label} | {op} | {thousands:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
