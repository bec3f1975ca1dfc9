"""utils.sorting.dict_sort."""

from __future__ import annotations

import pytest

from alsek.utils.sorting import dict_sort


def test_orders_by_keys_by_default() -> None:
    assert list(dict_sort({"b": 1, "c": 2, "a": 3})) == ["a", "b", "c"]


def test_orders_by_the_given_key_function() -> None:
    data = {"bb": 1, "a": 2, "ccc": 3}
    assert list(dict_sort(data, key=lambda k: -len(k))) == ["ccc", "bb", "a"]


def test_returns_a_new_dict_with_the_same_items() -> None:
    data = {"b": 1, "a": 2}
    result = dict_sort(data)
    assert result is not data
    assert result == data
    assert list(data) == ["b", "a"]


def test_non_dict_raises_type_error() -> None:
    with pytest.raises(TypeError, match="expects a dict, got list"):
        dict_sort([("a", 1)])  # type: ignore[arg-type]
