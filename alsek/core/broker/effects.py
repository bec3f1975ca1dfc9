"""Writes that ride along with a broker operation, in the same round trip.

The status tracker and the result store (layers above the broker) describe what they want written
as effects; the broker's script applies them only when its own operation succeeds. Keys are full
Redis keys (already namespaced by whoever built them); values are already serialized.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class SetEffect:
    """``SET key value``: with ``PX ttl`` (ms) when ``ttl`` is set, ``KEEPTTL`` when ``keep_ttl``,
    ``NX`` when ``nx`` (an existing value is then kept, and the operation still succeeds)."""

    key: str
    value: str
    ttl: int | None = None
    keep_ttl: bool = False
    nx: bool = False


@dataclass(frozen=True)
class PublishEffect:
    """``PUBLISH channel payload``."""

    channel: str
    payload: str


Effect = SetEffect | PublishEffect


@dataclass(frozen=True)
class ClaimStatus:
    """A status written for every message a claim takes (RUNNING, typically).

    ``key_template`` and ``channel_template`` are full names with the placeholders ``<queue>``,
    ``<task>`` and ``<uuid>``; ``tasks`` limits it to those task names (``None``: every task).
    """

    key_template: str
    channel_template: str
    payload: str
    ttl: int
    tasks: frozenset[str] | None = None


def encode_effects(effects: Iterable[Effect]) -> list[str | int]:
    """Flatten effects into the ARGV tail every script reads (see ``apply_effects`` in lib.lua)."""
    sets: list[str | int] = []
    publishes: list[str | int] = []
    n_sets = n_publishes = 0
    for effect in effects:
        if isinstance(effect, SetEffect):
            ttl = -1 if effect.keep_ttl else (effect.ttl or 0)
            sets += [effect.key, effect.value, ttl, "1" if effect.nx else "0"]
            n_sets += 1
        else:
            publishes += [effect.channel, effect.payload]
            n_publishes += 1
    return [n_sets, *sets, n_publishes, *publishes]


def encode_claim_status(status: ClaimStatus | None) -> list[str | int]:
    """ARGV slice describing the per-claim status write (empty template: none)."""
    if status is None:
        return ["", "", "", 0, -1]
    tasks: Sequence[str] = sorted(status.tasks) if status.tasks is not None else ()
    n_tracked = len(tasks) if status.tasks is not None else -1
    return [
        status.key_template,
        status.channel_template,
        status.payload,
        status.ttl,
        n_tracked,
        *tasks,
    ]
