"""utils.aggregation.gather_init_params."""

from __future__ import annotations

from typing import Any

from alsek.utils.aggregation import gather_init_params


class Widget:
    def __init__(self, name: str, size: int = 1, *args: Any, **kwargs: Any) -> None:
        self.name = name
        self.size = size


def test_maps_each_init_parameter_to_its_attribute() -> None:
    assert gather_init_params(Widget("w", 3)) == {"name": "w", "size": 3}


def test_ignored_parameters_are_left_out() -> None:
    assert gather_init_params(Widget("w"), ignore=("size",)) == {"name": "w"}
