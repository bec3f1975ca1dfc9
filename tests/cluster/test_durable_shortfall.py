"""``Broker(wait_replicas=N)`` when the replicas fall short: a write is not acknowledged (it
raises ``ReplicationShortfallError``, an outage, once its caller's patience ends), its caller
sends it again as is, and the repeat, which changes nothing, is acknowledged once the replicas
have the first. Nothing is lost, nothing is applied twice; a claim hands out nothing until its
leases reached the replicas. The replica is stopped (SIGSTOP) to
fall short: it then applies and acknowledges nothing until it is continued."""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis

from alsek.core.broker import AsyncBroker, BaseBroker, Broker, ClaimSource
from alsek.core.broker import submit as submit_module
from alsek.core.broker.claims import split_wanted
from alsek.core.consumer import AsyncConsumer, Consumer
from alsek.core.future.outcome import run_plan, run_plan_async, success_plan
from alsek.core.message import Message
from alsek.core.status import TaskStatus
from alsek.core.steps import replication
from alsek.core.steps.drivers import run
from alsek.core.steps.ops import RoundTrip, ScriptCall, Steps
from alsek.defaults import DEFAULT_TTL
from alsek.exceptions import ReplicationShortfallError
from alsek.storage.backends import RedisBackend
from alsek.testing import RedisServer
from tests.polling import call, eventually, until
from tests.task.conftest import Kit

pytestmark = pytest.mark.slow

OWNER = "lock:test-host:process:1:lease:shortfall"
#: WAIT's limit in these tests: short, since the replica is stopped, not slow.
SHORT_MS = 50
#: How long a re-sent submit keeps trying in these tests (the default is 10 s).
PATIENCE_MS = 300

Pair = tuple[RedisServer, RedisServer]


@contextmanager
def stopped(replica: RedisServer) -> Iterator[Callable[[], None]]:
    """The replica stopped until ``resume()`` (given) is called, or the block ends."""
    assert replica.pid is not None
    pid = replica.pid
    os.kill(pid, signal.SIGSTOP)
    resumed = []

    def resume() -> None:
        if not resumed:
            resumed.append(True)
            os.kill(pid, signal.SIGCONT)

    try:
        yield resume
    finally:
        resume()


def waits(server: RedisServer) -> int:
    """How many WAITs ``server`` answered so far."""
    stats: dict[str, Any] = server.info("commandstats")
    return int(stats.get("cmdstat_wait", {}).get("calls", 0))


def background(method: Any, *args: Any, **kwargs: Any) -> asyncio.Future[Any]:
    """``method`` left running: in a thread when it blocks, as a task when it is async."""
    if inspect.iscoroutinefunction(method):
        return asyncio.ensure_future(method(*args, **kwargs))
    return asyncio.ensure_future(asyncio.to_thread(method, *args, **kwargs))


def durable(kit: Kit) -> BaseBroker:
    """The kit's broker, made to wait for one replica, briefly."""
    broker_class = Broker if kit.kind == "sync" else AsyncBroker
    return broker_class(kit.backend, wait_replicas=1, wait_timeout_ms=SHORT_MS)


@pytest.fixture
def pair(replicated: Callable[..., Pair]) -> Pair:
    return replicated()


@pytest.fixture(params=["sync", "async"])
async def kit(request: pytest.FixtureRequest, pair: Pair, namespace: str) -> AsyncIterator[Kit]:
    built = Kit(request.param, pair[0].url, namespace)
    built.broker = durable(built)
    yield built
    await built.close()


@pytest.fixture(autouse=True)
def warn_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shortfall warning is rate-limited per process: an earlier test's must not hide it."""
    monkeypatch.setattr(replication, "_last_warning", [0.0])


async def test_a_submit_short_of_replicas_is_not_acknowledged_then_goes_through_once(
    kit: Kit,
    pair: Pair,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    primary, replica = pair
    message = Message("work", queue="q")
    monkeypatch.setattr(submit_module, "SUBMIT_OUTAGE_PATIENCE_MS", PATIENCE_MS)
    with stopped(replica) as resume:
        shortfall = pytest.raises(ReplicationShortfallError, match="reached 0 of 1 replicas")
        with caplog.at_level(logging.WARNING, logger=replication.__name__), shortfall:
            await call(kit.broker.submit, message)
        assert f"reached 0 of 1 replicas within {SHORT_MS} ms; not acknowledged" in caplog.text
        # The producer submits it again, patiently this time: it waits for the replica.
        monkeypatch.setattr(submit_module, "SUBMIT_OUTAGE_PATIENCE_MS", 60_000)
        before = waits(primary)
        again = background(kit.broker.submit, message)
        await until(lambda: waits(primary) >= before + 2, what="the submit sent again")
        assert not again.done()
        resume()
        await asyncio.wait_for(again, 30)
    claim = await call(kit.broker.claim, [ClaimSource("q")], 10, OWNER)
    assert [got.uuid for got in claim.messages] == [message.uuid]  # one message
    assert await call(kit.broker.ack, claim.messages[0])
    assert (await call(kit.broker.claim, [ClaimSource("q")], 10, OWNER)).messages == []


async def test_a_batch_short_of_replicas_is_sent_again_whole(kit: Kit, pair: Pair) -> None:
    primary, replica = pair
    messages = [Message("work", queue="q", args=(index,)) for index in range(9)]
    await call(kit.broker.submit, messages.pop())  # the script loaded: one WAIT per attempt
    with stopped(replica) as resume:
        before = waits(primary)
        submits = [background(kit.broker.submit, message) for message in messages]
        # Redis 6.2 counts a WAIT as it starts: the third began after the second had failed.
        await until(lambda: waits(primary) >= before + 3, what="the batch sent again")
        assert not any(submit.done() for submit in submits)  # none acknowledged
        resume()
        await asyncio.wait_for(asyncio.gather(*submits), 30)
    claim = await call(kit.broker.claim, [ClaimSource("q")], 100, OWNER)
    assert sorted(got.args[0] for got in claim.messages) == list(range(9))


async def test_an_ack_short_of_replicas_is_sent_again_and_succeeds_once_they_are_back(
    kit: Kit, pair: Pair, caplog: pytest.LogCaptureFixture
) -> None:
    primary, replica = pair
    task = kit.task(status_tracker=kit.tracker, result_store=kit.store)
    hooks: list[str] = []
    task.on_success = lambda *args, **kwargs: hooks.append("on_success")
    await call(task.generate, args=(1, 2))
    await call(task.generate, args=(1, 2))
    [warm_up, message] = await kit.claim(2)
    assert await call(kit.broker.ack, warm_up)  # the script loaded: one WAIT per attempt
    plan = success_plan(task, message, 3)
    with caplog.at_level(logging.INFO), stopped(replica) as resume:
        before = waits(primary)
        finishing = background(run_plan if kit.kind == "sync" else run_plan_async, plan)
        await until(lambda: waits(primary) >= before + 2, what="the ack sent again")
        assert not finishing.done() and hooks == []  # not acknowledged while short
        resume()
        await asyncio.wait_for(finishing, 30)
    assert hooks == ["on_success"]
    assert (await call(kit.tracker.get, message)).value is TaskStatus.SUCCEEDED
    assert await call(kit.store.get, message) == 3
    assert not await call(kit.broker.exists, message)
    assert not await call(kit.broker.in_dlq, message)
    refused = [r for r in caplog.records if r.name == "alsek.core.future.outcome"]
    assert all(r.levelno < logging.WARNING for r in refused), caplog.text  # no "lease lost"


def first_streamed(kit: Kit, broker: Any) -> asyncio.Future[Message]:
    """The first message a consumer of queue q streams (a pool would start it), left coming:
    in a thread for the sync kit, as a task for the async one."""
    consumer_class = Consumer if kit.kind == "sync" else AsyncConsumer
    consumer: Any = consumer_class(broker, subset=["q"], lease_ttl=30_000, backoff=None)

    def take() -> Message:
        stream = consumer.stream()
        try:
            return next(iter(stream))  # type: ignore[no-any-return]
        finally:
            stream.close()

    async def take_async() -> Message:
        stream = consumer.stream()
        try:
            return await stream.__anext__()  # type: ignore[no-any-return]
        finally:
            await stream.aclose()

    if kit.kind == "sync":
        return asyncio.ensure_future(asyncio.to_thread(take))
    return asyncio.ensure_future(take_async())


async def test_a_claim_short_of_replicas_hands_out_nothing_until_they_have_its_lease(
    kit: Kit, pair: Pair
) -> None:
    primary, replica = pair
    message = Message("work", queue="q")
    await call(kit.broker.submit, message)
    with stopped(replica) as resume:
        before = waits(primary)
        streamed = first_streamed(kit, kit.broker)
        await until(lambda: waits(primary) >= before + 2, what="the claim sent again")
        # The first claim leased the message on the master, but no replica has that lease: a
        # failover now would undo it and the message would run twice. Nothing is handed out.
        assert not streamed.done()
        resume()
        got = await asyncio.wait_for(streamed, 30)
    assert got.uuid == message.uuid
    assert got.linked_lock is not None
    assert got.linked_lock["owner_id"].endswith(":1")  # the first claim's lease: one delivery
    assert (await call(kit.broker.claim, [ClaimSource("q")], 10, OWNER)).messages == []
    assert await call(kit.broker.ack, got)


# -- a repeat confirms the first write ------------------------------------------------------------


def _script_call(steps: Steps[Any], name: str) -> ScriptCall:
    """The call of script ``name`` in the first round trip an operation's ``steps`` make."""
    op = next(steps)
    assert isinstance(op, RoundTrip)
    [found] = [r for r in op.requests if isinstance(r, ScriptCall) and r.script.name == name]
    steps.close()
    return found


def _once(op: RoundTrip) -> Steps[list[Any]]:
    replies: list[Any] = yield op
    return replies


def _leasing_claim_call(broker: Broker, message: Message) -> ScriptCall:
    """A claim call that leases ``message``: a call leases only messages whose keys the
    consumer's previous reply named (peeked), so a message ahead of it is claimed first, with
    the replica still running; that claim's last reply names ``message``'s keys."""
    ahead = Message("work", queue="q")
    broker.submit(ahead)
    broker.submit(message)
    [claimed] = broker.claim([ClaimSource("q")], 1, OWNER).messages
    assert claimed.uuid == ahead.uuid
    claim = broker._claim_steps([ClaimSource("q")], 1, OWNER, 30_000, None, "claim-1")
    return _script_call(claim, "claim")


def sent_anew(url: str, broker: Broker, request: ScriptCall) -> list[Any]:
    """``request`` sent durably on a client of its own, whose connection never wrote: its WAIT
    covers only what that connection writes (Valkey 8, Redis 7; Redis 6.2 waits for all)."""
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        return run(_once(broker._write(request)), client)
    finally:
        client.close()


@pytest.mark.parametrize("operation", ["submit", "ack", "claim"])
def test_a_repeat_that_changes_nothing_is_acknowledged_only_once_the_first_replicated(
    replicated: Callable[..., Pair], namespace: str, operation: str
) -> None:
    primary, replica = replicated("valkey")
    backend = RedisBackend(primary.url, namespace=namespace)
    broker = Broker(backend, wait_replicas=1, wait_timeout_ms=SHORT_MS)
    message = Message("work", queue="q")
    if operation == "submit":
        request = _script_call(broker._submit_steps([message], DEFAULT_TTL, None), "submit")
    elif operation == "claim":
        request = _leasing_claim_call(broker, message)
    else:
        broker.submit(message)
        [claimed] = broker.claim([ClaimSource("q")], 1, OWNER).messages
        request = _script_call(broker._ack_steps(claimed, (), "ack"), "ack")
    body = f"{namespace}:queues:{{q}}:messages:{message.uuid}"
    with stopped(replica) as resume:
        for _ in range(2):  # the first, applied; then its repeat on another connection
            with pytest.raises(ReplicationShortfallError):
                sent_anew(primary.url, broker, request)
        resume()

        def acknowledged() -> Any:
            # The woken replica may need longer than SHORT_MS to catch up on a loaded machine:
            # the repeat is safe, so it is sent again until acknowledged.
            try:
                return sent_anew(primary.url, broker, request)
            except ReplicationShortfallError:
                return None

        [reply] = eventually(acknowledged, 30, "the repeat acknowledged")
    if operation == "claim":
        rows = split_wanted(reply).rest
        assert rows[2::6] == [message.uuid]  # the first claim's answer, from its cache
        assert replica.command("GET", f"lock:{body}") == rows[5]  # and its lease, replicated
        return
    assert (reply[0] == "OK") if operation == "submit" else (reply == "ALREADY")
    assert replica.command("EXISTS", body) == (1 if operation == "submit" else 0)
    backend.conn.close()
