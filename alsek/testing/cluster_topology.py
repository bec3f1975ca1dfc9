"""Reading a cluster's own account of itself: ``CLUSTER NODES`` lines as plain records.

Pure functions, no I/O: ``ClusterServers`` asks each node and compares what they say.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from redis.crc import key_slot as _key_slot

__all__ = ["SLOT_COUNT", "NodeRecord", "parse_cluster_nodes", "slot_of", "split_slots"]

SLOT_COUNT = 16384
_DOUBTFUL_FLAGS = frozenset({"fail", "fail?", "handshake", "noaddr"})


@dataclass(frozen=True)
class NodeRecord:
    """One line of ``CLUSTER NODES``: one node as the answering node sees it."""

    node_id: str
    port: int
    flags: frozenset[str]
    master_id: str | None
    connected: bool
    slot_ranges: tuple[tuple[int, int], ...]

    @property
    def is_master(self) -> bool:
        """Whether it is a master (with or without slots)."""
        return "master" in self.flags

    @property
    def is_replica(self) -> bool:
        """Whether it replicates a master."""
        return "slave" in self.flags

    @property
    def is_myself(self) -> bool:
        """Whether this line is the answering node itself."""
        return "myself" in self.flags

    @property
    def in_doubt(self) -> bool:
        """Failing, suspected, or not yet properly met."""
        return bool(self.flags & _DOUBTFUL_FLAGS)

    def serves(self, slot: int) -> bool:
        """Whether ``slot`` is in one of its ranges."""
        return any(first <= slot <= last for first, last in self.slot_ranges)


def parse_cluster_nodes(text: str) -> list[NodeRecord]:
    """Records from a ``CLUSTER NODES`` reply (lines of ``id addr flags master ... slots``)."""
    records = []
    for line in text.strip().splitlines():
        fields = line.split()
        if len(fields) < 8:
            continue
        node_id, address, flags, master_id = fields[:4]
        host_port = address.split("@", 1)[0].split(",", 1)[0]
        port_text = host_port.rpartition(":")[2]
        records.append(
            NodeRecord(
                node_id=node_id,
                port=int(port_text) if port_text.isdigit() else 0,
                flags=frozenset(flags.split(",")),
                master_id=None if master_id == "-" else master_id,
                connected=fields[7] == "connected",
                slot_ranges=_slot_ranges(fields[8:]),
            )
        )
    return records


def _slot_ranges(fields: Sequence[str]) -> tuple[tuple[int, int], ...]:
    """``0-5460`` and ``5461`` fields as ranges; ``[slot->-id]`` migration marks are skipped."""
    ranges = []
    for field in fields:
        if field.startswith("["):
            continue
        first, _, last = field.partition("-")
        ranges.append((int(first), int(last or first)))
    return tuple(ranges)


def split_slots(masters: int) -> list[range]:
    """All slots in ``masters`` contiguous, near-equal ranges (as ``redis-cli --cluster`` does)."""
    bounds = [round(index * SLOT_COUNT / masters) for index in range(masters + 1)]
    return [range(bounds[index], bounds[index + 1]) for index in range(masters)]


def slot_of(key: str | bytes) -> int:
    """The hash slot of ``key`` (hash tags ``{...}`` honoured)."""
    return int(_key_slot(key.encode() if isinstance(key, str) else key))
