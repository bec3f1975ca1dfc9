"""Claims of consumers sharing one queue: what peeking ahead costs when they race (issue 13).

Each claim declares the keys of the candidates its previous reply peeked; a consumer whose
candidates another one took first finds undeclared heads and calls again at once. This counts,
for ``--consumers`` threads claiming ``--batch`` at a time until ``--count`` messages are
taken: script calls per claim and per message, claims that came back short while work was
left, and Redis CPU per message (``INFO cpu``; rough on a shared machine).

    .venv/bin/python bench/claim_contention.py [--count N] [--consumers K] [--batch B]
"""

from __future__ import annotations

import argparse
import sys
import threading

import redis

from alsek.core.broker import Broker
from alsek.core.consumer import Consumer
from alsek.core.message import Message
from alsek.storage.backends import RedisBackend
from alsek.testing import RedisServer


def script_calls(conn: redis.Redis) -> int:
    stats = conn.info("commandstats")
    return sum(int(stats.get(name, {}).get("calls", 0)) for name in ("cmdstat_evalsha",))


def redis_cpu(conn: redis.Redis) -> float:
    info = conn.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def run(url: str, count: int, consumers: int, batch: int) -> dict[str, float]:
    conn = redis.Redis.from_url(url, decode_responses=True)
    conn.flushall()
    broker = Broker(RedisBackend(url, namespace="race"))
    broker.submit_many([Message("t", queue="q", args=(i,)) for i in range(count)])
    lock = threading.Lock()
    taken: list[int] = [0]
    claims: list[int] = [0]
    short: list[int] = [0]

    def work() -> None:
        consumer = Consumer(Broker(RedisBackend(url, namespace="race")), subset=["q"])
        while True:
            with lock:
                left = count - taken[0]
            if left <= 0:
                return
            got = len(consumer.claim(batch).messages)
            with lock:
                taken[0] += got
                claims[0] += 1
                if got < batch and count - taken[0] > batch * consumers:
                    short[0] += 1

    calls, cpu = script_calls(conn), redis_cpu(conn)
    threads = [threading.Thread(target=work) for _ in range(consumers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    calls = script_calls(conn) - calls
    cpu = redis_cpu(conn) - cpu
    return {
        "claims": claims[0],
        "calls/claim": calls / claims[0],
        "calls/msg": calls / count,
        "short claims %": 100 * short[0] / claims[0],
        "Redis CPU us/msg": cpu * 1e6 / count,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--consumers", type=int, default=2)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 50])
    options = parser.parse_args(argv)
    header = "consumers | batch | claims | calls/claim | calls/msg | short claims | CPU us/msg"
    print(f"| {header} |")
    print("|---|---|---|---|---|---|---|")
    with RedisServer() as server:
        for consumers in sorted({1, options.consumers}):
            for batch in options.batch:
                row = run(server.url, options.count, consumers, batch)
                print(
                    f"| {consumers} | {batch} | {row['claims']:.0f} | {row['calls/claim']:.2f} | "
                    f"{row['calls/msg']:.3f} | {row['short claims %']:.1f}% | "
                    f"{row['Redis CPU us/msg']:.0f} |"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
