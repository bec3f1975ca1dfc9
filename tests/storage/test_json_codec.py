"""storage.json_codec: msgspec's codec and the standard library's read each other's text, value
for value, through a real Redis, and msgspec's errs exactly where ``json`` does."""

from __future__ import annotations

import json
import sys
import uuid
from collections import OrderedDict
from datetime import datetime
from enum import Enum
from typing import Any

import pytest
import redis

from alsek.core.message import Message
from alsek.storage.json_codec import STDLIB, JsonCodec, is_plain, msgspec_codec, pick_codec

pytest.importorskip("msgspec")


@pytest.fixture
def fast() -> JsonCodec:
    codec = msgspec_codec()
    assert codec is not None
    return codec


class Text(str):
    pass


class Colour(Enum):
    RED = 1


def same(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down (``1 == 1.0 == True`` is not enough)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and a != a:
        return b != b
    return bool(a == b) and repr(a) == repr(b)


VALUES = [
    "plain",
    'unicode: é ü 漢字 🚀 \u2028 \x00 \\ "',
    2**63 - 1,
    -(2**63),
    2**64,
    2**200,
    -(3**150),
    0.1,
    1e300,
    5e-324,
    -0.0,
    1.7976931348623157e308,
    True,
    None,
    [],
    {},
    (1, "two", (3.0, [None])),
    {"nested": {"deep": [{"k": [1, 2.5, {"x": "ÿ"}]}]}, "ints": [2**70, -1, 0]},
    {"z": 1, "a": 2, "m": 3},  # order kept
]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_each_codec_reads_the_others_text(value: Any, fast: JsonCodec) -> None:
    expected = json.loads(json.dumps(value))
    assert same(fast.loads(STDLIB.dumps(value)), expected)
    assert same(STDLIB.loads(fast.dumps(value)), expected)
    assert same(fast.loads(fast.dumps(value)), expected)


@pytest.mark.parametrize(("writer", "reader"), [("fast", "stdlib"), ("stdlib", "fast")])
def test_a_message_body_crosses_codecs_through_redis(
    writer: str, reader: str, fast: JsonCodec, redis_client: redis.Redis, namespace: str
) -> None:
    codecs = {"fast": fast, "stdlib": STDLIB}
    message = Message(
        "task",
        queue="q",
        args=("naïve café", 2**80, 0.30000000000000004),
        kwargs={"nested": {"list": [1, None, "✓"]}, "big": -(2**65)},
        metadata={"who": "Zoë"},
    )
    key = f"{namespace}:codec:{writer}"
    redis_client.set(key, codecs[writer].dumps(message.data))
    raw = redis_client.get(key)
    data = codecs[reader].loads(raw)
    assert same(data, json.loads(json.dumps(message.data)))
    assert Message(**data).data == Message(**json.loads(json.dumps(message.data))).data


@pytest.mark.parametrize(
    "value",
    [
        float("nan"),
        {"x": [float("inf")]},
        -float("inf"),
        {1: "int key"},
        {True: "bool key"},
        {"s": Text("a str subclass")},
        OrderedDict(a=1),
        "lone \ud800 surrogate",
    ],
    ids=["nan", "inf", "-inf", "int-key", "bool-key", "str-subclass", "ordered", "surrogate"],
)
def test_what_json_writes_differently_goes_to_json(value: Any, fast: JsonCodec) -> None:
    """msgspec would write ``null`` for NaN, or differ on keys: the fallback writes exactly what
    ``json.dumps`` writes, and reading it back gives what ``json.loads`` gives."""
    assert fast.dumps(value) == json.dumps(value)
    assert same(fast.loads(json.dumps(value)), json.loads(json.dumps(value)))


@pytest.mark.parametrize("value", [uuid.uuid4(), Colour.RED, datetime(2024, 1, 1), b"x", {1, 2}])
def test_values_json_refuses_are_refused(value: Any, fast: JsonCodec) -> None:
    """msgspec would encode these; the codec does not, so nothing changes with it installed."""
    with pytest.raises(TypeError):
        json.dumps(value)
    with pytest.raises(TypeError):
        fast.dumps({"arg": [value]})


@pytest.mark.parametrize("text", ["NaN", "[Infinity, -Infinity]", '"\\ud800"', "1e400"])
def test_text_only_json_reads_is_read(text: str, fast: JsonCodec) -> None:
    assert same(fast.loads(text), json.loads(text))


def test_is_plain_sees_through_containers() -> None:
    assert is_plain({"a": [1, (2, {"b": None})], "c": 1.5})
    assert not is_plain({"a": [1, (2, {"b": float("nan")})]})
    assert not is_plain([{"ok": 1}, {2: "int key"}])
    assert not is_plain([Text("x")])


def test_a_bad_codec_name_is_one_line() -> None:
    with pytest.raises(ValueError, match=r"ALSEK_JSON_CODEC must be one of auto, stdlib, msgspec"):
        pick_codec("orjsn")


def test_asking_for_msgspec_without_it_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "msgspec", None)  # import msgspec now raises ImportError
    with pytest.raises(ValueError, match=r"pip install 'alsek\[msgspec\]'"):
        pick_codec("msgspec")
    assert pick_codec("auto") is STDLIB


def test_auto_takes_msgspec_when_installed() -> None:
    assert pick_codec("auto").name == "msgspec"
    assert pick_codec("stdlib") is STDLIB
