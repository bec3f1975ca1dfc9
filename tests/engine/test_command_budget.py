"""What each per-message script costs Redis, in commands (issue 14): a ceiling per operation.

Counted from ``INFO commandstats`` (the commands a script runs included) on a server of the
module's own, so nothing else's commands are counted. Counts do not depend on the machine's
speed. The ceilings are today's counts for a no-op message with status and result off, one
task, a backlog, no limits, no unique key: a change that adds a command to the per-message path
fails here and says which command, so the cost is a decision, not an accident.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator

import pytest
import redis

from alsek.core.broker import Broker
from alsek.core.consumer import Consumer
from alsek.core.message import Message
from alsek.storage.backends import RedisBackend
from alsek.testing import RedisServer

#: Messages per measured operation.
COUNT = 20
#: Commands per message, at most: submit (one per call), claim(1), claim(20), ack.
BUDGET = {"submit": 15, "claim(1)": 19, "claim(20)": 7, "ack": 11}
#: A claim declares the keys of its messages, peeked by the claim before (issue 13): each call
#: reads the next candidates (one ZRANGE: claim(1) went from 18 to 19), and the consumer's first
#: claim after it went idle, or a larger batch than the last peek covered, takes one more call
#: (about 16 commands once per measured run).
PEEK_SLACK = {"claim(1)": 16 / COUNT, "claim(20)": 16 / COUNT}
#: Slack per message for the index keys the warm-up emptied (they vanish) and a measured call
#: makes again: the first extends its TTL (one PEXPIRE over the whole count).
SLACK = 2 / COUNT
#: Calls that are not commands of a script.
NOT_COUNTED = {"evalsha", "eval", "info", "script|load", "script", "ping", "client|setinfo"}


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    with RedisServer() as server:
        yield server.url


def per_message(conn: redis.Redis, work: Callable[[], object]) -> Counter[str]:
    """Commands ``work`` made Redis run, per message, by name."""

    def counts() -> Counter[str]:
        stats = conn.info("commandstats")
        return Counter({k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()})

    before = counts()
    work()
    delta = counts() - before
    return Counter({k: v / COUNT for k, v in delta.items() if k not in NOT_COUNTED})


@pytest.mark.parametrize("batch", [1, COUNT])
def test_per_message_commands_stay_within_budget(server_url: str, batch: int) -> None:
    conn = redis.Redis.from_url(server_url, decode_responses=True)
    conn.flushall()
    broker = Broker(RedisBackend(server_url, namespace="budget"))
    consumer = Consumer(broker, subset=["q"])
    for message in [Message("t", queue="q") for _ in range(3)]:  # scripts loaded, keys made
        broker.submit(message)
    for message in consumer.claim(3).messages:
        broker.ack(message)
    messages = [Message("t", queue="q", args=(i,)) for i in range(COUNT)]
    claimed: list[Message] = []

    def claim() -> None:
        while len(claimed) < COUNT:
            claimed.extend(consumer.claim(min(batch, COUNT - len(claimed))).messages)

    used = {
        "submit": per_message(conn, lambda: [broker.submit(m) for m in messages]),
        f"claim({batch})": per_message(conn, claim),
        "ack": per_message(conn, lambda: [broker.ack(m) for m in claimed]),
    }
    over = {
        op: f"{sum(cmds.values()):.2f} > {BUDGET[op]}: {dict(cmds.most_common())}"
        for op, cmds in used.items()
        if sum(cmds.values()) > BUDGET[op] + SLACK + PEEK_SLACK.get(op, 0)
    }
    assert len(claimed) == COUNT and not over, over
    broker.backend.conn.close()
    conn.close()
