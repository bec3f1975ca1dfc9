"""``AsyncTaskFuture``: one execution of one message as an asyncio task.

Like the sync futures, the run and a stop (timeout, revocation, shutdown) race for the right to
finish the message, and only one of them does: a stopped future is cancelled and then retried,
failed or released (shutdown) through the same outcome plans as every pool.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from alsek.core.current import start_running, stop_running
from alsek.core.future.outcome import ended_plan, error_plan, run_plan_async, stop_plan
from alsek.core.future.sync import FINISHING, RUNNING, STOPPED, TaskFuture, _success
from alsek.core.message import Message
from alsek.core.middleware import (
    before_process_steps,
    call_before_process,
    hooks_of,
    plain_hooks_of,
)
from alsek.core.run_timing import mark_run_ended, mark_run_started
from alsek.core.status.types import TaskStatus
from alsek.core.steps.drivers import async_run
from alsek.exceptions import TerminationError
from alsek.utils.checks import await_required

log = logging.getLogger(__name__)

#: How long ``stop`` keeps cancelling a run before giving up on it (as a process future waits
#: before SIGKILL). One cancel is not always enough: on Python 3.11 ``asyncio.wait_for``, which
#: redis-py awaits in every command, swallows a cancel that lands as the command completes, and
#: the task carries on.
STOP_PATIENCE_SECONDS = 1.0
#: How long a cancel gets to end the run before it is sent again.
RECANCEL_SECONDS = 0.1


async def _maybe_await(value: Any) -> Any:
    return await value if await_required(value) else value


async def _run_task(task: Any, message: Message) -> tuple[Any, BaseException | None]:
    """Run the task's steps, as the sync futures do (``before_process`` first, ``message`` the
    current message); any exception, from ``post_op`` too, is the run's exception.

    ``BaseException`` included (``SystemExit``, ``KeyboardInterrupt``...), as in the sync futures:
    asyncio re-raises some of them out of the event loop, which would stop the whole pool. Only a
    cancellation (the future being stopped) goes through.
    """
    mark_run_started(message)
    token = start_running(message)
    try:
        plain = plain_hooks_of(task.broker, "before_process")
        hooks = hooks_of(task.broker, "before_process")
        if hooks:
            control = (
                call_before_process(plain, message)
                if plain is not None
                else await async_run(before_process_steps(hooks, message))
            )
            if control is not None:
                return None, control
        await _maybe_await(task.pre_op(message))
        result = await _maybe_await(task.execute(message))
        await _maybe_await(task.post_op(message, result))
        return result, None
    except asyncio.CancelledError:
        raise
    except BaseException as error:
        return None, error
    finally:
        stop_running(token)
        mark_run_ended(message)


# -- the handlers of a finished run: the async futures' way into the outcome plans ----------------


async def _finish_run(
    task: Any, message: Message, result: Any, error: BaseException | None
) -> None:
    """Finish a run that was not stopped: ``after_process``, then its outcome."""
    await run_plan_async(ended_plan(task, message, result, error))


async def _async_complete_future_handler(task: Any, message: Message, result: Any) -> None:
    """Finish a successful run (result, callback, ack and SUCCEEDED in one round trip)."""
    await run_plan_async(_success(task, message, result))


async def _async_error_encountered_future_handler(
    task: Any, message: Message, exception: BaseException, update_exception_on_message: bool = True
) -> None:
    """Finish a failed run: ``on_revocation`` if revoked, else retry or fail for good
    (``update_exception_on_message``: as in the sync handler)."""
    await run_plan_async(error_plan(task, message, exception))


async def _cancel_until_done(task: asyncio.Task[None]) -> bool:
    """Cancel ``task`` until it ends or ``STOP_PATIENCE_SECONDS`` pass; whether it ended."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STOP_PATIENCE_SECONDS
    while not task.done():
        remaining = deadline - loop.time()
        if remaining <= 0:
            return False
        task.cancel()
        await asyncio.wait((task,), timeout=min(RECANCEL_SECONDS, remaining))
    return True


class AsyncTaskFuture(TaskFuture):
    """Runs ``message`` as an asyncio task; must be created inside a running loop.

    Args:
        write_running: record RUNNING here (when the claim did not).
        on_run_end: called when the run ended and its outcome is about to be written (not for
            a stopped run): the pool may start its next message meanwhile.
    """

    def __init__(
        self,
        task: Any,
        message: Message,
        write_running: bool = False,
        on_run_end: Callable[[AsyncTaskFuture], None] | None = None,
    ) -> None:
        if getattr(type(task), "_alsek_task_kind", None) != "async":
            raise TypeError("AsyncTaskFuture requires an AsyncTask instance")
        super().__init__(task, message)
        self._write_running = write_running
        self._on_run_end = on_run_end
        self._state = RUNNING
        self._task: asyncio.Task[None] = asyncio.create_task(
            self._wrapper(), name=f"alsek-{message.uuid[:8]}"
        )

    @property
    def complete(self) -> bool:
        """Done: the outcome was written, or it was stopped."""
        return self._task.done()

    @property
    def asyncio_task(self) -> asyncio.Task[None]:
        """The asyncio task running it (to wait on)."""
        return self._task

    def _claim_outcome(self, state: int) -> bool:
        # Runs on the loop's thread only, so no lock is needed.
        if self._state != RUNNING:
            return False
        self._state = state
        return True

    async def _wrapper(self) -> None:
        log.info("Received %s", self.message.summary)
        if self._write_running:
            try:
                await self.task.update_status(self.message, TaskStatus.RUNNING)
            except Exception as failure:  # a status write must not stop the run
                log.warning("Could not record RUNNING for %s: %s", self.message.summary, failure)
        result, error = await _run_task(self.task, self.message)
        if self._claim_outcome(FINISHING):
            if self._on_run_end is not None:
                self._on_run_end(self)
            await _finish_run(self.task, self.message, result, error)

    async def stop(self, exception: type[BaseException]) -> None:  # type: ignore[override]
        """Cancel the run and finish the message: released on shutdown, else an error."""
        if not self._claim_outcome(STOPPED):
            return
        if self._task is not asyncio.current_task() and not await _cancel_until_done(self._task):
            log.error(
                "%s still runs %s s after being cancelled; its message is finished anyway, and "
                "its slot stays taken until it ends",
                self.message.summary,
                STOP_PATIENCE_SECONDS,
            )
        error = exception(f"Stopped asyncio task of {self.message.summary}")
        await run_plan_async(stop_plan(self.task, self.message, error))

    async def clean_up(self, ignore_errors: bool = False) -> None:  # type: ignore[override]
        """Stop it if it still runs (shutdown: its message is released)."""
        try:
            if not self.complete:
                await self.stop(TerminationError)
        except Exception as error:
            log.error("Clean-up of %s failed: %s", self.message.summary, error)
            if not ignore_errors:
                raise
