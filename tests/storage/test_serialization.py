"""storage.serialization: JSON (the default) and dill-based binary serializers."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from alsek.storage.json_codec import STDLIB
from alsek.storage.serialization import BinarySerializer, JsonSerializer, Serializer


class Point:
    def __init__(self, x: int) -> None:
        self.x = x


@pytest.mark.parametrize("value", [1, "text", [1, 2], {"a": {"b": None}}, True, None, 1.5])
def test_json_round_trips_json_values(value: Any) -> None:
    assert JsonSerializer.reverse(JsonSerializer.forward(value)) == value


def test_json_forward_is_json_text() -> None:
    """Exactly ``json.dumps``'s text with the standard codec; msgspec's leaves out the spaces."""
    assert json.loads(JsonSerializer.forward({"a": [1, None]})) == {"a": [1, None]}
    assert STDLIB.dumps({"a": [1, None]}) == '{"a": [1, null]}'


def test_json_tuples_come_back_as_lists() -> None:
    assert JsonSerializer.reverse(JsonSerializer.forward((1, 2))) == [1, 2]


def test_json_dict_keys_come_back_as_strings() -> None:
    assert JsonSerializer.reverse(JsonSerializer.forward({1: "a"})) == {"1": "a"}


def test_json_reverse_passes_none_through() -> None:
    assert JsonSerializer.reverse(None) is None


@pytest.mark.parametrize("value", [datetime(2024, 1, 1), b"bytes", Point(1), {1, 2}])
def test_json_forward_rejects_non_json_values_with_type_error(value: Any) -> None:
    with pytest.raises(TypeError, match="JsonSerializer cannot encode"):
        JsonSerializer.forward(value)


def test_json_forward_rejects_circular_values_with_type_error() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(TypeError, match="JsonSerializer cannot encode"):
        JsonSerializer.forward(loop)


def test_binary_round_trips_arbitrary_objects() -> None:
    restored = BinarySerializer.reverse(BinarySerializer.forward({"p": Point(3), "t": (1, 2)}))
    assert restored["p"].x == 3
    assert restored["t"] == (1, 2)


def test_binary_round_trips_lambdas() -> None:
    function = BinarySerializer.reverse(BinarySerializer.forward(lambda a: a * 2))
    assert function(4) == 8


def test_binary_forward_is_a_base64_string() -> None:
    encoded = BinarySerializer.forward([1])
    assert isinstance(encoded, str)
    assert encoded.isascii()


def test_binary_reverse_passes_none_through() -> None:
    assert BinarySerializer.reverse(None) is None


def test_binary_forward_rejects_unpicklable_values_with_type_error() -> None:
    generator = (i for i in range(3))
    with pytest.raises(TypeError, match="BinarySerializer cannot encode"):
        BinarySerializer.forward(generator)


def test_repr_is_the_class_call() -> None:
    assert repr(JsonSerializer()) == "JsonSerializer()"
    assert repr(BinarySerializer()) == "BinarySerializer()"


def test_serializers_are_equal_by_type() -> None:
    assert JsonSerializer() == JsonSerializer()
    assert JsonSerializer() != BinarySerializer()
    assert hash(JsonSerializer()) == hash(JsonSerializer())


def test_serializer_base_is_abstract() -> None:
    with pytest.raises(TypeError):
        Serializer()  # type: ignore[abstract]
