"""The storage contract every backend fulfils, and the decisions sync and async backends share.

A backend stores alsek's keys under its namespace (``{namespace}:{name}``) and encodes values with
its serializer. ``BaseBackend`` holds every decision that needs no I/O: key prefixing, SET
arguments, decoding with the ``Empty``/default rules, SCAN patterns, batching, the rules for the
connection a backend accepts, and the settings that rebuild a backend in another process. So
``Backend`` and ``AsyncBackend``, and the Redis classes on top of them, are thin I/O shells.
"""

from __future__ import annotations

import logging
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from typing import Any, ClassVar, TypeVar

import dill
from redis import RedisError

from alsek.defaults import DEFAULT_NAMESPACE
from alsek.storage.backends.clients import (
    client_from_recipe,
    client_from_url,
    connection_kwargs,
    is_cluster,
    recipe_of,
)
from alsek.storage.backends.lazy import LazyClient
from alsek.storage.serialization import JsonSerializer, Serializer
from alsek.types import Empty
from alsek.utils.aggregation import gather_init_params
from alsek.utils.namespacing import validate_namespace
from alsek.utils.printing import auto_repr

#: Held while a ``LazyClient`` is resolved (rare: once per backend).
_RESOLVING = threading.RLock()

__all__ = [
    "SCAN_BATCH_SIZE",
    "AsyncBackend",
    "Backend",
    "BaseBackend",
    "glob_escape",
    "is_data_message",
    "parse_sub_data",
    "validate_namespace",
]

log = logging.getLogger(__name__)

#: Keys asked for per SCAN call, and deleted per UNLINK call when a namespace is cleared.
SCAN_BATCH_SIZE = 1000

_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")

BackendT = TypeVar("BackendT", bound="BaseBackend")
T = TypeVar("T")


def glob_escape(text: str) -> str:
    """Escape Redis MATCH glob syntax (``*?[]\\``) so ``text`` matches only itself."""
    return _GLOB_SPECIAL.sub(r"\\\1", text)


def is_data_message(entry: dict[str, Any]) -> bool:
    """True for a pub/sub entry that carries a published value (not a (un)subscribe notice)."""
    return entry.get("type") == "message" and bool(entry.get("data"))


def parse_sub_data(data: dict[str, Any], serializer: Serializer) -> dict[str, Any]:
    """Decode ``data["data"]`` in place when the entry is a published message, and return it."""
    if is_data_message(data):
        data["data"] = serializer.reverse(data["data"])
    return data


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


async def _async_chunks(items: AsyncIterable[T], size: int) -> AsyncIterator[list[T]]:
    chunk: list[T] = []
    async for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


class BaseBackend(ABC):
    """Storage under one namespace, with one serializer; the decisions sync and async share.

    Args:
        namespace: prefix of every key this backend touches (``{namespace}:{name}``).
        serializer: encodes values on the way in and decodes them on the way out.
    """

    IS_ASYNC: bool = False
    SUPPORTS_PUBSUB: bool = False
    #: Single-server client class a connection may be an instance of; ``None`` for backends
    #: without one.
    CLIENT_CLASS: ClassVar[type[Any] | None] = None
    #: Cluster client class a connection may be an instance of (``None``: no cluster).
    CLUSTER_CLIENT_CLASS: ClassVar[type[Any] | None] = None

    _conn: Any

    def __init__(
        self,
        namespace: str = DEFAULT_NAMESPACE,
        serializer: Serializer = JsonSerializer(),
    ) -> None:
        self.namespace = validate_namespace(namespace)
        self.serializer = serializer

    def __repr__(self) -> str:
        return auto_repr(self, namespace=self.namespace, serializer=self.serializer)

    # Connection rules, for backends that declare a CLIENT_CLASS.

    @classmethod
    def _client_classes(cls) -> tuple[type[Any], ...]:
        if cls.CLIENT_CLASS is None:
            raise NotImplementedError(f"{cls.__name__} declares no CLIENT_CLASS")
        cluster = cls.CLUSTER_CLIENT_CLASS
        return (cls.CLIENT_CLASS,) if cluster is None else (cls.CLIENT_CLASS, cluster)

    @classmethod
    def _conn_parse(cls, conn: Any) -> Any:
        """Turn the ``conn`` argument into a client, or a ``LazyClient`` to resolve later."""
        if isinstance(conn, LazyClient):
            return conn
        if conn is None:
            return cls._client_classes()[0](decode_responses=True)
        if isinstance(conn, str):
            return client_from_url(conn, asyncio=cls.IS_ASYNC, single=cls._client_classes()[0])
        return cls._check_client(conn)

    @classmethod
    def _check_client(cls, client: Any) -> Any:
        """Return ``client`` if this backend can use it, else raise ``ValueError`` saying why."""
        accepted = cls._client_classes()
        if not isinstance(client, accepted):
            names = " or ".join(f"a {_qualname(c)}" for c in accepted)
            raise ValueError(
                f"{cls.__name__} needs a Redis URL, a LazyClient, or {names} instance, "
                f"not {_qualname(type(client))}"
            )
        if not connection_kwargs(client).get("decode_responses"):
            raise ValueError(
                f"The {type(client).__name__} client given to {cls.__name__} must be created "
                "with decode_responses=True: alsek handles keys, values and lock owner ids as str"
            )
        return client

    def _resolve_conn(self) -> Any:
        """The client, built from the ``LazyClient`` if the backend was given one: once, also
        when several threads first ask at the same time (two clients could reach two
        different fakeredis servers)."""
        if isinstance(self._conn, LazyClient):
            with _RESOLVING:
                if isinstance(self._conn, LazyClient):
                    self._conn = self._check_client(self._conn.get())
        return self._conn

    @property
    def conn(self) -> Any:
        """The client this backend talks to (a ``LazyClient`` is resolved on first use, once)."""
        return self._resolve_conn()

    @property
    def is_cluster(self) -> bool:
        """Whether this backend talks to a Redis Cluster (one slot per script call)."""
        return self.CLUSTER_CLIENT_CLASS is not None and is_cluster(self._resolve_conn())

    # Moving a backend between processes.

    def encode(self) -> bytes:
        """Serialize this backend's class and settings, to rebuild it in another process.

        The connection travels as its pool settings, credentials included: pass the bytes to
        processes you trust (as alsek does with its own workers) and never store or log them.
        """
        settings = gather_init_params(self)
        if self.CLIENT_CLASS is not None:
            settings["conn"] = recipe_of(self._resolve_conn())
        encoded: bytes = dill.dumps({"backend": self.__class__, "settings": settings})
        return encoded

    @classmethod
    def from_settings(cls: type[BackendT], settings: dict[str, Any]) -> BackendT:
        """Rebuild a backend from the settings ``encode`` produced (new connections: a client is
        never shared between processes, whatever its kind)."""
        settings = dict(settings)
        if isinstance(settings.get("conn"), dict):
            settings["conn"] = client_from_recipe(settings["conn"], asyncio=cls.IS_ASYNC)
        return cls(**settings)

    @classmethod
    def from_url(
        cls: type[BackendT],
        url: str,
        namespace: str = DEFAULT_NAMESPACE,
        serializer: Serializer = JsonSerializer(),
    ) -> BackendT:
        """Build a backend connected to the Redis server at ``url`` (``redis://...``)."""
        if not isinstance(url, str):
            raise ValueError(f"url must be a str such as 'redis://localhost:6379/0', not {url!r}")
        return cls.from_settings({"conn": url, "namespace": namespace, "serializer": serializer})

    # Names.

    def in_namespace(self, name: str) -> bool:
        """True when ``name`` already carries this backend's ``{namespace}:`` prefix."""
        return name.startswith(f"{self.namespace}:")

    def full_name(self, name: str) -> str:
        """``{namespace}:{name}``; a name that already has the prefix comes back unchanged."""
        return name if self.in_namespace(name) else f"{self.namespace}:{name}"

    def short_name(self, name: str) -> str:
        """``name`` without one leading ``{namespace}:``; other names come back unchanged."""
        return re.sub(f"^{re.escape(self.namespace)}:", "", name, count=1)

    def _scan_match(self, pattern: str | None) -> str:
        """MATCH pattern for ``pattern`` (a glob on short names) inside this namespace only."""
        return f"{glob_escape(self.namespace)}:{self.short_name(pattern or '*')}"

    # Values.

    def _encode_value(self, name: str, value: Any) -> Any:
        """Encode ``value``; if the serializer cannot, raise ``TypeError`` naming ``name``."""
        try:
            return self.serializer.forward(value)
        except (TypeError, ValueError) as error:
            raise TypeError(
                f"Cannot store {name!r}: {type(self.serializer).__name__} cannot encode "
                f"a {type(value).__name__} value ({error})"
            ) from error

    def _set_arguments(
        self, name: str, value: Any, nx: bool, ttl: int | None
    ) -> tuple[str, Any, dict[str, Any]]:
        """Key, encoded value and SET options; raises before anything is written.

        Without a ``ttl`` an overwrite keeps the key's current expiry (``KEEPTTL``); with ``nx``
        the key is new, so there is nothing to keep.
        """
        if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int) or ttl <= 0):
            raise ValueError(f"ttl for {name!r} must be a positive int of ms or None, not {ttl!r}")
        encoded = self._encode_value(name, value)
        options = {"nx": nx, "px": ttl, "keepttl": ttl is None and not nx}
        return self.full_name(name), encoded, options

    @staticmethod
    def _check_set_response(name: str, nx: bool, response: Any) -> None:
        if nx and not response:
            raise KeyError(f"Name '{name}' already exists")

    def _decode_value(self, name: str, raw: Any, default: Any) -> Any:
        """Decode a fetched value; ``None`` means missing: ``default``, or ``KeyError`` if Empty."""
        if raw is None:
            if default is Empty or isinstance(default, Empty):
                raise KeyError(f"No key '{name}' in namespace '{self.namespace}'")
            return default
        return self.serializer.reverse(raw)

    def _check_deleted(self, name: str, deleted: int, missing_ok: bool) -> None:
        if not deleted and not missing_ok:
            raise KeyError(f"No key '{name}' in namespace '{self.namespace}' to delete")

    @staticmethod
    def _first_member(members: list[str]) -> str | None:
        return members[0] if members else None

    def _clear_failed(self, names: list[str], error: Exception, raise_on_error: bool) -> None:
        message = f"Could not delete {len(names)} keys of namespace '{self.namespace}': {error}"
        if raise_on_error:
            raise KeyError(message) from error
        log.warning(message)

    # The storage contract. Return types say ``| Any`` so that async twins fit.

    @abstractmethod
    def exists(self, name: str) -> bool | Any:
        """True when the key ``name`` exists."""

    @abstractmethod
    def set(self, name: str, value: Any, nx: bool = False, ttl: int | None = None) -> Any | None:
        """Store ``value``; ``ttl`` in ms, ``None`` keeps the current one; ``nx`` → ``KeyError``
        if the key exists. A value the serializer cannot encode raises ``TypeError`` first."""

    @abstractmethod
    def get(self, name: str, default: Any | type[Empty] | None = None) -> Any:
        """The decoded value, or ``default`` when missing (``KeyError`` if it is ``Empty``)."""

    @abstractmethod
    def delete(self, name: str, missing_ok: bool = False) -> Any | None:
        """Delete the key; a missing key raises ``KeyError`` unless ``missing_ok``."""

    @abstractmethod
    def priority_add(self, key: str, unique_id: str, priority: int | float) -> Any | None:
        """Add (or re-score) ``unique_id`` in the sorted set ``key``; lower scores come first."""

    @abstractmethod
    def priority_get(self, key: str) -> str | Any | None:
        """The member with the lowest score, without removing it, or ``None``."""

    def priority_iter(self, key: str) -> Iterable[str] | Any:
        """Every member, lowest score first."""
        raise NotImplementedError(f"{type(self).__name__} does not iterate priorities")

    @abstractmethod
    def priority_remove(self, key: str, unique_id: str) -> Any | None:
        """Remove ``unique_id`` from the sorted set ``key``."""

    def pub(self, channel: str, value: Any) -> Any | None:
        """Publish ``value`` on ``channel`` (channels are not namespaced)."""
        raise NotImplementedError(f"{type(self).__name__} does not support pub/sub")

    def sub(self, channel: str) -> Iterable[str | dict[str, Any]] | Any:
        """Yield messages published on ``channel``; closing the iterator unsubscribes."""
        raise NotImplementedError(f"{type(self).__name__} does not support pub/sub")

    @abstractmethod
    def scan(self, pattern: str | None = None) -> Iterable[str] | Any:
        """Short names of the keys in this namespace matching the glob ``pattern``."""

    @abstractmethod
    def count(self, pattern: str | None = None) -> int | Any:
        """How many keys in this namespace match ``pattern``."""

    @abstractmethod
    def clear_namespace(self, raise_on_error: bool = True) -> int | Any:
        """Delete every ``{namespace}:*`` key and return how many were deleted.

        Only keys under the namespace: lock keys (``lock:{namespace}:...``) are left to expire.
        A batch Redis refuses to delete raises ``KeyError`` if ``raise_on_error``, else is
        logged as a warning and the sweep goes on.
        """


class Backend(BaseBackend, ABC):
    """A backend whose methods block and return values."""

    IS_ASYNC = False

    @abstractmethod
    def _delete_many(self, names: list[str]) -> int:
        """Delete these keys in one call and return how many existed."""

    def count(self, pattern: str | None = None) -> int:
        """How many keys in this namespace match ``pattern`` (one SCAN pass)."""
        return sum(1 for _ in self.scan(pattern))

    def clear_namespace(self, raise_on_error: bool = True) -> int:
        """Delete every ``{namespace}:*`` key, many per call; see ``BaseBackend``."""
        deleted = 0
        for names in _chunks(self.scan(), SCAN_BATCH_SIZE):
            try:
                deleted += self._delete_many(names)
            except RedisError as error:
                self._clear_failed(names, error, raise_on_error)
        return deleted


class AsyncBackend(BaseBackend, ABC):
    """A backend whose methods are coroutines; ``scan``, ``sub``, ``priority_iter`` stream."""

    IS_ASYNC = True

    # The storage contract again, as coroutines, so that callers know to await them.

    @abstractmethod
    async def exists(self, name: str) -> bool:
        """True when the key ``name`` exists."""

    @abstractmethod
    async def set(self, name: str, value: Any, nx: bool = False, ttl: int | None = None) -> None:
        """Store ``value``; see ``BaseBackend.set``."""

    @abstractmethod
    async def get(self, name: str, default: Any | type[Empty] | None = Empty) -> Any:
        """The decoded value, or ``default`` when missing (``KeyError`` if it is ``Empty``)."""

    @abstractmethod
    async def delete(self, name: str, missing_ok: bool = False) -> None:
        """Delete the key; a missing key raises ``KeyError`` unless ``missing_ok``."""

    @abstractmethod
    async def priority_add(self, key: str, unique_id: str, priority: int | float) -> None:
        """Add (or re-score) ``unique_id`` in the sorted set ``key``; lower scores come first."""

    @abstractmethod
    async def priority_get(self, key: str) -> str | None:
        """The member with the lowest score, without removing it, or ``None``."""

    @abstractmethod
    async def priority_remove(self, key: str, unique_id: str) -> None:
        """Remove ``unique_id`` from the sorted set ``key``."""

    @abstractmethod
    def scan(self, pattern: str | None = None) -> AsyncIterator[str]:
        """Short names of the keys in this namespace matching the glob ``pattern``."""

    @abstractmethod
    async def _delete_many(self, names: list[str]) -> int:
        """Delete these keys in one call and return how many existed."""

    async def count(self, pattern: str | None = None) -> int:
        """How many keys in this namespace match ``pattern`` (one SCAN pass)."""
        total = 0
        async for _ in self.scan(pattern):
            total += 1
        return total

    async def clear_namespace(self, raise_on_error: bool = True) -> int:
        """Delete every ``{namespace}:*`` key, many per call; see ``BaseBackend``."""
        deleted = 0
        async for names in _async_chunks(self.scan(), SCAN_BATCH_SIZE):
            try:
                deleted += await self._delete_many(names)
            except RedisError as error:
                self._clear_failed(names, error, raise_on_error)
        return deleted
