"""utils.parsing: exceptions as data and back."""

from __future__ import annotations

import json

import pytest

from alsek.exceptions import TaskNameCollisionError
from alsek.utils.parsing import ExceptionDetails, get_exception_name, parse_exception


class _Outer:
    class InnerError(Exception):
        pass


class _NeedsTwoArgs(Exception):
    def __init__(self, a: str, b: str) -> None:
        super().__init__(a, b)


def test_as_dict_returns_all_fields() -> None:
    details = ExceptionDetails(name="KeyError", text="'x'", traceback="tb")
    assert details.as_dict() == {"name": "KeyError", "text": "'x'", "traceback": "tb"}


def test_defaults_are_none() -> None:
    details = ExceptionDetails(name="KeyError")
    assert details.text is None
    assert details.traceback is None


def test_as_exception_rebuilds_a_builtin() -> None:
    error = ExceptionDetails(name="ValueError", text="bad").as_exception()
    assert type(error) is ValueError
    assert error.args == ("bad",)


def test_as_exception_rebuilds_an_importable_class() -> None:
    name = "alsek.exceptions.TaskNameCollisionError"
    error = ExceptionDetails(name=name, text="x").as_exception()
    assert type(error) is TaskNameCollisionError
    assert str(error) == "x"


def test_as_exception_rebuilds_a_nested_class() -> None:
    name = get_exception_name(_Outer.InnerError)
    error = ExceptionDetails(name=name, text="inner").as_exception()
    assert type(error) is _Outer.InnerError


def test_as_exception_without_text_builds_without_arguments() -> None:
    assert ExceptionDetails(name="RuntimeError").as_exception().args == ()


def test_as_exception_unknown_builtin_strict_raises_attribute_error() -> None:
    with pytest.raises(AttributeError):
        ExceptionDetails(name="NoSuchError", text="t").as_exception()


def test_as_exception_unknown_module_strict_raises_import_error() -> None:
    with pytest.raises(ImportError):
        ExceptionDetails(name="no_such_module_xyz.Error", text="t").as_exception()


def test_as_exception_non_exception_name_strict_raises_type_error() -> None:
    with pytest.raises(TypeError, match="'len' is not an exception class"):
        ExceptionDetails(name="len", text="t").as_exception()


def test_as_exception_unbuildable_class_strict_raises_type_error() -> None:
    name = get_exception_name(_NeedsTwoArgs)
    with pytest.raises(TypeError):
        ExceptionDetails(name=name, text="one").as_exception()


@pytest.mark.parametrize("name", ["NoSuchError", "no_such_module_xyz.Error", "len"])
def test_as_exception_non_strict_falls_back_to_generic_exception(name: str) -> None:
    error = ExceptionDetails(name=name, text="t").as_exception(strict=False)
    assert type(error) is Exception
    assert str(error) == f"{name}: t"


def test_exception_name_of_builtin_class_and_instance() -> None:
    assert get_exception_name(KeyError) == "KeyError"
    assert get_exception_name(KeyError("x")) == "KeyError"


def test_exception_name_of_other_classes_is_module_qualified() -> None:
    assert get_exception_name(TaskNameCollisionError()) == "alsek.exceptions.TaskNameCollisionError"
    assert get_exception_name(_Outer.InnerError).endswith("._Outer.InnerError")


def test_parse_exception_captures_name_text_and_traceback() -> None:
    try:
        raise ValueError("broken value")
    except ValueError as error:
        details = parse_exception(error)
    assert details.name == "ValueError"
    assert details.text == "broken value"
    assert details.traceback is not None
    assert details.traceback.startswith("Traceback (most recent call last):")
    assert 'raise ValueError("broken value")' in details.traceback


def test_parse_exception_of_unraised_error_has_no_stack() -> None:
    details = parse_exception(KeyError("k"))
    assert details.traceback == "KeyError: 'k'\n"


def test_details_survive_json() -> None:
    details = ExceptionDetails(name="KeyError", text="'k'", traceback="tb")
    assert ExceptionDetails(**json.loads(json.dumps(details.as_dict()))) == details
