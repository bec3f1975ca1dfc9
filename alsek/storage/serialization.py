"""Serializers turn values into strings for Redis and back.

``JsonSerializer`` is the default everywhere; its codec is msgspec's when installed (faster,
value for value the same: ``json_codec``), the standard library's otherwise.
``BinarySerializer`` (dill) can carry almost any Python object, at the price that anyone able
to write to Redis can run code on the workers.
"""

from __future__ import annotations

import base64
from abc import ABC, abstractmethod
from typing import Any

import dill

from alsek.storage.json_codec import codec_from_environment
from alsek.utils.printing import auto_repr

#: The codec of every ``JsonSerializer``, chosen once (``ALSEK_JSON_CODEC``, see ``json_codec``).
JSON_CODEC = codec_from_environment()


class Serializer(ABC):
    """Encodes values for the backend (``forward``) and decodes them (``reverse``)."""

    @staticmethod
    @abstractmethod
    def forward(obj: Any) -> Any:
        """Encode ``obj`` for storage."""

    @staticmethod
    @abstractmethod
    def reverse(obj: Any) -> Any:
        """Decode a stored value."""

    def __repr__(self) -> str:
        return auto_repr(self)

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self))


class JsonSerializer(Serializer):
    """JSON: portable and safe. Tuples come back as lists, dict keys as strings."""

    @staticmethod
    def forward(obj: Any) -> Any:
        """JSON text of ``obj``; a value JSON cannot encode raises ``TypeError`` naming its
        type."""
        try:
            return JSON_CODEC.dumps(obj)
        except (TypeError, ValueError) as error:
            raise TypeError(f"JsonSerializer cannot encode this value: {error}") from error

    @staticmethod
    def reverse(obj: Any) -> Any:
        """The value of JSON text, with ``None`` passed through."""
        if obj is None:
            return None
        return JSON_CODEC.loads(obj)


class BinarySerializer(Serializer):
    """dill pickles, base64-encoded: any Python object, but trust whoever writes to Redis."""

    @staticmethod
    def forward(obj: Any) -> Any:
        """Pickle with dill and base64-encode; an unpicklable value raises ``TypeError``."""
        try:
            return base64.b64encode(dill.dumps(obj)).decode("utf-8")
        except Exception as error:
            raise TypeError(f"BinarySerializer cannot encode this value: {error}") from error

    @staticmethod
    def reverse(obj: Any) -> Any:
        """Decode base64 and unpickle, with ``None`` passed through."""
        if obj is None:
            return None
        return dill.loads(base64.b64decode(obj))
