"""utils.string.smart_join."""

from __future__ import annotations

import pytest

from alsek.utils.string import smart_join


def test_single_item_is_returned_as_is() -> None:
    assert smart_join(["a"]) == "a"


def test_items_are_joined_with_and_before_the_last() -> None:
    assert smart_join(["a", "b", "c"]) == "a, b and c"


def test_two_items() -> None:
    assert smart_join(["a", "b"]) == "a and b"


def test_at_most_limit_items_are_all_shown() -> None:
    assert smart_join(["a", "b", "c"], limit=3) == "a, b and c"


def test_more_than_limit_items_are_cut_with_ellipsis() -> None:
    assert smart_join(["a", "b", "c", "d"], limit=2) == "a, b..."


def test_custom_delimiter() -> None:
    assert smart_join(["a", "b", "c"], delimiter="; ") == "a; b and c"


def test_empty_list_raises_value_error() -> None:
    with pytest.raises(ValueError, match="at least one item"):
        smart_join([])


def test_limit_below_one_raises_value_error() -> None:
    with pytest.raises(ValueError, match="limit must be at least 1, got 0"):
        smart_join(["a", "b"], limit=0)


def test_non_string_item_raises_type_error() -> None:
    with pytest.raises(TypeError, match="must be strings, got 3"):
        smart_join(["a", 3])  # type: ignore[list-item]
