"""core.message.Message: normalisation, validation, persisted form and state changes."""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import pytest

from alsek.core.backoff import ConstantBackoff, ExponentialBackoff, LinearBackoff
from alsek.core.message import Message
from alsek.defaults import DEFAULT_QUEUE, DEFAULT_TASK_TIMEOUT
from alsek.storage.serialization import BinarySerializer, JsonSerializer
from alsek.utils.parsing import ExceptionDetails
from alsek.utils.temporal import from_timestamp_ms, utcnow_timestamp_ms

DATA_KEYS = [
    "task_name",
    "queue",
    "args",
    "kwargs",
    "priority",
    "metadata",
    "exception_details",
    "result_ttl",
    "uuid",
    "progenitor_uuid",
    "retries",
    "timeout",
    "created_at",
    "updated_at",
    "delay",
    "previous_result",
    "previous_message_uuid",
    "callback_message_data",
    "backoff_settings",
    "mechanism",
    "run_in_main_thread",
    "ready_at",
    "linked_lock",
]
UUID1 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-1[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$")
NO_BACKOFF = ConstantBackoff(constant=0, floor=0, ceiling=0).settings


@dataclass
class FakeLock:
    name: str = "queues:q:tasks:t:messages:u:retry:0"
    owner_id: str = "lock:host:process:1"


def full_message(**overrides: Any) -> Message:
    """A message with every field set to something non-default."""
    fields: dict[str, Any] = {
        "task_name": "task",
        "queue": "queue",
        "args": [1, "two"],
        "kwargs": {"k": [3]},
        "priority": 4,
        "metadata": {"m": 1},
        "exception_details": {"name": "KeyError", "text": "'x'", "traceback": "tb"},
        "result_ttl": 1000,
        "uuid": "fixed-uuid",
        "progenitor_uuid": "root-uuid",
        "retries": 1,
        "timeout": 5000,
        "created_at": 1_000,
        "updated_at": 2_000,
        "delay": 10,
        "previous_result": {"r": 1},
        "previous_message_uuid": "prev-uuid",
        "callback_message_data": {"uuid": "cb-1", "callback_message_data": None},
        "backoff_settings": LinearBackoff(factor=7, floor=0).settings,
        "mechanism": "process",
        "run_in_main_thread": True,
        "ready_at": 3_000,
        "linked_lock": {"name": "lock-name", "owner_id": "owner"},
    }
    fields.update(overrides)
    return Message(**fields)


# --- construction and normalisation ---------------------------------------------------------


def test_defaults_are_normalised() -> None:
    before = utcnow_timestamp_ms()
    message = Message("task")
    assert message.queue == DEFAULT_QUEUE
    assert message.args == ()
    assert message.kwargs == {}
    assert message.priority == 0
    assert message.metadata is None
    assert message.exception_details is None
    assert message.result_ttl is None
    assert message.retries == 0
    assert message.timeout == DEFAULT_TASK_TIMEOUT
    assert message.delay == 0
    assert message.backoff_settings == ExponentialBackoff().settings
    assert message.mechanism == "thread"
    assert message.run_in_main_thread is False
    assert message.linked_lock is None
    assert message.ephemeral_state == {}
    assert before <= message.created_at == message.updated_at <= utcnow_timestamp_ms()


def test_new_uuid_is_a_uuid1_string_and_unique() -> None:
    first, second = Message("task"), Message("task")
    assert UUID1.match(first.uuid)
    assert first.uuid != second.uuid


def test_new_uuids_from_many_threads_are_unique() -> None:
    with ThreadPoolExecutor(8) as pool:
        uuids = list(pool.map(lambda _: Message("task").uuid, range(20_000)))
    assert len(set(uuids)) == len(uuids)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_makes_uuids_with_a_node_of_its_own() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report one uuid's node, and leave at once
        os.write(write, str(UUID(Message("task").uuid).node).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child_node = int(os.read(read, 64))
    os.close(read)
    assert child_node != UUID(Message("task").uuid).node


def test_given_uuid_is_kept() -> None:
    assert Message("task", uuid="abc").uuid == "abc"


def test_empty_queue_means_default_queue() -> None:
    assert Message("task", queue="").queue == DEFAULT_QUEUE


def test_args_list_becomes_tuple() -> None:
    assert Message("task", args=[1, 2]).args == (1, 2)


def test_none_delay_and_run_in_main_thread_are_normalised() -> None:
    message = Message("task", delay=None, run_in_main_thread=None)
    assert message.delay == 0
    assert message.run_in_main_thread is False


def test_exception_details_dict_is_read_as_exception_details() -> None:
    message = Message("task", exception_details={"name": "KeyError", "text": "x"})
    assert message.exception_details == ExceptionDetails(name="KeyError", text="x")


def test_exception_details_object_is_kept() -> None:
    details = ExceptionDetails(name="ValueError", text="bad", traceback="tb")
    assert Message("task", exception_details=details).exception_details == details


def test_ephemeral_state_is_not_shared_between_messages() -> None:
    first, second = Message("task"), Message("task")
    first.add_to_ephemeral_state(a=1)
    assert second.ephemeral_state == {}


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"task_name": "a:b"}, ValueError, r"task name 'a:b' contains ':'"),
        ({"task_name": ""}, ValueError, r"task name must not be empty"),
        ({"task_name": 5}, ValueError, r"task name must be a str, got int 5"),
        ({"queue": "a b"}, ValueError, r"queue name 'a b' contains ' '"),
        ({"queue": "{q}"}, ValueError, r"queue name '\{q\}' contains '\{'"),
        ({"priority": -1}, ValueError, r"priority must be >= 0, got -1"),
        ({"priority": True}, TypeError, r"priority must be an int, got bool True"),
        ({"priority": 1.0}, TypeError, r"priority must be an int, got float 1.0"),
        ({"priority": "1"}, TypeError, r"priority must be an int, got str '1'"),
        ({"delay": -5}, ValueError, r"delay must be >= 0, got -5"),
        ({"delay": 1.5}, TypeError, r"delay must be an int"),
        ({"timeout": 0}, ValueError, r"timeout must be >= 1, got 0"),
        ({"timeout": None}, TypeError, r"timeout must be an int, got NoneType"),
        ({"retries": -1}, ValueError, r"retries must be >= 0, got -1"),
        ({"result_ttl": 0}, ValueError, r"result_ttl must be >= 1, got 0"),
        ({"result_ttl": "1"}, TypeError, r"result_ttl must be an int"),
        ({"mechanism": "fork"}, ValueError, r"mechanism must be one of .*got 'fork'"),
        ({"args": "ab"}, TypeError, r"args must be a list or tuple, got str"),
        ({"args": {1: 2}}, TypeError, r"args must be a list or tuple, got dict"),
        ({"kwargs": [1]}, TypeError, r"kwargs must be a dict or None, got list"),
        ({"metadata": ["m"]}, TypeError, r"metadata must be a dict or None, got list"),
        ({"ready_at": "soon"}, TypeError, r"ready_at must be an int, got str 'soon'"),
        ({"ready_at": -1}, ValueError, r"ready_at must be >= 0"),
        ({"uuid": ""}, ValueError, r"Message uuid must not be empty"),
        ({"uuid": 7}, ValueError, r"Message uuid must be a str, got int 7"),
        ({"uuid": "P:descendants:X"}, ValueError, r"uuid 'P:descendants:X' contains ':'"),
        ({"uuid": "a b"}, ValueError, r"uuid 'a b' contains ' ' \(whitespace\)"),
        ({"uuid": "{q}"}, ValueError, r"uuid '\{q\}' contains '\{'"),
        ({"progenitor_uuid": 7}, ValueError, r"progenitor_uuid must be a str, got int"),
        ({"progenitor_uuid": "p:1"}, ValueError, r"progenitor_uuid 'p:1' contains ':'"),
        ({"previous_message_uuid": 7}, ValueError, r"previous_message_uuid must be a str"),
        ({"callback_message_data": "x"}, TypeError, r"callback_message_data must be a dict"),
        ({"exception_details": 5}, TypeError, r"exception_details must be an ExceptionDetails"),
        ({"exception_details": {"text": "x"}}, ValueError, r"needs a 'name'.*\['text'\]"),
        ({"exception_details": {"name": "E", "x": 1}}, ValueError, r"got keys \['name', 'x'\]"),
        ({"backoff_settings": {"algorithm": "Nope", "parameters": {}}}, ValueError, r"'Nope'"),
        ({"backoff_settings": "fast"}, ValueError, r"Backoff settings must look like"),
        ({"linked_lock": {"name": "n"}}, ValueError, r"linked_lock must be .*got \{'name': 'n'\}"),
        ({"linked_lock": "lock"}, ValueError, r"linked_lock must be"),
    ],
)
def test_invalid_field_raises_naming_field_and_value(
    kwargs: dict[str, Any], error: type[Exception], pattern: str
) -> None:
    fields = {"task_name": "task", **kwargs}
    with pytest.raises(error, match=pattern):
        Message(**fields)


def test_only_created_at_is_corrupt_time_data() -> None:
    with pytest.raises(ValueError, match="Time data is corrupt"):
        Message("task", created_at=1)


def test_only_updated_at_is_corrupt_time_data() -> None:
    with pytest.raises(ValueError, match="Time data is corrupt"):
        Message("task", updated_at=1)


def test_non_int_timestamp_raises_naming_it() -> None:
    with pytest.raises(TypeError, match="created_at must be an int, got str 'x'"):
        Message("task", created_at="x", updated_at=1)  # type: ignore[arg-type]


def test_both_timestamps_given_are_kept() -> None:
    message = Message("task", created_at=5, updated_at=9)
    assert (message.created_at, message.updated_at) == (5, 9)


# --- persisted form --------------------------------------------------------------------------


def test_data_has_exactly_the_spec_keys_in_order() -> None:
    assert list(Message("task").data) == DATA_KEYS


def test_data_holds_exception_details_as_a_dict() -> None:
    data = full_message().data
    assert data["exception_details"] == {"name": "KeyError", "text": "'x'", "traceback": "tb"}


def test_data_holds_the_computed_ready_at() -> None:
    message = Message("task", created_at=1_000, updated_at=1_000, delay=500)
    assert message.data["ready_at"] == 1_500


def test_data_round_trips_through_json() -> None:
    message = full_message()
    rebuilt = Message(**JsonSerializer.reverse(JsonSerializer.forward(message.data)))
    assert rebuilt.data == message.data
    assert rebuilt.args == (1, "two")


def test_default_message_round_trips_through_json() -> None:
    message = Message("task", args=(1,))
    rebuilt = Message(**JsonSerializer.reverse(JsonSerializer.forward(message.data)))
    assert rebuilt.data == message.data


def test_data_round_trips_through_binary_serializer() -> None:
    message = full_message()
    rebuilt = Message(**BinarySerializer.reverse(BinarySerializer.forward(message.data)))
    assert rebuilt.data == message.data


def test_repr_shows_timestamps_as_datetimes() -> None:
    message = Message("task", created_at=1_700_000_000_000, updated_at=1_700_000_000_000)
    text = repr(message)
    assert text.startswith("Message(\n    task_name='task',")
    assert f"created_at='{from_timestamp_ms(1_700_000_000_000)}'" in text
    assert "ready_at=1700000000000" in text


def test_summary_is_one_line() -> None:
    message = Message("task", queue="q", uuid="u")
    assert message.summary == "Message(uuid='u', queue='q', task='task')"


# --- timing ----------------------------------------------------------------------------------


def test_backoff_duration_follows_settings_and_retries() -> None:
    assert Message("task").get_backoff_duration() == 0
    assert Message("task", retries=1).get_backoff_duration() == 60_000
    settings = ConstantBackoff(constant=5, floor=0, zero_override=False).settings
    assert Message("task", backoff_settings=settings).get_backoff_duration() == 5


def test_ready_at_is_created_plus_delay_plus_backoff() -> None:
    message = Message("task", created_at=1_000, updated_at=1_000, delay=200, retries=1)
    assert message.ready_at == 1_000 + 200 + 60_000


def test_explicit_ready_at_wins() -> None:
    assert Message("task", ready_at=42, delay=1_000).ready_at == 42


def test_ready_at_setter_sets_and_none_restores_derivation() -> None:
    message = Message("task", created_at=1_000, updated_at=1_000)
    message.ready_at = 5
    assert message.ready_at == 5
    message.ready_at = None
    assert message.ready_at == 1_000


def test_ready_at_setter_rejects_bad_values() -> None:
    with pytest.raises(TypeError, match="ready_at must be an int"):
        Message("task").ready_at = "later"  # type: ignore[assignment]


def test_message_without_delay_is_ready() -> None:
    message = Message("task")
    assert message.ready
    assert message.ttr == 0


def test_delayed_message_is_not_ready_and_reports_time_to_ready() -> None:
    message = Message("task", delay=60_000)
    assert not message.ready
    assert 59_000 < message.ttr <= 60_000


def test_descendant_uuids_none_without_callbacks() -> None:
    assert Message("task").descendant_uuids is None


def test_descendant_uuids_walk_the_nested_chain() -> None:
    chain = {"uuid": "a", "callback_message_data": {"uuid": "b", "callback_message_data": None}}
    assert Message("task", callback_message_data=chain).descendant_uuids == ["a", "b"]


# --- locks -----------------------------------------------------------------------------------


def test_link_lock_records_name_and_owner_and_returns_self() -> None:
    message = Message("task")
    assert message.link_lock(FakeLock()) is message
    assert message.linked_lock == {
        "name": "queues:q:tasks:t:messages:u:retry:0",
        "owner_id": "lock:host:process:1",
    }


def test_link_lock_twice_raises_attribute_error() -> None:
    message = Message("task").link_lock(FakeLock())
    with pytest.raises(AttributeError, match="already linked to lock"):
        message.link_lock(FakeLock(name="other"))
    assert message.linked_lock is not None
    assert message.linked_lock["name"] != "other"


def test_link_lock_override_replaces_the_lock() -> None:
    message = Message("task").link_lock(FakeLock())
    message.link_lock(FakeLock(name="other"), override=True)
    assert message.linked_lock == {"name": "other", "owner_id": "lock:host:process:1"}


# --- copies and updates ----------------------------------------------------------------------


def test_clone_is_an_independent_equal_copy() -> None:
    message = full_message()
    message.add_to_ephemeral_state(x=1)
    clone = message.clone()
    assert clone is not message
    assert clone.data == message.data
    clone.kwargs["k"].append(4)
    assert message.kwargs == {"k": [3]}
    assert clone.ephemeral_state == {}


def test_update_changes_fields_and_returns_self() -> None:
    message = Message("task")
    assert message.update(priority=3, queue="other") is message
    assert (message.priority, message.queue) == (3, "other")


def test_update_unknown_key_raises_key_error_naming_it() -> None:
    with pytest.raises(KeyError, match=r"Unsupported key.*'colour'"):
        Message("task").update(colour="red")


def test_update_with_an_invalid_value_changes_nothing() -> None:
    message = Message("task")
    with pytest.raises(ValueError, match="priority must be >= 0"):
        message.update(queue="other", priority=-1)
    assert message.queue == DEFAULT_QUEUE
    assert message.priority == 0


def test_update_ready_at_uses_the_setter() -> None:
    message = Message("task")
    message.update(ready_at=123)
    assert message.ready_at == 123
    assert message.data["ready_at"] == 123


def test_update_exception_details_from_dict() -> None:
    message = Message("task").update(exception_details={"name": "KeyError", "text": "k"})
    assert message.exception_details == ExceptionDetails(name="KeyError", text="k")


def test_exception_details_setter_accepts_details_and_none() -> None:
    message = Message("task")
    message.exception_details = ExceptionDetails(name="E")
    assert message.exception_details == ExceptionDetails(name="E")
    message.exception_details = None
    assert message.exception_details is None


def test_exception_details_setter_rejects_other_types() -> None:
    with pytest.raises(TypeError, match="exception_details must be"):
        Message("task").exception_details = "boom"  # type: ignore[assignment]


def test_update_of_one_timestamp_to_none_is_corrupt() -> None:
    message = Message("task")
    with pytest.raises(ValueError, match="Time data is corrupt"):
        message.update(created_at=None)
    assert message.created_at is not None


def test_update_of_timestamps_keeps_the_other_one() -> None:
    message = Message("task", created_at=1, updated_at=2)
    message.update(updated_at=10)
    assert (message.created_at, message.updated_at) == (1, 10)


def test_add_to_metadata_starts_from_none_and_returns_self() -> None:
    message = Message("task")
    assert message.add_to_metadata(a=1) is message
    assert message.metadata == {"a": 1}


def test_add_to_metadata_does_not_change_the_callers_dict() -> None:
    given = {"a": 1}
    message = Message("task", metadata=given)
    message.add_to_metadata(b=2)
    assert message.metadata == {"a": 1, "b": 2}
    assert given == {"a": 1}


def test_add_to_metadata_refuses_to_overwrite() -> None:
    message = Message("task", metadata={"a": 1})
    with pytest.raises(KeyError, match="'a'"):
        message.add_to_metadata(a=2)
    assert message.metadata == {"a": 1}


def test_add_to_metadata_needs_data() -> None:
    with pytest.raises(ValueError, match="at least one key"):
        Message("task").add_to_metadata()


def test_add_to_ephemeral_state_adds_and_refuses_overwrite() -> None:
    message = Message("task")
    assert message.add_to_ephemeral_state(a=1) is message
    with pytest.raises(KeyError, match="'a'"):
        message.add_to_ephemeral_state(a=2)
    assert message.ephemeral_state == {"a": 1}


def test_add_to_ephemeral_state_needs_data() -> None:
    with pytest.raises(ValueError, match="at least one key"):
        Message("task").add_to_ephemeral_state()


def test_ephemeral_state_is_never_persisted() -> None:
    message = Message("task").add_to_ephemeral_state(secret=1)
    assert "secret" not in repr(message.data)
    assert "ephemeral_state" not in message.data


def test_duplicate_gets_a_new_uuid_and_no_lock() -> None:
    message = full_message()
    duplicate = message.duplicate()
    assert UUID1.match(duplicate.uuid)
    assert duplicate.linked_lock is None
    assert message.linked_lock == {"name": "lock-name", "owner_id": "owner"}
    expected = {**message.data, "uuid": duplicate.uuid, "linked_lock": None}
    assert duplicate.data == expected


def test_duplicate_with_a_given_uuid() -> None:
    assert Message("task").duplicate(uuid="mine").uuid == "mine"


# --- retries ---------------------------------------------------------------------------------


def test_increment_retries_counts_and_touches_updated_at() -> None:
    message = Message("task", created_at=1, updated_at=1, backoff_settings=NO_BACKOFF)
    before = utcnow_timestamp_ms()
    assert message.increment_retries() is message
    assert message.retries == 1
    assert message.created_at == 1
    assert before <= message.updated_at <= utcnow_timestamp_ms()


def test_increment_retries_backs_off_from_the_time_of_failure() -> None:
    settings = ConstantBackoff(constant=30_000, floor=0).settings
    message = Message("task", created_at=1, updated_at=1, backoff_settings=settings)
    message.increment_retries()
    assert message.ready_at == message.updated_at + 30_000
    assert not message.ready


def test_increment_retries_moves_a_persisted_ready_at() -> None:
    settings = ConstantBackoff(constant=30_000, floor=0).settings
    stored = JsonSerializer.forward(Message("task", backoff_settings=settings).data)
    loaded = Message(**JsonSerializer.reverse(stored))
    assert loaded.ready
    loaded.increment_retries()
    assert not loaded.ready
    reloaded = Message(**JsonSerializer.reverse(JsonSerializer.forward(loaded.data)))
    assert reloaded.ready_at == loaded.ready_at
    assert reloaded.retries == 1
