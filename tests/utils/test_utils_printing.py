"""utils.printing.auto_repr."""

from __future__ import annotations

from datetime import datetime

from alsek.utils.printing import auto_repr


class Thing:
    pass


def test_one_line_with_quoted_strings() -> None:
    assert auto_repr(Thing(), a=1, b="x") == "Thing(a=1, b='x')"


def test_no_params() -> None:
    assert auto_repr(Thing()) == "Thing()"


def test_datetimes_are_quoted() -> None:
    when = datetime(2024, 1, 2, 3, 4, 5)
    assert auto_repr(Thing(), at=when) == "Thing(at='2024-01-02 03:04:05')"


def test_classes_show_their_name() -> None:
    assert auto_repr(Thing(), kind=Thing) == "Thing(kind=Thing)"


def test_more_params_than_threshold_go_on_separate_lines() -> None:
    assert auto_repr(Thing(), new_line_threshold=1, a=1, b=2) == "Thing(\n    a=1,\n    b=2\n)"


def test_none_threshold_never_splits() -> None:
    params = {f"p{i}": i for i in range(10)}
    assert "\n" not in auto_repr(Thing(), new_line_threshold=None, **params)
