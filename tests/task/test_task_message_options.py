"""Dramatiq's per-message options on tasks and messages: how they are given, checked, carried
in a message, and combined into a retry decision (the pools' side is in
``tests/pools/test_pool_message_options.py``)."""

from __future__ import annotations

import logging
from typing import Any

import dill
import pytest

from alsek.core.future.outcome import run_plan_async, too_old_plan
from alsek.core.message import Message
from alsek.core.task import BaseTask, task
from alsek.core.task.message_options import METADATA_KEY
from alsek.exceptions import RateLimitExceeded, Retry, ValidationError
from tests.polling import call, eventually
from tests.task.conftest import Kit


def retry_value_errors(retries: int, exception: BaseException) -> bool:
    """An importable ``retry_when``."""
    return isinstance(exception, ValueError)


def broken_retry_when(retries: int, exception: BaseException) -> bool:
    raise RuntimeError("a bug in retry_when")


# -- giving them --------------------------------------------------------------------------------


async def test_generate_carries_overrides_in_the_metadata_beside_the_users(kit: Kit) -> None:
    message = await call(
        kit.task().generate,
        args=(1, 2),
        metadata={"who": "me"},
        max_age=5_000,
        throws=(KeyError, ValidationError),
        retry_when=retry_value_errors,
        ttl=60_000,  # still the broker's
    )
    assert message.metadata == {
        "who": "me",
        METADATA_KEY: {
            "max_age": 5_000,
            "throws": ["builtins:KeyError", "alsek.exceptions:ValidationError"],
            "retry_when": f"{__name__}:retry_value_errors",
        },
    }
    [claimed] = await kit.claim()
    assert claimed.metadata == message.metadata


async def test_a_message_without_overrides_carries_nothing(kit: Kit) -> None:
    message = await call(kit.task(max_age=5, throws=(KeyError,)).generate, args=(1, 2))
    assert message.metadata is None


async def test_generate_many_shares_the_overrides(kit: Kit) -> None:
    messages = await call(kit.task().generate_many, args_list=[(1, 2), (3, 4)], max_age=7)
    assert [m.metadata for m in messages] == [{METADATA_KEY: {"max_age": 7}}] * 2


@pytest.mark.parametrize(
    ("override", "error", "match"),
    [
        ({"max_age": 0}, ValueError, "max_age must be an int of ms > 0"),
        ({"max_age": "1s"}, ValueError, "max_age must be an int of ms > 0"),
        ({"throws": ("KeyError",)}, TypeError, "throws must hold exception classes"),
        ({"retry_when": 3}, TypeError, "retry_when must be a callable"),
        (
            {"retry_when": lambda r, e: True},
            ValueError,
            r"module-level .*\(task\(\.\.\., retry_when",
        ),
    ],
)
async def test_bad_overrides_are_refused_and_nothing_is_submitted(
    kit: Kit, override: dict[str, Any], error: type[Exception], match: str
) -> None:
    target = kit.task()
    with pytest.raises(error, match=match):
        await call(target.defer().generate, args=(1, 2), **override)
    assert not target.deferred  # the refused generate ended deferred mode
    assert await kit.claim() == []


def test_a_local_exception_class_cannot_travel_in_a_message(sync_kit: Kit) -> None:
    class Local(Exception):
        pass

    with pytest.raises(ValueError, match="throws given to generate"):
        sync_kit.task().generate(args=(1, 2), throws=(Local,))


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"max_age": -1}, ValueError, "max_age must be"),
        ({"throws": [1]}, TypeError, "throws must hold exception classes"),
        ({"retry_when": "never"}, TypeError, "retry_when must be a callable"),
    ],
)
def test_bad_task_options_are_refused(
    sync_kit: Kit, options: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        sync_kit.task(**options)
    with pytest.raises(error, match=match):
        task(sync_kit.broker, **options)


def test_a_task_keeps_its_options_across_processes(sync_kit: Kit) -> None:
    built = sync_kit.task(max_age=10, throws=KeyError, retry_when=lambda r, e: r < 2)
    assert built.throws == (KeyError,)
    rebuilt = BaseTask.deserialize(dill.loads(dill.dumps(built.serialize())))
    assert (rebuilt.max_age, rebuilt.throws) == (10, (KeyError,))
    assert rebuilt.retry_when is not None and rebuilt.retry_when(1, KeyError()) is True


# -- combining them -------------------------------------------------------------------------------


def message(**fields: Any) -> Message:
    return Message("add", queue="q", **fields)


def test_a_messages_overrides_win_over_the_tasks(sync_kit: Kit) -> None:
    built = sync_kit.task(max_age=10, throws=(KeyError,))
    carried = built.generate(args=(1, 2), submit=False, max_age=99, throws=(ValueError,))
    options = built.options_for(carried)
    assert (options.max_age, options.throws, options.retry_when) == (99, (ValueError,), None)
    assert built.options_for(message()).max_age == 10


def test_an_override_that_cannot_be_imported_falls_back_to_the_task(
    sync_kit: Kit, caplog: pytest.LogCaptureFixture
) -> None:
    built = sync_kit.task(retry_when=retry_value_errors)
    carried = message(metadata={METADATA_KEY: {"retry_when": "nowhere:at_all"}})
    with caplog.at_level(logging.ERROR):
        assert built.options_for(carried).retry_when is retry_value_errors
    assert "'nowhere:at_all' cannot be imported here" in caplog.text


def test_age_beyond_max_is_measured_from_the_submit(sync_kit: Kit) -> None:
    built = sync_kit.task(max_age=100)
    old = message(created_at=1_000, updated_at=1_000)
    assert built.age_beyond_max(old, now=1_100) is None
    assert built.age_beyond_max(old, now=1_101) == 101
    assert sync_kit.task().age_beyond_max(old, now=10**12) is None  # no max_age


def test_the_retry_verdict(sync_kit: Kit, caplog: pytest.LogCaptureFixture) -> None:
    plain = sync_kit.task(max_retries=1)
    assert plain.retry_verdict(message(retries=0), ValueError())
    assert not plain.retry_verdict(message(retries=1), ValueError())
    # RateLimitExceeded: always, whatever the count; Retry: within max_retries.
    assert plain.retry_verdict(message(retries=9), RateLimitExceeded())
    assert plain.retry_verdict(message(retries=0), Retry())
    assert not plain.retry_verdict(message(retries=1), Retry())
    # throws: never; retry_when: instead of max_retries, but not for Retry.
    expected = sync_kit.task(max_retries=5, throws=(KeyError,))
    assert not expected.retry_verdict(message(), KeyError())
    decided = sync_kit.task(max_retries=0, retry_when=retry_value_errors)
    assert decided.retry_verdict(message(retries=7), ValueError())
    assert not decided.retry_verdict(message(retries=0), KeyError())
    assert not decided.retry_verdict(message(retries=0), Retry())
    with caplog.at_level(logging.ERROR):
        broken = sync_kit.task(max_retries=1, retry_when=broken_retry_when)
        assert broken.retry_verdict(message(retries=0), ValueError())
    assert "retry_when raised RuntimeError" in caplog.text


def test_do_retry_applies_the_verdict_unless_revoked(sync_kit: Kit) -> None:
    built = sync_kit.task(max_retries=0, retry_when=retry_value_errors)
    submitted = built.generate(args=(1, 2), delay=60_000)
    assert built.do_retry(submitted, ValueError())
    built.revoke(submitted)
    assert not built.do_retry(submitted, ValueError())


async def test_a_message_requeued_after_its_max_age_starts_a_new_age(kit: Kit) -> None:
    aging = kit.task(max_age=5)
    message = await call(aging.generate, args=(1, 2))
    eventually(lambda: aging.age_beyond_max(message) is not None, what="too old")
    [claimed] = await kit.claim()
    await run_plan_async(too_old_plan(aging, claimed))
    [dead] = await call(kit.broker.dlq_list, "q")
    assert dead.reason.startswith("max_age")
    await call(aging.requeue_from_dlq, dead.message)
    [again] = await kit.claim()
    assert again.uuid == message.uuid and again.created_at > message.created_at
    assert aging.age_beyond_max(again, now=again.created_at + 5) is None
