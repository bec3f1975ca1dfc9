"""What a user's type checker sees of tasks. ``test_reveal_types.py`` runs mypy over this file;
it is never run itself.

At the end of a line, ``# T: <type>`` is the type mypy must reveal on it, and ``# E: <text>``
part of an error mypy must report on it. Any other revealed type or error fails the test.
"""

# ruff: noqa: F821, E501  (``reveal_type`` is mypy's builtin; revealed types run long)
# Unformatted, so that each expectation stays on the line it is about:
# fmt: off

from __future__ import annotations

from apscheduler.triggers.interval import IntervalTrigger

from alsek import AsyncBroker, AsyncTask, Broker, Message, Task, task
from alsek.core.task import AsyncTriggerTask, TriggerTask
from alsek.storage.backends.redis.asyncio import AsyncRedisBackend
from alsek.storage.backends.redis.sync import RedisBackend

broker = Broker(RedisBackend())
async_broker = AsyncBroker(AsyncRedisBackend())

# -- a plain function: Task[P, R] ------------------------------------------------------------


@task(broker, queue="math", max_retries=2)
def add(a: int, b: int) -> int:
    return a + b


reveal_type(add)  # T: alsek.core.task.sync.Task[[a: int, b: int], int]
reveal_type(add(1, 2))  # T: int
add("1", 2)  # E: Argument 1 to "__call__" of "BaseTask" has incompatible type "str"; expected "int"  [arg-type]
add(1)  # E: Missing positional argument "b" in call to "__call__" of "BaseTask"  [call-arg]

reveal_type(add.generate(args=(1, 2), priority=1, delay=500))  # T: alsek.core.message.Message
reveal_type(add.defer().generate(kwargs={"a": 1, "b": 2}))  # T: alsek.core.message.Message
reveal_type(add.generate_many(args_list=[(1, 2), (3, 4)]))  # T: list[alsek.core.message.Message]

# generate's parameters are SPEC's, typed:
add.generate(priority="high")  # E: Argument "priority" to "generate" of "Task" has incompatible type "str"; expected "int"  [arg-type]
add.generate(mechanism="fiber")  # E: Argument "mechanism" to "generate" of "Task" has incompatible type "Literal['fiber']"; expected "Literal['process', 'thread'] | None"  [arg-type]
add.generate(callback="add")  # E: Argument "callback" to "generate" of "Task" has incompatible type "str"; expected "Message | tuple[Message, ...] | None"  [arg-type]
add.generate(ready_at=1.5)  # E: Argument "ready_at" to "generate" of "Task" has incompatible type "float"; expected "int | None"  [arg-type]
reveal_type(add.generate(callback=(add.defer().generate(), add.defer().generate()), submit=False))  # T: alsek.core.message.Message

annotated: Task[[int, int], int] = add  # a task fits an annotation with its function's types
wrong: Task[[int, int], str] = add  # E: variable has type "Task[[int, int], str]")  [assignment]


# -- an async def: AsyncTask[P, R], R being the coroutine the function returns ---------------


@task(async_broker)
async def async_add(a: int, b: int) -> int:
    return a + b


reveal_type(async_add)  # T: alsek.core.task.asyncio.AsyncTask[[a: int, b: int], typing.Coroutine[Any, Any, int]]


async def produce() -> Message:
    reveal_type(await async_add(1, 2))  # T: int
    pending = reveal_type(async_add.generate(args=(1, 2)))  # T: typing.Coroutine[Any, Any, alsek.core.message.Message]
    reveal_type(await async_add.generate_many(args_list=[(1, 2)]))  # T: list[alsek.core.message.Message]
    await async_add.generate(delay="soon")  # E: Argument "delay" to "generate" of "AsyncTask" has incompatible type "str"; expected "int | None"  [arg-type]
    return await pending


# -- trigger tasks: their functions take no parameters -----------------------------------------


@task(broker, trigger=IntervalTrigger(hours=1))
def tick() -> int:
    return 1


@task(async_broker, trigger=IntervalTrigger(hours=1))
async def async_tick() -> None:
    return None


reveal_type(tick)  # T: alsek.core.task.sync.TriggerTask[int]
reveal_type(tick.generate(priority=2))  # T: alsek.core.message.Message
reveal_type(async_tick)  # T: alsek.core.task.asyncio.AsyncTriggerTask[typing.Coroutine[Any, Any, None]]
scheduling = reveal_type(async_tick.generate())  # T: typing.Coroutine[Any, Any, alsek.core.message.Message]
annotated_tick: TriggerTask[int] = tick
annotated_async_tick: AsyncTriggerTask[None] = async_tick  # E: Incompatible types in assignment (expression has type "AsyncTriggerTask[Coroutine[Any, Any, None]]", variable has type "AsyncTriggerTask[None]")  [assignment]


@task(broker, trigger=IntervalTrigger(hours=1))  # E: Argument 1 to "__call__" of "TriggerTaskDecorator" has incompatible type "Callable[[int], int]"
def needs_an_argument(a: int) -> int:
    return a


# -- base_task names the class, whatever the function ------------------------------------------


@task(async_broker, base_task=AsyncTask)
def on_the_loop(a: int) -> int:
    return a


reveal_type(on_the_loop)  # T: alsek.core.task.asyncio.AsyncTask[[a: int], int]
reveal_type(on_the_loop(1))  # T: int


class Audited(Task[[int], int]):
    """A user's task class."""


@task(broker, base_task=Audited)
def double(a: int) -> int:
    return 2 * a


reveal_type(double)  # T: alsek.core.task.sync.Task[[a: int], int]

# -- built by hand -----------------------------------------------------------------------------


def subtract(a: int, b: int) -> int:
    return a - b


reveal_type(Task(subtract, broker=broker))  # T: alsek.core.task.sync.Task[[a: int, b: int], int]
reveal_type(TriggerTask(tick.function, trigger=IntervalTrigger(hours=1), broker=broker))  # T: alsek.core.task.sync.TriggerTask[int]
