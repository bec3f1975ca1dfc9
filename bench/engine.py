"""Engine benchmark (``make bench-engine``): broker and consumer throughput and latency.

Measures, on a throwaway Redis (or ``ALSEK_BENCH_REDIS_URL``), the figures issues 3 and 4 set
targets for: single and batched submit, claim+ack (sync, and async with concurrency),
submit→claim latency at idle, claim+ack with 1k / 100k / 1M messages in backlog, and a task's
whole life (submit, claim, finish) with status tracking and the result store on versus off.

Messages are built before each timed block: the figures are the broker's, not ``Message()``'s.
Each throughput figure is the best of ``ROUNDS`` timed rounds after a warm-up (the median is
shown beside it); figures compared by a ratio are measured in alternating rounds and the ratio
is the median of the per-round ratios. The JSON keeps every round, and splits each figure's time
per operation into client CPU and Redis script time.

    .venv/bin/python bench/engine.py [--quick] [--only NAME] [--json PATH]
"""

from __future__ import annotations

import asyncio
import random
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis
from _common import (
    RESULTS_DIR,
    WARMUP_ROUNDS,
    Bench,
    Prepare,
    Row,
    Step,
    Target,
    main,
    measure_rounds,
    percentile,
    ratio_row,
    skipped,
    throughput_row,
)

from alsek.admin import Admin
from alsek.core.broker import AsyncBroker, Broker
from alsek.core.broker.effects import ClaimStatus, Effect
from alsek.core.consumer import AsyncConsumer, Consumer
from alsek.core.message import Message
from alsek.core.steps.drivers import run as drive
from alsek.core.worker.heartbeat import DEFAULT_HEARTBEAT_INTERVAL, Heartbeat
from alsek.storage.backends import AsyncRedisBackend, RedisBackend
from alsek.utils.temporal import utcnow_timestamp_ms

QUEUE = "bench"
TASK = "bench"
#: Messages per claim in the throughput steps (a pool with this many free slots).
CLAIM_BATCH = 10
#: Messages per ``submit_many`` call.
SUBMIT_BATCH = 1000
#: Coroutines sharing one ``AsyncBroker`` in the async claim+ack step.
ASYNC_CONCURRENCY = 16
#: Pause after each latency sample, so that the consumer is back to blocking on Redis.
IDLE_GAP_SECONDS = (0.005, 0.010)
#: Alternating rounds behind a ratio with a target: more than ``ROUNDS``, as a ratio of two
#: noisy figures is noisier still.
RATIO_ROUNDS = 9
#: Result TTL of the messages in the status+result step (ms).
RESULT_TTL = 60_000


def make_messages(
    count: int, result_ttl: int | None = None, ready_at: int | None = None
) -> list[Message]:
    """``count`` fresh messages for the benchmark queue."""
    return [
        Message(TASK, queue=QUEUE, args=(index,), result_ttl=result_ttl, ready_at=ready_at)
        for index in range(count)
    ]


def sync_broker(bench: Bench, namespace: str) -> Broker:
    """A broker with its own connection pool."""
    return Broker(RedisBackend(bench.redis.url, namespace=namespace))


def consumer_of(broker: Broker) -> Consumer:
    """A consumer of the benchmark queue (named, so it never reads the queue registry)."""
    return Consumer(broker, subset=[QUEUE])


def prefill(broker: Broker, count: int) -> float:
    """Submit ``count`` messages with ``submit_many``, building them in chunks; seconds taken.

    The messages carry an explicit ``ready_at``, which spares ``Message.ready_at`` rebuilding the
    backoff from its settings on every read: a 1M backlog fills noticeably faster.
    """
    started = time.perf_counter()
    chunk = 20 * SUBMIT_BATCH
    for start in range(0, count, chunk):
        messages = make_messages(min(chunk, count - start), ready_at=utcnow_timestamp_ms())
        for offset in range(0, len(messages), SUBMIT_BATCH):
            broker.submit_many(messages[offset : offset + SUBMIT_BATCH])
    return time.perf_counter() - started


def drain(
    consumer: Consumer,
    count: int,
    heartbeat: Heartbeat | None = None,
    finish: Callable[[Message], Any] | None = None,
) -> None:
    """Claim ``count`` messages, ``CLAIM_BATCH`` at a time, and ack each (or ``finish`` it);
    with ``heartbeat``, beat every ``FAST_BEAT_MS`` as a pool's loop would."""
    finish = finish or consumer.broker.ack
    done, next_beat = 0, 0.0
    while done < count:
        if heartbeat is not None and time.monotonic() >= next_beat:
            next_beat = time.monotonic() + FAST_BEAT_MS / 1000
            drive(
                heartbeat.beat_steps(busy=CLAIM_BATCH, slots=CLAIM_BATCH),
                consumer.broker.backend.conn,
            )
        claim = consumer.claim(min(CLAIM_BATCH, count - done))
        if not claim.messages:
            raise RuntimeError(f"the queue ran dry after {done} of {count} messages")
        for message in claim.messages:
            finish(message)
        done += len(claim.messages)


def drain_only(consumer: Consumer, count: int) -> Prepare:
    """A round that drains ``count`` messages from a queue filled beforehand."""

    def prepare() -> Callable[[], None]:
        return lambda: drain(consumer, count)

    return prepare


# -- 1, 2: submit ------------------------------------------------------------------------


def step_submit(bench: Bench) -> list[Row]:
    """One message per ``submit`` call: a producer calling ``Task.generate`` in a loop."""
    count = 1000 if bench.quick else 3000
    with bench.namespace("submit") as namespace:
        broker = sync_broker(bench, namespace)

        def prepare() -> Callable[[], None]:
            messages = make_messages(count)
            return lambda: [broker.submit(message) for message in messages]

        rounds = measure_rounds(bench, {"submit": prepare})["submit"]
    return [throughput_row("submit, one per call", rounds, count, Target(4000))]


def step_submit_many(bench: Bench) -> list[Row]:
    """``submit_many`` in batches of ``SUBMIT_BATCH``."""
    count = 10_000 if bench.quick else 30_000
    with bench.namespace("submit-many") as namespace:
        broker = sync_broker(bench, namespace)

        def prepare() -> Callable[[], None]:
            messages = make_messages(count)
            batches = [messages[i : i + SUBMIT_BATCH] for i in range(0, count, SUBMIT_BATCH)]
            return lambda: [broker.submit_many(batch) for batch in batches]

        rounds = measure_rounds(bench, {"submit_many": prepare})["submit_many"]
    name = f"submit_many, batches of {SUBMIT_BATCH:,}"
    return [throughput_row(name, rounds, count, Target(30_000))]


# -- 3, 4: claim + ack -------------------------------------------------------------------


def step_claim_ack(bench: Bench) -> list[Row]:
    """Sync ``Consumer.claim(CLAIM_BATCH)`` then ``ack`` of each message."""
    count = 2000 if bench.quick else 5000
    with bench.namespace("claim-ack") as namespace:
        broker = sync_broker(bench, namespace)
        consumer = consumer_of(broker)

        def prepare() -> Callable[[], None]:
            prefill(broker, count)
            return lambda: drain(consumer, count)

        rounds = measure_rounds(bench, {"claim_ack": prepare})["claim_ack"]
    return [throughput_row(f"claim({CLAIM_BATCH})+ack, sync", rounds, count)]


async def drain_async(broker: AsyncBroker, consumers: Sequence[AsyncConsumer], count: int) -> None:
    """Claim+ack ``count`` messages with one coroutine per consumer, sharing ``broker``."""
    budget = count  # claims reserve from it first, so together they take exactly ``count``

    async def work(consumer: AsyncConsumer) -> None:
        nonlocal budget
        while budget > 0:
            wanted = min(CLAIM_BATCH, budget)
            budget -= wanted
            claim = await consumer.claim(wanted)
            if len(claim.messages) != wanted:
                raise RuntimeError(f"claimed {len(claim.messages)} of {wanted}: queue ran dry")
            for message in claim.messages:
                await broker.ack(message)

    await asyncio.gather(*(work(consumer) for consumer in consumers))


def step_claim_ack_async(bench: Bench) -> list[Row]:
    """``ASYNC_CONCURRENCY`` coroutines claiming and acking through one ``AsyncBroker``."""
    count = 3000 if bench.quick else 10_000
    loop = asyncio.new_event_loop()
    with bench.namespace("claim-ack-async") as namespace:
        backend = AsyncRedisBackend(bench.redis.url, namespace=namespace)
        broker = AsyncBroker(backend)
        consumers = [AsyncConsumer(broker, subset=[QUEUE]) for _ in range(ASYNC_CONCURRENCY)]
        filler = sync_broker(bench, namespace)

        def prepare() -> Callable[[], None]:
            prefill(filler, count)
            return lambda: loop.run_until_complete(drain_async(broker, consumers, count))

        try:
            rounds = measure_rounds(bench, {"claim_ack_async": prepare})["claim_ack_async"]
        finally:
            loop.run_until_complete(backend.conn.aclose())
            loop.close()
    name = f"claim({CLAIM_BATCH})+ack, async x{ASYNC_CONCURRENCY}"
    return [throughput_row(name, rounds, count, Target(4000))]


# -- 5: latency --------------------------------------------------------------------------


class StreamingConsumer:
    """A ``Consumer.stream()`` in a thread, recording when each message reaches it."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.received: dict[str, int] = {}
        self.arrived = threading.Event()
        self._started = threading.Event()
        self._consumer: Consumer | None = None
        self._thread = threading.Thread(target=self._run, name="bench-consumer", daemon=True)

    def _run(self) -> None:
        # Built in its thread: installs no signal handlers, so Ctrl-C still stops the run.
        self._consumer = consumer_of(self.broker)
        self._started.set()
        for message in self._consumer.stream():
            self.received[message.uuid] = time.perf_counter_ns()
            self.arrived.set()
            self.broker.ack(message)

    def __enter__(self) -> StreamingConsumer:
        self._thread.start()
        self._started.wait()
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._consumer is not None
        self._consumer.stop_signal.exit_event.set()
        self._thread.join(timeout=5)


def step_latency(bench: Bench) -> list[Row]:
    """Submit one message at a time to an idle consumer; time until ``stream()`` yields it."""
    samples = 300 if bench.quick else 500
    sent: dict[str, int] = {}
    with bench.namespace("latency") as namespace:
        producer = sync_broker(bench, namespace)
        with StreamingConsumer(sync_broker(bench, namespace)) as consumer:
            time.sleep(IDLE_GAP_SECONDS[1])
            for message in make_messages(samples):
                consumer.arrived.clear()
                sent[message.uuid] = time.perf_counter_ns()
                producer.submit(message)
                if not consumer.arrived.wait(timeout=5):
                    raise RuntimeError(f"message {message.uuid} not received within 5 s")
                time.sleep(random.uniform(*IDLE_GAP_SECONDS))
        received = consumer.received
    latencies = [(received[uuid] - sent[uuid]) / 1e6 for uuid in sent]
    note = f"{len(latencies)} samples, consumer idle (blocked in stream()) before each submit"
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    name = "submit->claim latency {}"
    return [
        Row(name.format("p50"), round(p50, 3), "ms", Target(2, at_least=False), note),
        Row(name.format("p99"), round(p99, 3), "ms", Target(10, at_least=False)),
        Row(name.format("max"), round(max(latencies), 3), "ms"),
    ]


# -- 6: backlog --------------------------------------------------------------------------


def step_backlog(bench: Bench) -> list[Row]:
    """Claim+ack from behind 1k, 100k and 1M messages (the backlog never drops below that).

    The three backlogs live side by side (one namespace each) and are measured in alternating
    rounds, so that the 1M / 1k ratio is not at the mercy of a noisy spell.
    """
    sizes = (1_000, 100_000) if bench.quick else (1_000, 100_000, 1_000_000)
    count = 2000 if bench.quick else 3000
    total = (WARMUP_ROUNDS + RATIO_ROUNDS) * count
    variants: dict[str, Prepare] = {}
    notes = {}
    with bench.namespace("backlog") as base:
        for size in sizes:
            consumer = consumer_of(sync_broker(bench, f"{base}-{size}"))
            filled_in = prefill(consumer.broker, size + total)
            notes[size] = f"prefilled {size + total:,} in {filled_in:.1f} s"
            variants[str(size)] = drain_only(consumer, count)
        rounds = measure_rounds(bench, variants, rounds=RATIO_ROUNDS)
    rows = {
        size: throughput_row(
            f"claim({CLAIM_BATCH})+ack, {size:,} backlog",
            rounds[str(size)],
            count,
            None,
            notes[size],
        )
        for size in sizes
    }
    ratios = [ratio_row("backlog 100k / 1k", rows[100_000], rows[1_000], None, paired=True)]
    if 1_000_000 in rows:
        ratios.append(
            ratio_row("backlog 1M / 1k", rows[1_000_000], rows[1_000], Target(0.9), paired=True)
        )
    else:
        ratios.append(skipped("backlog 1M / 1k", "ratio", Target(0.9), "1M skipped (--quick)"))
    return [*rows.values(), *ratios]


# -- 7: status tracking and result store -------------------------------------------------


@dataclass(frozen=True)
class Lifecycle:
    """What submit, claim and finish write besides the message itself."""

    label: str
    submit_effects: Callable[[Message], Sequence[Effect]]
    claim_status: ClaimStatus | None
    finish_effects: Callable[[Message], Sequence[Effect]]


PLAIN = Lifecycle("plain", lambda message: (), None, lambda message: ())


def tracked_lifecycle(backend: RedisBackend) -> Lifecycle | str:
    """Status (SUBMITTED, RUNNING, SUCCEEDED) and result written by the broker operations.

    Returns why not, while ``alsek.core.status`` / ``alsek.storage.result`` lack the effects API.
    """
    try:
        from alsek.core.status import StatusTracker, TaskStatus
        from alsek.storage.result import ResultStore
    except ImportError as error:
        return f"not available yet ({error})"
    tracker, store = StatusTracker(backend), ResultStore(backend)
    missing = [
        name
        for owner, name in ((tracker, "effects"), (tracker, "claim_status"), (store, "effects"))
        if not hasattr(owner, name)
    ]
    if missing:
        return f"not available yet (missing {', '.join(missing)})"
    return Lifecycle(
        "status+result",
        lambda message: tracker.effects(message, TaskStatus.SUBMITTED),
        tracker.claim_status(),
        lambda message: [
            *tracker.effects(message, TaskStatus.SUCCEEDED),
            *store.effects(message, {"index": message.args[0]}),
        ],
    )


def run_lifecycles(broker: Broker, lifecycle: Lifecycle, messages: Sequence[Message]) -> None:
    """Submit each message, claim them ``CLAIM_BATCH`` at a time, and finish each."""
    consumer = consumer_of(broker)
    consumer.claim_status = lifecycle.claim_status
    for start in range(0, len(messages), CLAIM_BATCH):
        batch = messages[start : start + CLAIM_BATCH]
        for message in batch:
            broker.submit(message, effects=lifecycle.submit_effects(message))
        claim = consumer.claim(len(batch))
        if len(claim.messages) != len(batch):
            raise RuntimeError(f"claimed {len(claim.messages)} of {len(batch)} just submitted")
        for message in claim.messages:
            broker.ack(message, effects=lifecycle.finish_effects(message))


def step_status_result(bench: Bench) -> list[Row]:
    """A task's whole life (submit, claim, ack) plain, then with status and result written."""
    count = 1000 if bench.quick else 2000
    target = Target(0.75)
    with bench.namespace("status-result") as namespace:
        broker = sync_broker(bench, namespace)
        tracked = tracked_lifecycle(broker.backend)
        lifecycles = [PLAIN] if isinstance(tracked, str) else [PLAIN, tracked]

        def rounds_of(lifecycle: Lifecycle) -> Prepare:
            def prepare() -> Callable[[], None]:
                messages = make_messages(count, result_ttl=RESULT_TTL)
                return lambda: run_lifecycles(broker, lifecycle, messages)

            return prepare

        variants = {item.label: rounds_of(item) for item in lifecycles}
        rounds = measure_rounds(bench, variants, rounds=RATIO_ROUNDS)
    name = "submit+claim+ack, {}"
    note = f"submit one per call, claim({CLAIM_BATCH}), ack each"
    plain = throughput_row(name.format("plain"), rounds["plain"], count, None, note)
    if isinstance(tracked, str):
        return [
            plain,
            skipped(name.format("status+result"), "msg/s", None, tracked),
            skipped("status+result / plain", "ratio", target, tracked),
        ]
    on = throughput_row(name.format("status+result"), rounds[tracked.label], count, None)
    return [plain, on, ratio_row("status+result / plain", on, plain, target, paired=True)]


# -- 8: operating: heartbeats ------------------------------------------------------------------

#: Beat interval of the heartbeat step's beating variant: 100 times the default, so that a
#: round of a few seconds holds enough beats to measure.
FAST_BEAT_MS = 50


def step_heartbeat(bench: Bench) -> list[Row]:
    """What beating costs a pool: claim+ack with a beat every ``FAST_BEAT_MS`` against none;
    the cost at the default interval is that difference over the interval ratio."""
    count = 2000 if bench.quick else 5000
    with bench.namespace("heartbeat") as namespace:
        broker = sync_broker(bench, namespace)
        consumer = consumer_of(broker)
        heartbeat = Heartbeat(f"{namespace}:", "thread", {QUEUE: [TASK]}, FAST_BEAT_MS)

        def rounds_of(beating: Heartbeat | None) -> Prepare:
            def prepare() -> Callable[[], None]:
                prefill(broker, count)
                return lambda: drain(consumer, count, beating)

            return prepare

        variants = {"plain": rounds_of(None), "beating": rounds_of(heartbeat)}
        rounds = measure_rounds(bench, variants, rounds=RATIO_ROUNDS)
        started = time.perf_counter()
        for _ in range(200):
            drive(heartbeat.beat_steps(busy=0, slots=CLAIM_BATCH), broker.backend.conn)
        beat_ms = (time.perf_counter() - started) / 200 * 1000
    plain = throughput_row("claim+ack, no heartbeat", rounds["plain"], count)
    name = f"claim+ack, a beat every {FAST_BEAT_MS} ms"
    beating = throughput_row(name, rounds["beating"], count)
    ratio = ratio_row(f"beat every {FAST_BEAT_MS} ms / none", beating, plain, None, paired=True)
    scale = DEFAULT_HEARTBEAT_INTERVAL / FAST_BEAT_MS
    by_ratio = (1 - (ratio.figure or 1)) * 100 / scale
    note = f"one beat: {beat_ms:.3f} ms; by the ratio: {by_ratio:.4f} %"
    overhead = round(beat_ms / DEFAULT_HEARTBEAT_INTERVAL * 100, 4)
    name = f"heartbeat cost at the default {DEFAULT_HEARTBEAT_INTERVAL} ms interval"
    return [plain, beating, ratio, Row(name, overhead, "%", Target(1, at_least=False), note)]


# -- operating: the throughput history -------------------------------------------------------


def command_calls(conn: redis.Redis, *names: str) -> int:
    """How many times Redis ran the commands ``names`` (scripts' calls included) so far."""
    stats = conn.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in names)


def commands_per_message(
    bench: Bench, broker: Broker, count: int, finish: Callable[[Message], Any]
) -> tuple[float, float]:
    """HINCRBY and PEXPIREAT run per message by claiming and finishing ``count`` messages."""
    prefill(broker, count)
    names = ("hincrby", "pexpireat")
    before = [command_calls(bench.redis.conn, name) for name in names]
    drain(consumer_of(broker), count, finish=finish)
    after = [command_calls(bench.redis.conn, name) for name in names]
    hincrby, pexpireat = ((b - a) / count for a, b in zip(before, after))
    return hincrby, pexpireat


def step_throughput_history(bench: Bench) -> list[Row]:
    """What counting each ended attempt in the throughput history costs (``count_outcome``):
    claim+ack, which counts, against claim+remove, the same script with counting skipped at
    its first line; alternating rounds. The commands it adds per message come from
    ``INFO commandstats``."""
    count = 2000 if bench.quick else 5000
    with bench.namespace("throughput-history") as namespace:
        broker = sync_broker(bench, namespace)
        consumer = consumer_of(broker)

        def rounds_of(finish: Callable[[Message], Any]) -> Prepare:
            def prepare() -> Callable[[], None]:
                prefill(broker, count)
                return lambda: drain(consumer, count, finish=finish)

            return prepare

        variants = {"counted": rounds_of(broker.ack), "uncounted": rounds_of(broker.remove)}
        rounds = measure_rounds(bench, variants, rounds=RATIO_ROUNDS)
        prefill(broker, count)
        used = {
            name: commands_per_message(bench, broker, count, finish)
            for name, finish in (("counted", broker.ack), ("uncounted", broker.remove))
        }
        hincrby, pexpireat = (a - b for a, b in zip(used["counted"], used["uncounted"]))
    counted = throughput_row("claim+ack, outcome counted", rounds["counted"], count)
    uncounted = throughput_row("claim+ack, not counted (remove)", rounds["uncounted"], count)
    return [
        counted,
        uncounted,
        ratio_row("counted / not counted", counted, uncounted, Target(0.9), paired=True),
        Row(
            "Redis commands added per message",
            round(hincrby + pexpireat, 3),
            "commands",
            None,
            note=f"HINCRBY {hincrby:.3f}, PEXPIREAT {pexpireat:.3f} (once per new hash)",
        ),
    ]


# -- 9: operating: queue counts -----------------------------------------------------------------

#: Queues and tasks per queue of the queue-counts step.
STATS_QUEUES, STATS_TASKS = 100, 10


class CountingRedis(redis.Redis):
    """A client that counts its round trips: each command sent alone, each pipeline."""

    round_trips = 0

    def execute_command(self, *args: Any, **options: Any) -> Any:
        self.round_trips += 1
        return super().execute_command(*args, **options)

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        pipe = super().pipeline(transaction, shard_hint)
        send = pipe.execute

        def execute(*args: Any, **options: Any) -> Any:
            self.round_trips += 1
            return send(*args, **options)

        pipe.execute = execute
        return pipe


def fill_queues(broker: Broker, per_task: int) -> float:
    """``per_task`` messages of each of ``STATS_TASKS`` tasks in ``STATS_QUEUES`` queues."""
    started = time.perf_counter()
    now = utcnow_timestamp_ms()
    for queue in range(STATS_QUEUES):
        messages = [
            Message(f"task{task}", queue=f"queue{queue}", args=(index,), ready_at=now)
            for task in range(STATS_TASKS)
            for index in range(per_task)
        ]
        for offset in range(0, len(messages), SUBMIT_BATCH):
            broker.submit_many(messages[offset : offset + SUBMIT_BATCH])
    return time.perf_counter() - started


def step_queue_counts(bench: Bench) -> list[Row]:
    """``Admin.queues()`` over 100 queues x 10 tasks holding 1M messages: its round trips
    (counted on the client) and its time; the counts come from the indexes, so neither grows
    with the backlog."""
    per_task = 10 if bench.quick else 1_000
    total = STATS_QUEUES * STATS_TASKS * per_task
    with bench.namespace("queue-counts") as namespace:
        client = CountingRedis.from_url(bench.redis.url, decode_responses=True)
        broker = Broker(RedisBackend(client, namespace=namespace))
        filled_in = fill_queues(broker, per_task)
        admin = Admin(broker)
        before = client.round_trips
        started = time.perf_counter()
        queues = admin.queues()
        took_ms = (time.perf_counter() - started) * 1000
        trips = client.round_trips - before
        counted = sum(stats.ready for stats in queues)
        if len(queues) != STATS_QUEUES or counted != total:
            raise RuntimeError(f"queues() saw {len(queues)} queues, {counted} messages")
        timings = []
        for _ in range(5):
            started = time.perf_counter()
            admin.queues()
            timings.append((time.perf_counter() - started) * 1000)
        client.close()
    note = f"{total:,} messages (filled in {filled_in:.1f} s); counted {counted:,}"
    shape = f"{STATS_QUEUES} queues x {STATS_TASKS} tasks"
    return [
        Row(f"queues() round trips, {shape}", trips, "trips", Target(STATS_QUEUES, False), note),
        Row(f"queues() time, {shape}", round(min([took_ms, *timings]), 2), "ms"),
    ]


STEPS: dict[str, Step] = {
    "submit": step_submit,
    "submit_many": step_submit_many,
    "claim_ack": step_claim_ack,
    "claim_ack_async": step_claim_ack_async,
    "latency": step_latency,
    "backlog": step_backlog,
    "status_result": step_status_result,
    "heartbeat": step_heartbeat,
    "queue_counts": step_queue_counts,
    "throughput_history": step_throughput_history,
}

if __name__ == "__main__":
    sys.exit(main("alsek engine benchmark", STEPS, RESULTS_DIR / "engine.json"))
