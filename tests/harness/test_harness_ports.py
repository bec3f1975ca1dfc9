"""A cluster's nodes get distinct ports: the kernel may hand out a probed port again once its
probe socket is closed, and two nodes on one port never meet (a fresh clone's suite once lost
every cluster test to that)."""

from __future__ import annotations

from typing import Any

import pytest

from alsek.testing import ClusterServers, processes


def test_a_port_already_taken_is_not_picked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    handed_out = iter([40001, 40001, 40002])  # the kernel repeats itself once
    monkeypatch.setattr(processes, "free_port", lambda host=processes.LOOPBACK: next(handed_out))
    monkeypatch.setattr(processes, "_bindable", lambda port: True)
    assert processes.free_port_with_bus() == 40001
    assert processes.free_port_with_bus([40001]) == 40002


def test_a_port_that_is_another_nodes_bus_port_is_not_picked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    handed_out = iter([50001, 30001, 40003])  # 50001: 40001's bus; 30001: its bus is 40001
    monkeypatch.setattr(processes, "free_port", lambda host=processes.LOOPBACK: next(handed_out))
    monkeypatch.setattr(processes, "_bindable", lambda port: True)
    assert processes.free_port_with_bus([40001]) == 40003


def test_every_node_of_a_cluster_has_ports_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    # Built, not started: only the ports it picked are looked at.
    repeats: Any = iter([41001, 41001, 41002, 41002, 41003, 41004, 41005, 41006])
    monkeypatch.setattr(processes, "free_port", lambda host=processes.LOOPBACK: next(repeats))
    monkeypatch.setattr(processes, "_bindable", lambda port: True)
    cluster = ClusterServers(masters=3, replicas_per_master=1)
    ports = [server.port for server in cluster.servers]
    assert len(set(ports)) == 6
