"""utils.helpers.dict_merge_update_into_origin."""

from __future__ import annotations

from typing import Any

import pytest

from alsek.utils.helpers import dict_merge_update_into_origin


def test_adds_new_keys() -> None:
    assert dict_merge_update_into_origin({"a": 1}, {"b": 2}) == {"a": 1, "b": 2}


def test_not_inplace_leaves_origin_and_its_nested_values_untouched() -> None:
    origin: dict[str, Any] = {"a": {"nested": [1]}}
    merged = dict_merge_update_into_origin(origin, {"b": 2})
    merged["a"]["nested"].append(2)
    assert origin == {"a": {"nested": [1]}}
    assert "b" not in origin


def test_inplace_changes_origin_and_returns_it() -> None:
    origin = {"a": 1}
    merged = dict_merge_update_into_origin(origin, {"b": 2}, inplace=True)
    assert merged is origin
    assert origin == {"a": 1, "b": 2}


def test_existing_key_raises_and_changes_nothing() -> None:
    origin = {"a": 1}
    with pytest.raises(KeyError, match="'a'"):
        dict_merge_update_into_origin(origin, {"a": 2, "b": 3}, inplace=True)
    assert origin == {"a": 1}


@pytest.mark.parametrize(("origin", "update", "label"), [([], {}, "origin"), ({}, None, "update")])
def test_non_dict_arguments_raise_type_error(origin: Any, update: Any, label: str) -> None:
    with pytest.raises(TypeError, match=f"{label} must be a dict"):
        dict_merge_update_into_origin(origin, update)
