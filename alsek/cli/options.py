"""The options of the pool commands, with the defaults of the pools they build.

Each option names a constructor argument of its pool, and takes that argument's default from
the pool's signature (or, for the backoff options, from the default consumer backoff), so the
command and the class cannot disagree.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import click

from alsek.core.backoff import LinearBackoff

F = TypeVar("F", bound=Callable[..., Any])

#: The ``--log-level`` choices: every level name ``logging`` knows.
LOG_LEVELS = list(logging._nameToLevel)
#: The consumer backoff options (``--consumer-backoff-<name>``): the ``LinearBackoff`` settings
#: they give, and their help.
BACKOFF_OPTIONS = {
    "factor": "Growth (ms) of the longest idle wait per empty pass.",
    "floor": "Shortest cap (ms) on an idle wait; new messages wake the pool anyway.",
    "ceiling": "Longest cap (ms) on an idle wait.",
}


def constructor_default(pool: type, name: str) -> Any:
    """The default of ``pool``'s constructor argument ``name``.

    Pools pass their other keyword arguments up to their bases (``PoolCore``, the consumer),
    so the first constructor along the MRO that declares ``name`` has it.

    Raises:
        LookupError: no constructor declares ``name`` with a default.
    """
    for cls in pool.__mro__:
        init = cls.__dict__.get("__init__")
        if init is None:
            continue
        parameter = inspect.signature(init).parameters.get(name)
        if parameter is not None and parameter.default is not inspect.Parameter.empty:
            return parameter.default
    raise LookupError(f"{pool.__name__} has no constructor argument {name!r} with a default")


class KebabOption(click.Option):
    """An option spelled in kebab-case (``--n-threads``) that also accepts the spec's
    snake_case spelling (``--n_threads``, SPEC §17) without showing it in the help."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        shown, self.opts = self.opts, self.opts[:1]
        try:
            return super().get_help_record(ctx)
        finally:
            self.opts = shown


def kebab_option(name: str, **attrs: Any) -> Callable[[F], F]:
    """``--<name with dashes>``, with ``--<name>`` as a hidden alias when they differ."""
    spellings = [f"--{name.replace('_', '-')}"]
    if "_" in name:
        spellings.append(f"--{name}")
    return click.option(*spellings, name, cls=KebabOption, **attrs)


def pool_option(pool: type, name: str, help: str, type: Any = None) -> Callable[[F], F]:
    """``--name``: ``pool``'s constructor argument ``name``, defaulting as the constructor does
    (a ``bool`` argument is a flag)."""
    default = constructor_default(pool, name)
    if isinstance(default, bool):
        return kebab_option(name, is_flag=True, default=default, help=help)
    return kebab_option(
        name, type=type, default=default, show_default=default is not None, help=help
    )


def common_options(pool: type) -> Callable[[F], F]:
    """The options every pool command takes (SPEC §17), with ``pool``'s defaults."""
    backoff = constructor_default(pool, "backoff")
    if not isinstance(backoff, LinearBackoff):
        raise TypeError(f"The consumer backoff options expect a LinearBackoff, not {backoff!r}")
    options = [
        click.argument("package"),
        pool_option(
            pool,
            "queues",
            type=str,
            help="Comma-separated queues to consume, highest priority first "
            "(default: the queues of the package's tasks).",
        ),
        pool_option(
            pool, "task_specific_mode", help="Consume queue/task pairs instead of whole queues."
        ),
        *(
            kebab_option(
                f"consumer_backoff_{name}",
                type=int,
                default=getattr(backoff, name),
                show_default=True,
                help=help,
            )
            for name, help in BACKOFF_OPTIONS.items()
        ),
        pool_option(
            pool,
            "grace_period",
            type=int,
            help="Time (ms) running messages get to finish after SIGTERM; the rest are "
            "released and run again elsewhere.",
        ),
        pool_option(
            pool,
            "heartbeat_interval",
            type=int,
            help="Time (ms) between two beats of the pool in the worker registry; it counts "
            "as dead after three missed beats.",
        ),
        pool_option(
            pool,
            "unknown_task_ttl",
            type=click.IntRange(min=1),
            help="Dead-letter a ready message of a task that no live worker serves once it "
            "has waited this long (ms); by default it waits until one does.",
        ),
        pool_option(
            pool,
            "metrics_port",
            type=click.IntRange(min=0, max=65535),
            help="Serve the pool's Prometheus metrics on http://0.0.0.0:PORT/metrics (needs "
            "alsek[metrics]; 0: any free port, logged).",
        ),
        click.option(
            "--log-level",
            type=click.Choice(LOG_LEVELS, case_sensitive=False),
            default="INFO",
            show_default=True,
            help="Logging level.",
        ),
    ]

    def apply(function: F) -> F:
        for option in reversed(options):
            function = option(function)
        return function

    return apply


def pool_kwargs(
    queues: str | None,
    task_specific_mode: bool,
    consumer_backoff_factor: int,
    consumer_backoff_floor: int,
    consumer_backoff_ceiling: int,
    grace_period: int,
    heartbeat_interval: int,
    unknown_task_ttl: int | None,
    metrics_port: int | None,
) -> dict[str, Any]:
    """The pool arguments of the common options."""
    return {
        "metrics_port": metrics_port,
        "queues": _parse_queues(queues),
        "heartbeat_interval": heartbeat_interval,
        "unknown_task_ttl": unknown_task_ttl,
        "task_specific_mode": task_specific_mode,
        "grace_period": grace_period,
        "backoff": LinearBackoff(
            factor=consumer_backoff_factor,
            floor=consumer_backoff_floor,
            ceiling=consumer_backoff_ceiling,
            zero_override=False,
        ),
    }


def _parse_queues(queues: str | None) -> list[str] | None:
    if not queues:
        return None
    return [queue.strip() for queue in queues.split(",") if queue.strip()]
