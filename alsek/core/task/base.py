"""What ``Task`` and ``AsyncTask`` share: every decision about a task that is not I/O.

``BaseTask`` validates arguments, builds messages, decides whether to revoke or retry, and (from
``TaskEffects``, ``effects.py``) builds the *effects* that let one broker call also record the
status and the result. ``Task`` and ``AsyncTask`` only perform the I/O. ``TriggerTaskMixin``
(``triggers.py``) adds the schedule of a trigger task.

Tasks are generic in the function they wrap, ``BaseTask[P, R]`` for a ``Callable[P, R]``, so
calling a task type-checks like calling its function (``add(1, 2)`` is an ``int``). ``R`` is
what the function returns: for an ``async def`` function that is its coroutine, as calling the
task (which runs the function inline) returns it.
"""

from __future__ import annotations

import inspect
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, ParamSpec, TypeVar
from weakref import WeakKeyDictionary

from alsek.core.backoff import Backoff, ConstantBackoff
from alsek.core.broker import keys
from alsek.core.message import Message
from alsek.core.status.types import TERMINAL_TASK_STATUSES, StatusUpdate, TaskStatus
from alsek.core.task.arguments import (
    ROLE_ARGUMENTS,
    binding_problem,
    expects_message,
    fits_a_role,
    readable_signature,
)
from alsek.core.task.callbacks import parse_callback
from alsek.core.task.effects import TaskEffects
from alsek.core.task.follow_ups import split_workflow_options
from alsek.core.task.generating import ManySubmission
from alsek.core.task.message_options import (
    OptionDecisions,
    RetryWhen,
    check_max_age,
    check_retry_when,
    check_throws,
    split_message_options,
    with_overrides,
)
from alsek.core.task.options import TASK_DEFAULTS
from alsek.core.task.triggers import TriggerTaskMixin
from alsek.core.task_limits import RateLimit, check_task_limits, with_limits
from alsek.defaults import DEFAULT_QUEUE
from alsek.exceptions import RevokedError, ValidationError
from alsek.types import SupportedMechanismType, check_mechanism
from alsek.utils.aggregation import gather_init_params
from alsek.utils.namespacing import validate_name
from alsek.utils.parsing import ExceptionDetails, get_exception_name
from alsek.utils.printing import auto_repr

if TYPE_CHECKING:
    from alsek.core.broker import BaseBroker
    from alsek.core.status.base import BaseStatusTracker
    from alsek.storage.result._base import BaseResultStore

#: ``TriggerTaskMixin`` lives in ``triggers.py``; SPEC names this module as its home too.
__all__ = ["BaseTask", "TriggerTaskMixin", "built_by"]

log = logging.getLogger(__name__)

#: The parameters and the return type of a task's function.
P = ParamSpec("P")
R = TypeVar("R")
#: A task, for methods that return the task they are called on (``defer``).
TaskT = TypeVar("TaskT", bound="BaseTask[Any, Any]")


def split_many_options(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``generate_many``'s options as (message fields, broker submit options).

    Raises:
        ValueError: ``uuid`` or ``callback``, which each message must have for itself.
    """
    for name in ("uuid", "callback"):
        if name in options:
            raise ValueError(f"generate_many cannot share {name!r} between messages")
    fields = {name: options.get(name, default) for name, default in _SHARED_FIELD_DEFAULTS.items()}
    rest = {name: value for name, value in options.items() if name not in fields}
    return fields, rest


class BaseTask(TaskEffects, OptionDecisions, ABC, Generic[P, R]):
    """A function that can run elsewhere: messages for it go to a broker, workers run them.

    Args:
        function: what runs; called with the message's ``args`` and ``kwargs`` (and
            ``message=`` when it takes a ``message`` parameter, see ``expects_message``).
        status_tracker: records each message's status, if given.
        name, queue, timeout, max_retries, backoff, mechanism, run_in_main_thread,
            no_positional_args, max_age, throws, retry_when, concurrency_limit, concurrency_key,
            rate_limit: the task's settings, documented
            (with their defaults) on ``TaskOptions`` (``options.py``).

    Raises:
        ValueError: an unsupported mechanism, an invalid name or queue, a ``max_age`` that is
            not an int of ms > 0, or a component (broker, status tracker, result store) of the
            wrong kind (sync vs async) for this task.
        TypeError: ``throws`` items that are not exception classes; a ``retry_when`` that is
            not callable.
    """

    #: ``"sync"`` or ``"async"``: how worker pools (and task scanning) recognise a task.
    _alsek_task_kind: ClassVar[Literal["sync", "async"]]

    broker: BaseBroker
    result_store: BaseResultStore | None
    status_tracker: BaseStatusTracker | None
    default_result_ttl: int | None

    def __init__(
        self,
        function: Callable[P, R],
        name: str | None = TASK_DEFAULTS.name,
        queue: str | None = TASK_DEFAULTS.queue,
        timeout: int = TASK_DEFAULTS.timeout,
        max_retries: int | None = TASK_DEFAULTS.max_retries,
        backoff: Backoff | None = TASK_DEFAULTS.backoff,
        status_tracker: BaseStatusTracker | None = None,
        mechanism: SupportedMechanismType = TASK_DEFAULTS.mechanism,
        run_in_main_thread: bool = TASK_DEFAULTS.run_in_main_thread,
        no_positional_args: bool = TASK_DEFAULTS.no_positional_args,
        *,
        max_age: int | None = TASK_DEFAULTS.max_age,
        throws: tuple[type[BaseException], ...] = TASK_DEFAULTS.throws,
        retry_when: RetryWhen | None = TASK_DEFAULTS.retry_when,
        concurrency_limit: int | None = TASK_DEFAULTS.concurrency_limit,
        concurrency_key: Callable[..., Any] | None = TASK_DEFAULTS.concurrency_key,
        rate_limit: str | RateLimit | None = TASK_DEFAULTS.rate_limit,
    ) -> None:
        mechanism = check_mechanism(mechanism)
        self.function = function
        self._name = name
        validate_name("task", self.name)
        self.queue = validate_name("queue", queue or DEFAULT_QUEUE)
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff or ConstantBackoff(
            constant=0, floor=0, ceiling=0, zero_override=True
        )
        self.status_tracker = self._check_kind("status_tracker", status_tracker)
        self.mechanism = mechanism
        self.run_in_main_thread = bool(run_in_main_thread)
        self.no_positional_args = no_positional_args
        self.max_age = check_max_age(max_age)
        self.throws = check_throws(throws)
        self.retry_when = check_retry_when(retry_when)
        self.limits = check_task_limits(concurrency_limit, concurrency_key, rate_limit)
        self.concurrency_limit, self.concurrency_key = concurrency_limit, concurrency_key
        self.rate_limit = self.limits.rate if self.limits else None
        self._deferred = False

    def _attach(
        self,
        broker: BaseBroker,
        result_store: BaseResultStore | None,
        default_result_ttl: int | None,
    ) -> None:
        """Set the I/O components the concrete classes take (after checking their kind)."""
        if broker is None:
            raise ValueError(f"{type(self).__name__} needs a broker")
        self.broker = self._check_kind("broker", broker)
        self.result_store = self._check_kind("result_store", result_store)
        self.default_result_ttl = default_result_ttl

    def _check_kind(self, label: str, component: Any) -> Any:
        """``component`` if its backend is sync for a sync task and async for an async one."""
        if component is None:
            return None
        wants_async = self._alsek_task_kind == "async"
        if bool(component.backend.IS_ASYNC) != wants_async:
            wanted = "an async" if wants_async else "a sync"
            raise ValueError(
                f"{type(self).__name__} {self.name!r} needs {wanted} {label}, got "
                f"{type(component).__name__} with a {type(component.backend).__name__} backend"
            )
        return component

    # -- identity ----------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The task's identity in keys and dispatch: ``name``, else ``function.__name__``."""
        return self._name or self.function.__name__

    def __repr__(self) -> str:
        return auto_repr(
            self,
            function=self.function,
            broker=self.broker,
            name=self.name,
            queue=self.queue,
            max_retries=self.max_retries,
            backoff=self.backoff,
            mechanism=self.mechanism,
            deferred_mode="enabled" if self._deferred else "disabled",
        )

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the function here and now; no broker is involved."""
        return self.function(*args, **kwargs)

    # -- moving a task between processes -----------------------------------------------------

    def serialize(self) -> dict[str, Any]:
        """``{"task": <class>, "settings": {...}}``; carry it across processes with ``dill``."""
        settings = gather_init_params(self, ignore=("broker", "status_tracker", "result_store"))
        settings["broker_class"] = type(self.broker)
        settings["broker_state"] = self.broker.serialize()
        for label in ("status_tracker", "result_store"):
            component = getattr(self, label)
            if component is not None:
                settings[f"{label}_class"] = type(component)
                settings[f"{label}_state"] = component.serialize()
        return {"task": type(self), "settings": settings}

    @staticmethod
    def deserialize(data: dict[str, Any]) -> BaseTask[Any, Any]:
        """Rebuild a task (with new connection pools) from ``serialize()``'s output."""
        settings = dict(data["settings"])
        for label in ("broker", "status_tracker", "result_store"):
            if f"{label}_class" in settings:
                component_class = settings.pop(f"{label}_class")
                settings[label] = component_class.deserialize(settings.pop(f"{label}_state"))
        task: BaseTask[Any, Any] = data["task"](**settings)
        return task

    # -- deferred mode -----------------------------------------------------------------------

    @property
    def deferred(self) -> bool:
        """Whether the next ``generate()`` only builds its message (e.g. a callback's)."""
        return self._deferred

    def defer(self: TaskT) -> TaskT:
        """Make the next ``generate()`` build its message without submitting it."""
        self._deferred = True
        return self

    def cancel_defer(self: TaskT) -> TaskT:
        """Submit again on ``generate()``."""
        self._deferred = False
        return self

    def _submits(self, submit: bool, messages: Sequence[Message]) -> bool:
        """Whether this generate submits the ``messages`` it built: not with ``submit=False``,
        nor in deferred mode, which this generate ends (it lasts one generate only). Messages
        it does not submit remember their task (``built_by``), for whoever submits them later.
        """
        deferred = self._deferred
        self.cancel_defer()
        submitting = submit and not deferred
        if not submitting:
            for message in messages:
                _BUILT_BY[message] = self
        return submitting

    # -- building messages -------------------------------------------------------------------

    def _validate_generate(
        self, args: Any, kwargs: Any, priority: Any, result_ttl: Any, later: bool = False
    ) -> None:
        if result_ttl and self.result_store is None:
            raise ValidationError(
                f"Task {self.name!r}: result_ttl={result_ttl!r} needs a result store"
            )
        if args and self.no_positional_args:
            raise ValidationError(
                f"Task {self.name!r} takes keyword arguments only (no_positional_args), "
                f"got args={args!r}"
            )
        self._check_binding(args, kwargs, later)
        if isinstance(priority, bool) or not isinstance(priority, int) or priority < 0:
            raise ValueError(f"priority must be an int >= 0, got {priority!r}")

    def _check_binding(self, args: Any, kwargs: Any, later: bool = False) -> None:
        """Refuse arguments the function cannot be called with, rather than let every attempt
        fail in the worker. ``later`` (not submitted now): those that fit once a role adds its
        arguments pass; the role is checked when given (``check_role``)."""
        signature = self._checked_signature
        if signature is None:
            return
        problem = binding_problem(signature, args, kwargs, self._expects_message)
        if problem is not None and not (
            later and fits_a_role(signature, args, kwargs, self._expects_message)
        ):
            passed = " (the worker passes message= itself)" if self._expects_message else ""
            raise ValidationError(
                f"Task {self.name!r} cannot be called with these arguments: {problem}; "
                f"it takes {self.name}{signature}{passed}"
            )

    def check_role(self, message: Message, role: str) -> None:
        """Refuse ``message`` (built by this task) as ``role`` (see ``ROLE_ARGUMENTS``) when
        it would then run with arguments the function does not take (``ValidationError``)."""
        extra_args, extra_kwargs, description = ROLE_ARGUMENTS[role]
        try:
            self._check_binding((*message.args, *extra_args), {**message.kwargs, **extra_kwargs})
        except ValidationError as error:
            raise ValidationError(f"{message.summary} as {description}: {error}") from None

    @cached_property
    def _checked_signature(self) -> inspect.Signature | None:
        """What ``generate`` checks arguments against (read once: reading costs more than the
        check). ``None`` when it cannot be read, or when a subclass calls the function its own
        way (it overrides ``op`` or ``execute``)."""
        for method in ("op", "execute"):
            owner = next(c for c in type(self).__mro__ if method in c.__dict__)
            if not owner.__module__.startswith("alsek."):
                return None
        return readable_signature(self.function)

    def _generate_message(
        self,
        args: Sequence[Any] | None = None,
        kwargs: dict[Any, Any] | None = None,
        priority: int = 0,
        metadata: dict[Any, Any] | None = None,
        result_ttl: int | None = None,
        uuid: str | None = None,
        timeout_override: int | None = None,
        delay: int | None = None,
        previous_result: Any = None,
        callback: Message | tuple[Message, ...] | None = None,
        queue: str | None = None,
        mechanism: SupportedMechanismType | None = None,
        run_in_main_thread: bool | None = None,
        ready_at: int | None = None,
        *,
        later: bool = False,
    ) -> Message:
        """Validate ``generate``'s arguments, then build its message (nothing is written).

        ``result_ttl=None`` means the task's ``default_result_ttl``; ``Message`` checks every
        other value. A refusal ends deferred mode, as the ``generate`` would have.
        """
        try:
            self._validate_generate(args, kwargs, priority, result_ttl, later)
            _check_roles(callback, {})
            message = Message(
                task_name=self.name,
                queue=queue or self.queue,
                args=tuple(args) if args is not None else None,
                kwargs=kwargs,
                priority=priority,
                metadata=metadata,
                result_ttl=self.default_result_ttl if result_ttl is None else result_ttl,
                uuid=uuid,
                timeout=timeout_override or self.timeout,
                delay=delay,
                previous_result=previous_result,
                callback_message_data=parse_callback(callback).data if callback else None,
                backoff_settings=dict(self.backoff.settings),
                mechanism=self.mechanism if mechanism is None else mechanism,
                run_in_main_thread=(
                    self.run_in_main_thread if run_in_main_thread is None else run_in_main_thread
                ),
                ready_at=ready_at,
            )
            return with_limits(message, self.limits)
        except Exception:
            self.cancel_defer()  # the generate() that defer() was for is over, refused or not
            raise

    def _split_options(self, options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """``generate``'s ``**options`` as (the message's overrides of ``max_age``, ``throws``
        and ``retry_when``, for its metadata; the broker's submit options). A refusal ends
        deferred mode, as the ``generate`` would have."""
        try:
            overrides, rest = split_message_options(options)
            workflow, rest = split_workflow_options(rest)
            _check_roles(None, options)
            return {**overrides, **workflow}, rest
        except Exception:
            self.cancel_defer()
            raise

    def _build_message(
        self, options: dict[str, Any], *fields: Any, later: bool = False
    ) -> tuple[Message, dict[str, Any]]:
        """``generate``'s message from its ``fields`` (``_generate_message``'s, in order) and
        its per-message options, and the options left for the broker. ``later``: it is not
        submitted now (see ``_check_binding``)."""
        overrides, submit_options = self._split_options(options) if options else ({}, {})
        message = self._generate_message(*fields, later=later)
        return with_overrides(message, overrides), submit_options

    def _prepare_many(
        self,
        args_list: Sequence[Sequence[Any]] | None,
        kwargs_list: Sequence[dict[Any, Any]] | None,
        **shared: Any,
    ) -> list[Message]:
        """One message per item of ``args_list``/``kwargs_list`` (zipped), with ``shared``."""
        if args_list is None and kwargs_list is None:
            raise ValueError("generate_many needs args_list, kwargs_list or both")
        if args_list is not None and kwargs_list is not None and len(args_list) != len(kwargs_list):
            raise ValueError(
                f"args_list and kwargs_list must have the same length, got {len(args_list)} "
                f"and {len(kwargs_list)}"
            )
        count = len(args_list) if args_list is not None else len(kwargs_list or ())
        nothing: list[None] = [None] * count
        every_args: Sequence[Sequence[Any] | None] = nothing if args_list is None else args_list
        every_kwargs: Sequence[dict[Any, Any] | None] = (
            nothing if kwargs_list is None else kwargs_list
        )
        return [
            self._generate_message(args=args, kwargs=kwargs, **shared)
            for args, kwargs in zip(every_args, every_kwargs)
        ]

    def _plan_many(
        self,
        args_list: Sequence[Sequence[Any]] | None,
        kwargs_list: Sequence[dict[Any, Any]] | None,
        options: dict[str, Any],
    ) -> tuple[list[Message], ManySubmission | None]:
        """``generate_many``'s messages, and what its ``broker.submit_many`` call takes besides
        them; ``None`` when nothing is submitted (deferred mode, or no messages)."""
        fields, shared = split_many_options(options)
        overrides, submit_options = self._split_options(shared)
        messages = [
            with_overrides(message, overrides)
            for message in self._prepare_many(args_list, kwargs_list, **fields)
        ]
        if not self._submits(True, messages) or not messages:
            return messages, None
        effects = [self.submit_effects(message) for message in messages]
        return messages, ManySubmission(effects, submit_options)

    # -- decisions ---------------------------------------------------------------------------

    def _should_revoke(
        self, message: Message, status: StatusUpdate | None, skip_if_running: bool
    ) -> bool:
        """Whether ``revoke`` goes ahead, given the current status (``None``: none recorded)."""
        if status is not None and status.value in TERMINAL_TASK_STATUSES:
            log.info("%s is already %s; not revoking it", message.summary, status.value.name)
            return False
        if skip_if_running and status is not None and status.value is TaskStatus.RUNNING:
            log.info("%s is running and skip_if_running is set; not revoking it", message.summary)
            return False
        return True

    def _check_revoke(self, skip_if_running: bool) -> None:
        if skip_if_running and self.status_tracker is None:
            raise AttributeError(
                f"Task {self.name!r}: skip_if_running needs a status tracker to know the status"
            )

    @staticmethod
    def _make_revoked_key_name(message: Message) -> str:
        """Short name of the flag a revocation sets (the backend adds the namespace)."""
        return keys.revoked_key(message.queue, message.uuid)

    @staticmethod
    def _mark_revoked(message: Message) -> None:
        """Record ``RevokedError`` on the message (its DLQ copy says why it is there)."""
        details = ExceptionDetails(
            name=get_exception_name(RevokedError), text="Task Revoked", traceback=None
        )
        message.update(exception_details=details.as_dict())

    def _call_arguments(self, message: Message) -> tuple[tuple[Any, ...], dict[Any, Any]]:
        """What ``op`` calls the function with: ``message=`` too when it asks for it."""
        kwargs = dict(message.kwargs)
        if "message" not in kwargs and self._expects_message:
            kwargs["message"] = message
        return message.args, kwargs

    @cached_property
    def _expects_message(self) -> bool:
        # Read once: inspecting a signature costs more than many a short task.
        return expects_message(self.function)

    def do_callback(self, message: Message, result: Any) -> bool:
        """Whether to submit the message's callback after ``result`` (always, by default)."""
        return True

    # -- hooks: no-ops to override (awaitable in AsyncTask) ----------------------------------

    def pre_op(self, message: Message) -> Any:
        """Runs before ``op``; an exception here counts as the run's exception."""
        return None

    def post_op(self, message: Message, result: Any) -> Any:
        """Runs after ``op`` succeeded; an exception here counts as the run's exception."""
        return None

    def on_submit(self, message: Message) -> Any:
        """Runs after the message was submitted."""
        return None

    def on_revocation(self, message: Message, exception: BaseException | None, result: Any) -> Any:
        """Runs when a revoked message stops, or finishes anyway (its result is discarded)."""
        return None

    def on_retry(self, message: Message, exception: BaseException) -> Any:
        """Runs when a failed attempt will be retried."""
        return None

    def on_failure(self, message: Message, exception: BaseException) -> Any:
        """Runs when the message failed for good (it goes to the DLQ)."""
        return None

    def on_success(self, message: Message, result: Any) -> Any:
        """Runs when the message succeeded."""
        return None

    # -- I/O, in Task and AsyncTask (return values are awaitable in AsyncTask) ---------------

    @abstractmethod
    def update_status(self, message: Message, status: TaskStatus) -> Any:
        """Write ``status`` through the status tracker, if there is one."""

    @abstractmethod
    def write_unshared(self, message: Message, status: TaskStatus, result: Any = None) -> Any:
        """Write what could not ride along with the broker call that reached ``status``."""

    @abstractmethod
    def _submit(self, message: Message, **options: Any) -> Any:
        """Submit the message (a trigger task schedules it instead)."""

    @abstractmethod
    def generate(self, *args: Any, **kwargs: Any) -> Message | Any:
        """Build a message for this task and submit it."""

    @abstractmethod
    def generate_many(self, *args: Any, **kwargs: Any) -> list[Message] | Any:
        """Build many messages for this task and submit them in pipelined round trips."""

    @abstractmethod
    def op(self, message: Message) -> Any:
        """Call the function for ``message``."""

    @abstractmethod
    def execute(self, message: Message) -> Any:
        """Run ``message`` (``op``)."""

    @abstractmethod
    def do_retry(self, message: Message, exception: BaseException) -> bool | Any:
        """Whether a failed attempt is retried."""

    @abstractmethod
    def revoke(self, message: Message, skip_if_running: bool = False) -> Any:
        """Revoke ``message``: stop it if it runs, never run it again."""

    @abstractmethod
    def is_revoked(self, message: Message) -> bool | Any:
        """Whether ``message`` was revoked."""


#: Messages built but not submitted (``generate(submit=False)``, deferred mode) in this
#: process, with the task that built them; an entry goes with its message.
_BUILT_BY: WeakKeyDictionary[Message, BaseTask[Any, Any]] = WeakKeyDictionary()


def _check_roles(callback: Message | tuple[Message, ...] | None, options: dict[str, Any]) -> None:
    """Refuse a ``callback`` chain or handlers whose arguments do not fit their tasks (built
    here unsubmitted, they were only checked for some role)."""
    chain = (callback,) if isinstance(callback, Message) else tuple(callback or ())
    roles = [*((m, "step") for m in chain), *((options.get(r), r) for r in _HANDLER_ROLES)]
    for message, role in roles:
        task = built_by(message) if isinstance(message, Message) else None
        if task is not None and isinstance(message, Message):
            task.check_role(message, role)


_HANDLER_ROLES = ("on_success", "on_failure")


def built_by(message: Message) -> BaseTask[Any, Any] | None:
    """The task whose ``generate`` built ``message`` without submitting it, in this process;
    ``None`` for any other message."""
    return _BUILT_BY.get(message)


#: ``generate`` fields that ``generate_many`` shares between its messages, with their defaults
#: (``_generate_message``'s): all but the call arguments, and ``uuid`` and ``callback``, which
#: identify one message.
_SHARED_FIELD_DEFAULTS: dict[str, Any] = {
    name: parameter.default
    for name, parameter in inspect.signature(BaseTask._generate_message).parameters.items()
    if name not in ("self", "args", "kwargs", "uuid", "callback", "later")
}
