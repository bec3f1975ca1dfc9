"""``make demo``: an embedded Redis, a thread pool on ``examples``, and tasks flowing through it.

Submits a few dozen messages (priorities, a delay, a task that succeeds on its third attempt, a
three-step callback chain, and one revoked while it runs), prints every status change and result
as it arrives, then stops the pool with SIGTERM and cleans up. Set ``ALSEK_REDIS_URL`` to use
your own Redis instead of the embedded one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from typing import Any

from alsek.testing import RedisServer

_print_lock = threading.Lock()
_started = time.monotonic()


def say(text: str) -> None:
    """Print one line, prefixed with the seconds since the demo started."""
    with _print_lock:
        print(f"[{time.monotonic() - _started:5.2f}s] {text}", flush=True)


def start_pool() -> subprocess.Popen[bytes]:
    """``alsek thread-pool examples`` in a child process, sharing our environment."""
    command = [
        sys.executable, "-m", "alsek.cli.cli", "thread-pool", "examples",
        "--n_threads", "4", "--n_processes", "1", "--grace_period", "3000",
        "--log-level", "WARNING",
    ]  # fmt: skip
    return subprocess.Popen(command, env=dict(os.environ))


def follow(tracker: Any, message: Any, label: str) -> threading.Thread:
    """Print each status of ``message`` as it changes, until a terminal one."""

    def listen() -> None:
        for update in tracker.listen_to_updates(message):
            say(f"{label:<24} {update.value.name}")

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    return thread


def main() -> int:
    """Run the demo; returns the process exit code."""
    with ExitStack() as stack:
        if not os.environ.get("ALSEK_REDIS_URL"):
            server = stack.enter_context(RedisServer())
            os.environ["ALSEK_REDIS_URL"] = server.url
            say(f"Started an embedded Redis at {server.url}")
        from alsek.core.status import TaskStatus
        from examples import tasks  # reads ALSEK_REDIS_URL
        from examples.settings import backend, broker, result_store, status_tracker

        backend.clear_namespace()
        followers = []
        submitted: list[tuple[str, Any]] = []

        def track(label: str, message: Any) -> None:
            submitted.append((label, message))
            followers.append(follow(status_tracker, message, label))

        for i in range(24):
            track(f"add({i}, {i}) prio={i % 3}", tasks.add.generate(args=(i, i), priority=i % 3))
        track("add(100, 1) delay=1.5s", tasks.add.generate(args=(100, 1), delay=1500))
        track("flaky()", tasks.flaky.generate())
        chain = (tasks.measure.defer().generate(), tasks.report.defer().generate())
        root = tasks.fetch.generate(args=("https://alsek",), callback=chain)
        track("fetch -> measure -> report", root)
        victim = tasks.slow.generate(args=(30,))
        track("slow(30) (to revoke)", victim)
        say(f"Submitted {len(submitted)} messages; lower priority values will run first")
        pool = start_pool()
        stack.callback(pool.kill)
        say(f"Started `alsek thread-pool examples` (pid {pool.pid})")

        status_tracker.wait_for(victim, TaskStatus.RUNNING, timeout=20)
        tasks.slow.revoke(victim)
        say("Revoked slow(30) while it was running")

        for label, message in submitted:
            if message is victim:
                continue
            chain_root = bool(message.callback_message_data)
            value = result_store.get(message, timeout=20_000, descendants=chain_root)
            say(f"{label:<24} result: {value}")
        for thread in followers:
            thread.join(timeout=5)

        for dead in broker.dlq_list():
            name = dead.message.summary if dead.message else dead.uuid
            say(f"Dead-letter queue: {name}: {dead.reason}")
        pool.send_signal(signal.SIGTERM)
        code = pool.wait(timeout=15)
        say(f"Pool stopped with exit code {code}")
        backend.clear_namespace()
        return code


if __name__ == "__main__":
    sys.exit(main())
