"""Every way to build a task has SPEC's parameters, then Dramatiq's per-message options and
the claim-time limits (keyword-only), with the defaults of ``TASK_DEFAULTS``."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import fields
from typing import Any

import pytest
from apscheduler.triggers.interval import IntervalTrigger

from alsek.core.task import AsyncTask, AsyncTriggerTask, BaseTask, Task, TriggerTask, task
from alsek.core.task.options import TASK_DEFAULTS, TaskOptions
from alsek.defaults import DEFAULT_QUEUE
from tests.task.conftest import Kit

_SETTINGS_HEAD = ["name", "queue", "timeout", "max_retries", "backoff"]
_SETTINGS_TAIL = ["mechanism", "run_in_main_thread", "no_positional_args"]
_COMPONENTS = ["result_store", "default_result_ttl", "status_tracker"]
_TASK = [*_SETTINGS_HEAD, *_COMPONENTS, *_SETTINGS_TAIL]

#: The parameters, in order, that SPEC §13 gives each constructor and the decorator.
SPEC_PARAMETERS: dict[Callable[..., Any], list[str]] = {
    BaseTask.__init__: ["function", *_SETTINGS_HEAD, "status_tracker", *_SETTINGS_TAIL],
    Task.__init__: ["function", "broker", *_TASK],
    AsyncTask.__init__: ["function", "broker", *_TASK],
    TriggerTask.__init__: ["function", "trigger", "broker", *_TASK],
    AsyncTriggerTask.__init__: ["function", "trigger", "broker", *_TASK],
    task: ["broker", *_SETTINGS_HEAD, "trigger", *_COMPONENTS, *_SETTINGS_TAIL, "base_task"],
}
#: What follows SPEC's parameters everywhere, keyword-only: Dramatiq's per-message options,
#: then the claim-time limits (issue 16).
MESSAGE_OPTIONS = [
    "max_age",
    "throws",
    "retry_when",
    "concurrency_limit",
    "concurrency_key",
    "rate_limit",
]

#: Where SPEC gives ``run_in_main_thread=None`` (read as ``False``) instead of ``False``.
_OPTIONAL_RUN_IN_MAIN_THREAD = {TriggerTask.__init__, AsyncTriggerTask.__init__, task}


def _parameters(function: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    parameters = dict(inspect.signature(function).parameters)
    parameters.pop("self", None)
    return parameters


@pytest.mark.parametrize("function", list(SPEC_PARAMETERS), ids=lambda f: f.__qualname__)
def test_the_parameters_are_specs_in_specs_order(function: Callable[..., Any]) -> None:
    parameters = _parameters(function)
    assert list(parameters) == [*SPEC_PARAMETERS[function], *MESSAGE_OPTIONS]
    for name in MESSAGE_OPTIONS:
        assert parameters[name].kind is inspect.Parameter.KEYWORD_ONLY, (function, name)


@pytest.mark.parametrize("function", list(SPEC_PARAMETERS), ids=lambda f: f.__qualname__)
def test_every_setting_defaults_to_task_defaults(function: Callable[..., Any]) -> None:
    parameters = _parameters(function)
    for field in fields(TaskOptions):
        if field.name not in parameters:
            continue
        default = parameters[field.name].default
        expected = getattr(TASK_DEFAULTS, field.name)
        if field.name == "run_in_main_thread" and function in _OPTIONAL_RUN_IN_MAIN_THREAD:
            assert default is None and expected is False, function
        else:
            assert default is expected, (function, field.name)


@pytest.mark.parametrize("function", list(SPEC_PARAMETERS), ids=lambda f: f.__qualname__)
def test_components_and_trigger_default_to_none(function: Callable[..., Any]) -> None:
    parameters = _parameters(function)
    required = {"function", "broker"} | ({"trigger"} if function is not task else set())
    for name, parameter in parameters.items():
        if name in required:
            assert parameter.default is inspect.Parameter.empty, (function, name)
        elif name not in {field.name for field in fields(TaskOptions)}:
            assert parameter.default is None, (function, name)


def test_the_options_are_every_setting_of_task_but_the_components() -> None:
    settings = {*SPEC_PARAMETERS[Task.__init__], *MESSAGE_OPTIONS} - {"function", "broker"}
    assert {field.name for field in fields(TaskOptions)} == settings - {
        "result_store",
        "status_tracker",
    }


def tick() -> None:
    return None


async def async_tick() -> None:
    return None


def _built_with_defaults(kit: Kit) -> list[BaseTask]:
    function: Callable[..., Any] = tick if kit.kind == "sync" else async_tick
    trigger_class = TriggerTask if kit.kind == "sync" else AsyncTriggerTask
    trigger = IntervalTrigger(hours=1)  # type: ignore[arg-type]
    return [
        kit.task_class(function, broker=kit.broker),
        trigger_class(function, trigger=trigger, broker=kit.broker),
        task(kit.broker)(function),
        task(kit.broker, trigger=trigger)(function),
    ]


async def test_tasks_built_without_settings_hold_the_defaults(kit: Kit) -> None:
    for built in _built_with_defaults(kit):
        assert (built.name, built.queue) == (built.function.__name__, DEFAULT_QUEUE)
        for field in fields(TaskOptions):
            if field.name in ("name", "queue"):
                continue  # resolved just above
            assert getattr(built, field.name) == getattr(TASK_DEFAULTS, field.name), (
                type(built),
                field.name,
            )


def test_an_unsupported_mechanism_is_refused_by_the_options() -> None:
    with pytest.raises(ValueError, match="mechanism must be one of"):
        TaskOptions(mechanism="fiber")  # type: ignore[arg-type]
