"""The tasks of the metrics tests, one set per pool kind (thread, process, async), each in a
queue of its own: ``ok`` succeeds, ``flaky`` fails its first attempt then succeeds, ``doomed``
always fails (``KeyError``, no retry), ``slow`` runs until revoked (or for a minute).

The Redis URL and namespace come from the environment (``opsenv``), which pool subprocesses
inherit.
"""

from __future__ import annotations

import asyncio
import os
import time

from opsenv import NAMESPACE_VAR, URL_VAR

from alsek import current_message, task
from alsek.core.broker import AsyncBroker, Broker
from alsek.storage.backends.redis.asyncio import AsyncRedisBackend
from alsek.storage.backends.redis.sync import RedisBackend

_url, _namespace = os.environ[URL_VAR], os.environ[NAMESPACE_VAR]
broker = Broker(RedisBackend(_url, namespace=_namespace))
async_broker = AsyncBroker(AsyncRedisBackend(_url, namespace=_namespace))
SLOW_SECONDS = 60.0


def _first_attempt() -> bool:
    message = current_message()
    return message is not None and message.retries == 0


def _sync_tasks(kind: str, mechanism: str) -> dict[str, object]:
    options = {"queue": kind, "mechanism": mechanism, "backoff": None}

    def ok(x: int) -> int:
        return x

    def flaky() -> str:
        if _first_attempt():
            raise RuntimeError("first attempt fails on purpose")
        return "second time lucky"

    def doomed() -> None:
        raise KeyError("doomed on purpose")

    def slow() -> None:
        deadline = time.monotonic() + SLOW_SECONDS
        while time.monotonic() < deadline:
            time.sleep(0.01)

    return {
        f"{kind}_ok": task(broker, name=f"{kind}_ok", max_retries=0, **options)(ok),
        f"{kind}_flaky": task(broker, name=f"{kind}_flaky", max_retries=1, **options)(flaky),
        f"{kind}_doomed": task(broker, name=f"{kind}_doomed", max_retries=0, **options)(doomed),
        f"{kind}_slow": task(broker, name=f"{kind}_slow", max_retries=0, **options)(slow),
    }


globals().update(_sync_tasks("thread", "thread"))
globals().update(_sync_tasks("process", "process"))

_async = {"queue": "async", "backoff": None}


@task(async_broker, name="async_ok", max_retries=0, **_async)
async def async_ok(x: int) -> int:
    return x


@task(async_broker, name="async_flaky", max_retries=1, **_async)
async def async_flaky() -> str:
    if _first_attempt():
        raise RuntimeError("first attempt fails on purpose")
    return "second time lucky"


@task(async_broker, name="async_doomed", max_retries=0, **_async)
async def async_doomed() -> None:
    raise KeyError("doomed on purpose")


@task(async_broker, name="async_slow", max_retries=0, **_async)
async def async_slow() -> None:
    await asyncio.sleep(SLOW_SECONDS)
