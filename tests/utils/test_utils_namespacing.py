"""utils.namespacing: short key names and the name rules."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from alsek.utils.namespacing import (
    get_dlq_message_name,
    get_message_name,
    get_message_signature,
    get_messages_namespace,
    get_priority_namespace,
    get_priority_namespace_from_message,
    get_subnamespace,
    validate_name,
    validate_namespace,
)


@dataclass
class _Msg:
    queue: str = "q"
    task_name: str = "t"
    uuid: str = "u-1"
    retries: int = 2


def test_subnamespace_of_everything() -> None:
    assert get_subnamespace(None, None) == "queues"


def test_subnamespace_of_a_queue() -> None:
    assert get_subnamespace("q") == "queues:q"


def test_subnamespace_of_a_task() -> None:
    assert get_subnamespace("q", "t") == "queues:q:tasks:t"


def test_subnamespace_treats_empty_queue_like_none() -> None:
    assert get_subnamespace("") == "queues"


def test_subnamespace_task_without_queue_raises() -> None:
    with pytest.raises(ValueError, match="'t' was given without a queue"):
        get_subnamespace(None, "t")


def test_messages_namespace() -> None:
    assert get_messages_namespace(_Msg()) == "queues:q:tasks:t:messages"


def test_message_name() -> None:
    assert get_message_name(_Msg()) == "queues:q:tasks:t:messages:u-1"


def test_message_signature_includes_retries() -> None:
    assert get_message_signature(_Msg()) == "queues:q:tasks:t:messages:u-1:retry:2"


def test_dlq_message_name() -> None:
    assert get_dlq_message_name(_Msg()) == "dlq:queues:q:tasks:t:messages:u-1"


def test_priority_namespace() -> None:
    assert get_priority_namespace("queues:q") == "priority:queues:q"


def test_priority_namespace_from_message() -> None:
    assert get_priority_namespace_from_message(_Msg()) == "priority:queues:q:tasks:t"


@pytest.mark.parametrize("name", ["alsek_queue", "emails.send", "données", "a-b_c/d*[x]?"])
def test_validate_name_accepts_and_returns_ordinary_names(name: str) -> None:
    assert validate_name("queue", name) == name


def test_validate_name_rejects_colon_as_key_separator() -> None:
    with pytest.raises(ValueError) as info:
        validate_name("queue", "a:b")
    assert str(info.value) == "queue name 'a:b' contains ':' (the key separator)"


@pytest.mark.parametrize("char", ["{", "}"])
def test_validate_name_rejects_hash_tag_braces(char: str) -> None:
    with pytest.raises(ValueError) as info:
        validate_name("task", f"a{char}b")
    assert str(info.value) == (
        f"task name 'a{char}b' contains '{char}' (a Redis Cluster hash-tag brace)"
    )


@pytest.mark.parametrize("char", [" ", "\t", "\n", "\u00a0"])
def test_validate_name_rejects_whitespace(char: str) -> None:
    with pytest.raises(ValueError, match=r"^queue name .* contains .* \(whitespace\)$"):
        validate_name("queue", f"a{char}b")


@pytest.mark.parametrize("char", ["\x00", "\x1b", "\x7f", "\u200b"])
def test_validate_name_rejects_control_characters(char: str) -> None:
    with pytest.raises(ValueError) as info:
        validate_name("task", f"a{char}b")
    assert str(info.value) == f"task name {f'a{char}b'!r} contains {char!r} (a control character)"


@pytest.mark.parametrize("marker", ["<queue>", "<task>", "<uuid>"])
def test_validate_name_rejects_the_markers_of_key_templates(marker: str) -> None:
    with pytest.raises(ValueError, match=f"contains '{marker}'"):
        validate_name("queue", f"a{marker}b")


def test_validate_name_accepts_other_angle_brackets() -> None:
    assert validate_name("task", "<lambda>") == "<lambda>"


@pytest.mark.parametrize("namespace", ["app:v2", "lock", "lock-signal", "a<task>b", "a b", "{a}"])
def test_validate_namespace_rejects_what_would_reach_other_keys(namespace: str) -> None:
    with pytest.raises(ValueError, match="namespace"):
        validate_namespace(namespace)


def test_validate_name_rejects_empty_string() -> None:
    with pytest.raises(ValueError, match=r"^queue name must not be empty$"):
        validate_name("queue", "")


@pytest.mark.parametrize("value", [None, 3, b"q", ["q"]])
def test_validate_name_rejects_non_strings(value: object) -> None:
    with pytest.raises(ValueError, match=f"task name must be a str, got {type(value).__name__}"):
        validate_name("task", value)
