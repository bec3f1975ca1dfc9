"""``ResultStore``: the blocking shell over the operations of ``BaseResultStore``."""

from __future__ import annotations

from typing import Any

from alsek.core.steps.drivers import run
from alsek.core.steps.ops import Steps, T
from alsek.storage.backends.base import Backend
from alsek.storage.result._base import BaseResultStore, ResultSubject


class ResultStore(BaseResultStore):
    """Store task results on a sync backend; see ``BaseResultStore`` for layout and TTLs.

    Args:
        backend: a sync backend (on the broker's Redis to write results with acks).
        default_ttl: ms a result is kept when its message has no ``result_ttl`` (neither one
            given to ``generate`` nor the task's ``default_result_ttl``, which both win over
            it); ``None``: such results are kept forever.

    Raises:
        AssertionError: the backend is async (use ``AsyncResultStore``).
    """

    def __init__(self, backend: Backend, default_ttl: int | None = None) -> None:
        super().__init__(backend, default_ttl)

    def _run(self, steps: Steps[T]) -> T:
        return run(steps, self.backend.conn)

    def exists(self, message: ResultSubject, descendants: bool = False) -> bool:
        """Whether the result exists (with ``descendants``: every result of the chain)."""
        return self._run(self._exists_steps(message, descendants))

    def set(self, message: ResultSubject, result: Any, nx: bool = True) -> None:
        """Store ``result`` for ``ttl_for(message)`` ms (``None``: forever) and wake waiters.

        Raises:
            KeyError: ``nx`` and a result already exists.
            TypeError: the result cannot be serialized; nothing was written.
        """
        self._run(self._set_steps(message, result, nx))

    def get(
        self,
        message: ResultSubject,
        timeout: int = 0,
        keep: bool = True,
        with_metadata: bool = False,
        descendants: bool = False,
    ) -> Any:
        """The result, or with ``descendants`` the list of the chain's results in chain order.

        ``timeout`` (ms) waits for the result(s) to arrive, woken by the write itself; it works
        from any thread. ``keep=False`` deletes them once read. ``with_metadata`` returns the
        records (``result``, ``timestamp``, ``uuid``) instead of the bare results.

        Raises:
            KeyError: no result and no ``timeout``.
            TimeoutError: the timeout passed (or the process was told to stop) first.
            TaskFailedError: the message (or one in the chain) failed for good.
        """
        return self._run(self._get_steps(message, timeout, keep, with_metadata, descendants))

    def delete(
        self, message: ResultSubject, descendants: bool = True, missing_ok: bool = False
    ) -> int:
        """Delete the result(s) and any failure record; returns how many names were processed.

        Raises:
            KeyError: a name had nothing to delete and not ``missing_ok`` (the others are gone).
        """
        return self._run(self._delete_steps(message, descendants, missing_ok))
