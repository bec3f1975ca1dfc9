"""Redis commands per message, by command name, for each per-message script (issue 14).

Counts (``INFO commandstats`` deltas, so the commands a Lua script runs are included) what one
message costs in ``submit`` (one per call), ``claim(1)``, ``claim(50)`` and ``ack``, plain and
with status+result written. Counts do not depend on the machine's load, unlike timings; the
Redis CPU per message (``INFO cpu``) is printed beside them for a rough idea.

    .venv/bin/python bench/commands.py [--count N]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Callable

import redis
from engine import PLAIN, QUEUE, RESULT_TTL, TASK, Lifecycle, tracked_lifecycle

from alsek.core.broker import Broker
from alsek.core.consumer import Consumer
from alsek.core.message import Message
from alsek.storage.backends import RedisBackend
from alsek.testing import RedisServer

#: Commands left out of the counts: the scripts' calls themselves and the counting.
NOT_COUNTED = {"evalsha", "eval", "info", "script|load", "script"}


def command_counts(conn: redis.Redis) -> Counter[str]:
    """Calls so far per command name (subcommands as Redis names them)."""
    stats = conn.info("commandstats")
    return Counter({name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()})


def redis_cpu(conn: redis.Redis) -> float:
    """Redis's CPU seconds so far (main thread: user + system)."""
    info = conn.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def measured(
    conn: redis.Redis, count: int, work: Callable[[], object]
) -> tuple[dict[str, float], float]:
    """Commands per message by name, and Redis CPU us per message, for ``work``."""
    before, cpu = command_counts(conn), redis_cpu(conn)
    work()
    cpu = redis_cpu(conn) - cpu
    delta = command_counts(conn) - before
    per = {name: calls / count for name, calls in delta.items() if name not in NOT_COUNTED}
    return per, cpu * 1e6 / count


def make_messages(count: int, tasks: int) -> list[Message]:
    """``count`` messages spread over ``tasks`` tasks of the benchmark queue."""
    names = [TASK] if tasks == 1 else [f"{TASK}-{i}" for i in range(tasks)]
    return [
        Message(names[i % tasks], queue=QUEUE, args=(i,), result_ttl=RESULT_TTL)
        for i in range(count)
    ]


#: What measures one step: (connection, messages, work) -> (commands per message, cost).
Measure = Callable[[redis.Redis, int, Callable[[], object]], tuple[dict[str, float], float]]


def run_batch(
    conn: redis.Redis,
    url: str,
    lifecycle: Lifecycle,
    count: int,
    batch: int,
    tasks: int,
    measure: Measure = measured,
) -> list[tuple[str, str, dict[str, float], float]]:
    """Submit (measured with ``batch`` 1), claim ``batch`` at a time and ack ``count``
    messages of ``tasks`` tasks on a flushed server, after a few warm-up messages; each step
    measured by ``measure`` (default: commands and Redis CPU per message)."""
    conn.flushall()
    broker = Broker(RedisBackend(url, namespace="cmds"))
    consumer = Consumer(broker, subset=[QUEUE])
    consumer.claim_status = lifecycle.claim_status
    for message in make_messages(5, tasks):
        broker.submit(message, effects=lifecycle.submit_effects(message))
    for message in consumer.claim(5).messages:
        broker.ack(message, effects=lifecycle.finish_effects(message))
    messages = make_messages(count, tasks)
    claimed: list[Message] = []

    def submit() -> None:
        for message in messages:
            broker.submit(message, effects=lifecycle.submit_effects(message))

    def claim() -> None:
        while len(claimed) < count:
            claimed.extend(consumer.claim(min(batch, count - len(claimed))).messages)

    def ack() -> None:
        for message in claimed:
            broker.ack(message, effects=lifecycle.finish_effects(message))

    steps: list[tuple[str, Callable[[], None]]] = [(f"claim({batch})", claim), ("ack", ack)]
    if batch == 1:
        steps.insert(0, ("submit", submit))
    else:
        submit()
    rows = []
    for name, work in steps:
        per, cpu = measure(conn, count, work)
        rows.append((lifecycle.label, name, per, cpu))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="messages per operation")
    parser.add_argument("--tasks", type=int, default=1, help="tasks the messages spread over")
    options = parser.parse_args(argv)
    with RedisServer() as server:
        conn = redis.Redis.from_url(server.url, decode_responses=True)
        tracked = tracked_lifecycle(RedisBackend(server.url, namespace="cmds"))
        lifecycles = [PLAIN] if isinstance(tracked, str) else [PLAIN, tracked]
        rows = [
            row
            for item in lifecycles
            for batch in (1, 50)
            for row in run_batch(conn, server.url, item, options.count, batch, options.tasks)
        ]
    print("| lifecycle | operation | commands/msg | Redis CPU us/msg | by command |")
    print("|---|---|---|---|---|")
    for label, op, per, cpu in rows:
        total = sum(per.values())
        ranked = sorted(per.items(), key=lambda kv: -kv[1])
        detail = ", ".join(f"{name.upper()} {calls:.2f}" for name, calls in ranked)
        print(f"| {label} | {op} | {total:.2f} | {cpu:.0f} | {detail} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
