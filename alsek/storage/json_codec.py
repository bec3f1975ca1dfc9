"""The JSON codec behind ``JsonSerializer``: the standard library's, or msgspec's when installed.

msgspec (``pip install 'alsek[msgspec]'``) decodes a message body about 4 times as fast as
``json.loads`` (see docs/benchmarks.md). Both codecs read each other's output, and the msgspec
codec gives exactly what ``json`` gives, value for value:

* decoding tries msgspec, which reads only strict JSON (big integers exact, as ``json`` does);
  what it refuses (``NaN``, ``Infinity``, lone surrogates, ``1e400``) goes to ``json.loads``;
* encoding uses msgspec only for plain values (``str``, ``int``, ``bool``, ``None``, finite
  ``float``, ``list``, ``tuple``, ``dict`` with ``str`` keys, nothing subclassed), since msgspec
  would write ``null`` for ``NaN`` and accept values ``json`` refuses (``datetime``, ``UUID``,
  ``bytes``...). Anything else goes to ``json.dumps``, so it errs just as before.

The text differs only in spacing and in non-ASCII characters, written as UTF-8 rather than
``\\uXXXX`` escapes. ``ALSEK_JSON_CODEC=stdlib`` turns msgspec off where it is installed.
"""

from __future__ import annotations

import importlib
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: The environment variable that chooses the codec: ``auto`` (default), ``stdlib`` or ``msgspec``.
CODEC_VAR = "ALSEK_JSON_CODEC"
CODEC_NAMES = ("auto", "stdlib", "msgspec")

_SCALARS = frozenset({str, int, bool, type(None)})
_STR = frozenset({str})
_isfinite = math.isfinite


@dataclass(frozen=True)
class JsonCodec:
    """A pair of functions that turn values into JSON text and back."""

    name: str
    dumps: Callable[[Any], str]
    loads: Callable[[Any], Any]


def is_plain(obj: Any) -> bool:
    """Whether ``obj`` holds only values every codec writes alike (see the module docstring).

    The types of a container's items are gathered into a set in C, so a message body of
    scalars costs a few set operations rather than a Python step per field.
    """
    kind = type(obj)
    if kind in _SCALARS:
        return True
    if kind is float:
        return _isfinite(obj)
    if kind is dict:
        if not obj:
            return True
        if not _STR.issuperset(map(type, obj)):
            return False
        items: Any = obj.values()
    elif kind is list or kind is tuple:
        if not obj:
            return True
        items = obj
    else:
        return False
    if _SCALARS.issuperset(map(type, items)):
        return True
    for item in items:  # noqa: SIM110 (a loop, not all(): no generator per container)
        if type(item) not in _SCALARS and not is_plain(item):
            return False
    return True


def _stdlib_dumps(obj: Any) -> str:
    return json.dumps(obj)


STDLIB = JsonCodec("stdlib", _stdlib_dumps, json.loads)


def msgspec_codec() -> JsonCodec | None:
    """The msgspec codec, or ``None`` when msgspec is not installed."""
    try:
        msgspec = importlib.import_module("msgspec")
    except ImportError:
        return None
    encode = msgspec.json.Encoder().encode
    decode = msgspec.json.Decoder().decode
    refused = msgspec.DecodeError  # ValidationError (1e400) is one too

    def dumps(obj: Any) -> str:
        try:
            if is_plain(obj):
                return str(encode(obj).decode("utf-8"))
        except (ValueError, RecursionError):  # lone surrogates; deep nesting
            pass
        return json.dumps(obj)

    def loads(raw: Any) -> Any:
        try:
            return decode(raw)
        except refused:
            return json.loads(raw)

    return JsonCodec("msgspec", dumps, loads)


def pick_codec(name: str) -> JsonCodec:
    """The codec ``name`` names (``auto``: msgspec when installed); a one-line error else."""
    if name not in CODEC_NAMES:
        raise ValueError(f"{CODEC_VAR} must be one of {', '.join(CODEC_NAMES)}, not {name!r}")
    if name == "stdlib":
        return STDLIB
    fast = msgspec_codec()
    if fast is None and name == "msgspec":
        raise ValueError(
            f"{CODEC_VAR}=msgspec asks for msgspec, which is not installed: "
            "pip install 'alsek[msgspec]', or unset it"
        )
    return fast or STDLIB


def codec_from_environment() -> JsonCodec:
    """The codec ``ALSEK_JSON_CODEC`` names (``auto`` when unset)."""
    return pick_codec(os.environ.get(CODEC_VAR, "auto").strip().lower() or "auto")
