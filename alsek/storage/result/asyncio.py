"""``AsyncResultStore``: the asyncio shell over the operations of ``BaseResultStore``."""

from __future__ import annotations

from typing import Any

from alsek.core.steps.drivers import async_run
from alsek.core.steps.ops import Steps, T
from alsek.storage.backends.base import AsyncBackend
from alsek.storage.result._base import BaseResultStore, ResultSubject


class AsyncResultStore(BaseResultStore):
    """The asyncio twin of ``ResultStore``: same arguments (``default_ttl`` too), same methods,
    awaitable.

    Raises:
        AssertionError: ``Backend is not async``.
    """

    _IS_ASYNC = True

    def __init__(self, backend: AsyncBackend, default_ttl: int | None = None) -> None:
        super().__init__(backend, default_ttl)

    async def _run(self, steps: Steps[T]) -> T:
        return await async_run(steps, self.backend.conn)

    async def exists(self, message: ResultSubject, descendants: bool = False) -> bool:
        """Whether the result exists (with ``descendants``: every result of the chain)."""
        return await self._run(self._exists_steps(message, descendants))

    async def set(self, message: ResultSubject, result: Any, nx: bool = True) -> None:
        """Store ``result``; see ``ResultStore.set``."""
        await self._run(self._set_steps(message, result, nx))

    async def get(
        self,
        message: ResultSubject,
        timeout: int = 0,
        keep: bool = True,
        with_metadata: bool = False,
        descendants: bool = False,
    ) -> Any:
        """The result(s); see ``ResultStore.get``."""
        return await self._run(self._get_steps(message, timeout, keep, with_metadata, descendants))

    async def delete(
        self, message: ResultSubject, descendants: bool = True, missing_ok: bool = False
    ) -> int:
        """Delete the result(s); see ``ResultStore.delete``."""
        return await self._run(self._delete_steps(message, descendants, missing_ok))
