"""Effect builders: the status and result writes that ride along with one broker call, and the
direct writes of a tracker or store that lives on another Redis."""

from __future__ import annotations

import pytest

from alsek.core.broker.effects import SetEffect
from alsek.core.status import TaskStatus
from alsek.exceptions import TaskFailedError
from alsek.utils.parsing import parse_exception
from tests.polling import call
from tests.task.conftest import Kit

# -- without a tracker or a store -------------------------------------------------------------


async def test_builders_return_nothing_without_tracker_or_store(kit: Kit) -> None:
    task = kit.task()
    message = await call(task.generate, args=(1, 2), submit=False)
    assert task.submit_effects(message) == []
    assert task.retry_effects(message) == []
    assert task.failure_effects(message) == []
    assert task.success_effects(message, 3) == []
    assert task.revocation_effects(message) == []
    assert task.running_claim_status() is None


async def test_builders_do_no_io(kit: Kit) -> None:
    task = kit.task(status_tracker=kit.tracker, result_store=kit.store)
    message = await call(task.generate, args=(1, 2), submit=False)
    keys = {effect.key for effect in task.success_effects(message, 3) if hasattr(effect, "key")}
    assert keys == {
        f"{kit.namespace}:{kit.store.get_storage_name(message)}",
        f"{kit.namespace}:{kit.tracker.get_storage_name(message)}",
        f"{kit.namespace}:{kit.tracker.get_index_name('q')}",
        f"{kit.namespace}:{kit.tracker.get_history_name(message)}",
    }
    assert not await call(kit.tracker.exists, message)
    assert not await call(kit.store.exists, message)


async def test_success_effects_fail_early_for_an_unserializable_result(kit: Kit) -> None:
    task = kit.task(result_store=kit.store)
    message = await call(task.generate, args=(1, 2), submit=False)
    with pytest.raises(TypeError, match="cannot be serialized"):
        task.success_effects(message, object())


# -- riding along with the broker -------------------------------------------------------------


async def test_running_claim_status_writes_running_with_the_claim(kit: Kit) -> None:
    task = kit.task(status_tracker=kit.tracker)
    message = await call(task.generate, args=(1, 2))
    status = task.running_claim_status()
    assert status is not None and status.tasks == frozenset({task.name})
    await kit.claim(status=status)
    assert (await call(kit.tracker.get, message)).value is TaskStatus.RUNNING


async def test_success_effects_store_the_result_and_succeeded_with_the_ack(kit: Kit) -> None:
    task = kit.task(status_tracker=kit.tracker, result_store=kit.store)
    message = await call(task.generate, args=(1, 2))
    [claimed] = await kit.claim()
    await call(kit.broker.ack, claimed, effects=task.success_effects(claimed, 3))
    assert (await call(kit.tracker.get, message)).value is TaskStatus.SUCCEEDED
    assert await call(kit.store.get, message) == 3


async def test_retry_effects_write_retrying_with_the_retry(kit: Kit) -> None:
    task = kit.task(status_tracker=kit.tracker)
    message = await call(task.generate, args=(1, 2))
    [claimed] = await kit.claim()
    await call(kit.broker.retry, claimed, effects=task.retry_effects(claimed))
    assert (await call(kit.tracker.get, message)).value is TaskStatus.RETRYING


async def test_failure_effects_record_the_failure_and_failed_with_the_fail(kit: Kit) -> None:
    task = kit.task(status_tracker=kit.tracker, result_store=kit.store)
    message = await call(task.generate, args=(1, 2))
    [claimed] = await kit.claim()
    claimed.update(exception_details=parse_exception(ZeroDivisionError("boom")).as_dict())
    await call(kit.broker.fail, claimed, effects=task.failure_effects(claimed))
    assert (await call(kit.tracker.get, message)).value is TaskStatus.FAILED
    with pytest.raises(TaskFailedError, match="ZeroDivisionError: boom"):
        await call(kit.store.get, message)


async def test_revocation_effects_match_the_failure_effects(kit: Kit) -> None:
    task = kit.task(status_tracker=kit.tracker, result_store=kit.store)
    message = await call(task.generate, args=(1, 2), submit=False)

    def keys_of(effects: list[object]) -> list[str]:
        return [effect.key for effect in effects if isinstance(effect, SetEffect)]

    assert keys_of(task.revocation_effects(message)) == keys_of(task.failure_effects(message))
    assert len(keys_of(task.failure_effects(message))) == 2  # failure record + status


async def test_write_unshared_is_a_no_op_when_everything_rides_along(kit: Kit) -> None:
    task = kit.task(status_tracker=kit.tracker, result_store=kit.store)
    message = await call(task.generate, args=(1, 2), submit=False)
    await call(task.write_unshared, message, TaskStatus.SUCCEEDED, 3)
    assert not await call(kit.tracker.exists, message)
    assert not await call(kit.store.exists, message)


# -- a tracker and a store on another Redis ---------------------------------------------------


@pytest.fixture
async def remote(kit: Kit, other_db_url: str):  # type: ignore[no-untyped-def]
    """A tracker and a store whose backend is another Redis database than the broker's."""
    backend = kit.new_backend(other_db_url)
    yield kit.new_tracker(backend), kit.new_store(backend)
    await kit.close(backend)


async def test_components_elsewhere_get_no_effects(kit: Kit, remote: tuple) -> None:
    tracker, store = remote
    task = kit.task(status_tracker=tracker, result_store=store)
    message = await call(task.generate, args=(1, 2), submit=False)
    assert task.submit_effects(message) == []
    assert task.success_effects(message, 3) == []
    assert task.failure_effects(message) == []
    assert task.running_claim_status() is None


async def test_generate_writes_submitted_directly_to_a_tracker_elsewhere(
    kit: Kit, remote: tuple
) -> None:
    tracker, _ = remote
    task = kit.task(status_tracker=tracker)
    message = await call(task.generate, args=(1, 2))
    assert (await call(tracker.get, message)).value is TaskStatus.SUBMITTED
    assert not await call(kit.tracker.exists, message)  # nothing on the broker's Redis


async def test_generate_many_writes_submitted_directly_to_a_tracker_elsewhere(
    kit: Kit, remote: tuple
) -> None:
    tracker, _ = remote
    task = kit.task(status_tracker=tracker)
    messages = await call(task.generate_many, args_list=[(1, 2), (3, 4)])
    for message in messages:
        assert (await call(tracker.get, message)).value is TaskStatus.SUBMITTED


async def test_write_unshared_writes_result_and_status_elsewhere(kit: Kit, remote: tuple) -> None:
    tracker, store = remote
    task = kit.task(status_tracker=tracker, result_store=store)
    message = await call(task.generate, args=(1, 2))
    [claimed] = await kit.claim()
    await call(kit.broker.ack, claimed, effects=task.success_effects(claimed, 3))
    await call(task.write_unshared, claimed, TaskStatus.SUCCEEDED, 3)
    assert (await call(tracker.get, message)).value is TaskStatus.SUCCEEDED
    assert await call(store.get, message) == 3


async def test_revoke_writes_failed_elsewhere(kit: Kit, remote: tuple) -> None:
    tracker, store = remote
    task = kit.task(status_tracker=tracker, result_store=store)
    message = await call(task.generate, args=(1, 2))
    await call(task.revoke, message)
    assert (await call(tracker.get, message)).value is TaskStatus.FAILED
    with pytest.raises(TaskFailedError, match="RevokedError"):
        await call(store.get, message)
    assert await call(kit.broker.in_dlq, message)


async def test_a_tracker_on_the_same_server_through_another_client_rides_along(kit: Kit) -> None:
    backend = kit.new_backend(kit.url)
    tracker = kit.new_tracker(backend)
    task = kit.task(status_tracker=tracker)
    message = await call(task.generate, args=(1, 2), submit=False)
    assert task.submit_effects(message) != []
    await kit.close(backend)


async def test_running_is_written_directly_to_a_tracker_elsewhere(kit: Kit, remote: tuple) -> None:
    tracker, _ = remote
    task = kit.task(status_tracker=tracker)
    message = await call(task.generate, args=(1, 2))
    [claimed] = await kit.claim(status=task.running_claim_status())
    assert (await call(tracker.get, message)).value is TaskStatus.SUBMITTED
    await call(task.write_unshared, claimed, TaskStatus.RUNNING)
    assert (await call(tracker.get, message)).value is TaskStatus.RUNNING
