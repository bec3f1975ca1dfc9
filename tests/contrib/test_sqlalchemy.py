"""``submit_after_commit`` on a real database (SQLite through SQLAlchemy) and real Redis: a
message is submitted once the transaction commits, dropped when it (or its savepoint) rolls
back, never submitted twice, and not at all by a process killed before its commit."""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, Integer, String, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from alsek.contrib.sqlalchemy import submit_after_commit
from alsek.core.broker import AsyncBroker, Broker, keys
from alsek.core.message import Message
from alsek.core.status import StatusTracker, TaskStatus
from alsek.core.task import AsyncTask, Task
from alsek.storage.backends import AsyncRedisBackend, RedisBackend


class Base(DeclarativeBase):
    pass


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item: Mapped[str] = mapped_column(String(50))


def ship(order_id: int) -> str:
    return f"shipped {order_id}"


class CountingTask(Task):
    """Counts its submits (``on_submit``), to see that none happens twice."""

    submitted: list[str] = []

    def on_submit(self, message: Message) -> None:
        self.submitted.append(message.uuid)


def make_task(url: str, namespace: str) -> CountingTask:
    backend = RedisBackend(url, namespace=namespace)
    return CountingTask(ship, broker=Broker(backend), status_tracker=StatusTracker(backend))


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'shop.db'}")
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def shipping(redis_url: str, namespace: str) -> Iterator[CountingTask]:
    task = make_task(redis_url, namespace)
    task.submitted = []
    yield task
    task.broker.backend.conn.close()


def submitted(task: CountingTask, message: Message) -> bool:
    return bool(task.broker.exists(message))


def test_a_message_is_submitted_once_the_transaction_commits(
    engine: Engine, shipping: CountingTask
) -> None:
    with Session(engine) as session:
        with session.begin():
            order = Order(item="book")
            session.add(order)
            session.flush()
            message = shipping.generate(args=(order.id,), submit=False)
            submit_after_commit(session, message)
            assert not submitted(shipping, message)  # not before the commit
        assert submitted(shipping, message)
        assert shipping.status_tracker is not None
        assert shipping.status_tracker.get(message).value is TaskStatus.SUBMITTED
        session.commit()  # a later commit of the same session submits nothing again
    assert shipping.submitted == [message.uuid]


def test_a_rolled_back_transaction_submits_nothing(engine: Engine, shipping: CountingTask) -> None:
    with Session(engine) as session:
        message = shipping.generate(args=(1,), submit=False)
        session.add(Order(item="book"))
        submit_after_commit(session, [message])
        session.rollback()
        session.add(Order(item="pen"))
        session.commit()  # the next transaction does not bring it back
    assert not submitted(shipping, message) and shipping.submitted == []


def test_a_rolled_back_savepoint_drops_only_its_messages(
    engine: Engine, shipping: CountingTask
) -> None:
    outer, inner, released = (shipping.generate(args=(n,), submit=False) for n in (1, 2, 3))
    with Session(engine) as session, session.begin():
        submit_after_commit(session, outer)
        savepoint = session.begin_nested()
        submit_after_commit(session, inner)
        savepoint.rollback()
        with session.begin_nested():  # released: its message waits for the outer commit
            submit_after_commit(session, released)
        assert shipping.submitted == []
    assert sorted(shipping.submitted) == sorted([outer.uuid, released.uuid])
    assert not submitted(shipping, inner)


def test_a_session_without_a_transaction_begins_one(engine: Engine, shipping: CountingTask) -> None:
    with Session(engine) as session:
        message = shipping.generate(args=(1,), submit=False)
        submit_after_commit(session, message, ttl=60_000)
        assert session.in_transaction() and not submitted(shipping, message)
        session.commit()
    assert submitted(shipping, message)
    assert 0 < shipping.broker.backend.conn.pttl(_message_key(shipping, message)) <= 60_000


def _message_key(task: CountingTask, message: Message) -> str:
    return f"{task.broker.backend.namespace}:{keys.message_key(message.queue, message.uuid)}"


def test_messages_no_task_built_here_are_refused(
    engine: Engine, shipping: CountingTask, redis_url: str, namespace: str
) -> None:
    with Session(engine) as session:
        with pytest.raises(TypeError, match="was not built by a task's generate"):
            submit_after_commit(session, Message("ship", queue="q"))
        submitted_already = shipping.generate(args=(1,))
        with pytest.raises(TypeError, match="was not built by a task's generate"):
            submit_after_commit(session, submitted_already)
        broker = AsyncBroker(AsyncRedisBackend(redis_url, namespace=namespace))
        message = asyncio.run(AsyncTask(ship, broker=broker).generate(args=(1,), submit=False))
        with pytest.raises(TypeError, match=r"async task 'ship': .* use a sync task"):
            submit_after_commit(session, message)


# -- a process killed before its commit -----------------------------------------------------------


def _order_and_wait(url: str, namespace: str, database: str, uuid: str, ready: Any) -> None:
    """In a child: insert an order, hand its message over, then wait to be killed (or, with
    ``ready`` None, commit)."""
    engine = create_engine(database)
    task = make_task(url, namespace)
    with Session(engine) as session:
        session.begin()
        session.add(Order(id=7, item="book"))
        session.flush()
        submit_after_commit(session, task.generate(args=(7,), uuid=uuid, submit=False))
        if ready is None:
            session.commit()
            return
        ready.set()
        multiprocessing.Event().wait(60)  # killed here, before the commit


def test_a_process_killed_before_its_commit_submits_nothing(
    engine: Engine, shipping: CountingTask, redis_url: str, namespace: str
) -> None:
    context = multiprocessing.get_context()
    database = str(engine.url)
    ready = context.Event()
    doomed = context.Process(
        target=_order_and_wait, args=(redis_url, namespace, database, "order-7", ready)
    )
    doomed.start()
    assert ready.wait(30)
    doomed.kill()
    doomed.join(10)
    with Session(engine) as session:
        assert session.scalars(select(Order)).all() == []  # the transaction never committed
    killed = Message("ship", uuid="order-7")
    assert not submitted(shipping, killed)
    assert shipping.status_tracker is not None and not shipping.status_tracker.exists(killed)
    # The same work, committed this time, is submitted.
    survivor = context.Process(
        target=_order_and_wait, args=(redis_url, namespace, database, "order-7", None)
    )
    survivor.start()
    survivor.join(30)
    assert survivor.exitcode == 0
    assert submitted(shipping, killed)
