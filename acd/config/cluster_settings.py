"""`cluster:` of conf/acd.yaml: this node's part in a routing cluster (issue 20).

Absent: one node, the routing engine in this process (today's behaviour). Present: several `acd
serve` processes sharing one PostgreSQL (`store: postgresql://...`) route as one contact centre,
one of them leading (acd/cluster/README.md). Every bad value is a `file:line` error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .checker import Checker
from .yaml_lines import ConfigError, LineDict

__all__ = ["ClusterSettings", "parse_cluster"]

NODE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
MIN_NODE_TIMEOUT = 1.0  # seconds: three heartbeats per timeout, each PostgreSQL statement bounded to a third


@dataclass(frozen=True, slots=True)
class ClusterSettings:
    """One node of a routing cluster."""

    node_id: str  # unique in the cluster: the lease holder's name and the origin of its events
    lease_seconds: float = 3.0  # a dead leader is replaced within about this long
    snapshot_every_entries: int = 5000  # the leader snapshots the engine once this many log entries follow the last
    node_timeout_seconds: float = 3.0  # a node silent this long is declared dead: its calls closed, its agents freed


def parse_cluster(path: Path, document: Any, errors: list[ConfigError], store: str | None) -> ClusterSettings | None:
    """`cluster: {node_id, lease_seconds, snapshot_every_entries, node_timeout_seconds}`; None when absent. Needs
    `store: postgresql://...` (the routing log and the lease live there)."""
    if not isinstance(document, LineDict) or "cluster" not in document:
        return None
    check = Checker(path, errors)
    line = document.line_of("cluster")
    section = check.mapping(document["cluster"], line, "cluster")
    if section is None:
        return None
    check.unknown_keys(section, {"node_id", "lease_seconds", "snapshot_every_entries", "node_timeout_seconds"},
                       "cluster")
    if not store and "store" not in document:
        check.error(line, "cluster needs `store: postgresql://user@host:port/database` (the routing log and "
                          "the leader lease are shared through PostgreSQL); remove `cluster:` for one node")
    if section.get("node_id") is None:
        check.error(line, "cluster needs 'node_id' (unique per node, e.g. acd1)")
    node_id = check.text(section, "node_id", "cluster")
    if node_id is not None and not NODE_ID.fullmatch(node_id):
        check.error(section.line_of("node_id"), f"cluster node_id must be 1-63 letters, digits, '.', '_' or '-' "
                                                f"(unique per node, e.g. acd1), not {node_id!r}")
        node_id = None
    lease = float(check.number(section, "lease_seconds", 3.0, "cluster", minimum=1, maximum=60))
    every = int(check.number(section, "snapshot_every_entries", 5000, "cluster", minimum=10, maximum=10_000_000,
                             integer=True))
    timeout = float(check.number(section, "node_timeout_seconds", 3.0, "cluster", minimum=0))
    if not MIN_NODE_TIMEOUT <= timeout <= 60:
        check.error(section.line_of("node_timeout_seconds"),
                    f"cluster node_timeout_seconds must be between {MIN_NODE_TIMEOUT:g} and 60, not {timeout:g}: a "
                    f"node heartbeats every third of it and each heartbeat may take up to a third, so below "
                    f"{MIN_NODE_TIMEOUT:g} s a busy but live node would be declared dead")
        timeout = 3.0
    if node_id is None:
        return None
    return ClusterSettings(node_id=node_id, lease_seconds=lease, snapshot_every_entries=every,
                           node_timeout_seconds=timeout)
