"""`cluster:` of conf/acd.yaml: absent by default, its settings read, file:line errors, and the
PostgreSQL store it needs."""

from pathlib import Path

import pytest

from acd.config.changes import restart_required
from acd.config.cluster_settings import ClusterSettings
from acd.config.loader import load_config
from acd.config.yaml_lines import ConfigInvalid

from tests.e2e.harness import write_config

REPO = Path(__file__).resolve().parents[3]
STORE = "store: postgresql://acd@127.0.0.1:5432/acd\n"


def load(tmp_path: Path, main_extra: str):
    write_config(tmp_path, sip_port=5060, rtp_base=20000, main_extra=main_extra)
    return load_config(tmp_path)


def errors(tmp_path: Path, main_extra: str) -> list[str]:
    with pytest.raises(ConfigInvalid) as caught:
        load(tmp_path, main_extra)
    return [f"{error.line}: {error.message}" for error in caught.value.errors]


def line_of(tmp_path: Path, text: str) -> int:
    lines = (tmp_path / "conf" / "acd.yaml").read_text().splitlines()
    return next(number for number, line in enumerate(lines, 1) if line.startswith(text))


def test_no_cluster_section_is_one_node():
    assert load_config(REPO).cluster is None


def test_settings_are_read_with_defaults(tmp_path):
    assert load(tmp_path, STORE + "cluster:\n  node_id: acd1\n").cluster == ClusterSettings(node_id="acd1")
    config = load(tmp_path, STORE + "cluster: {node_id: b-2, lease_seconds: 1.5, snapshot_every_entries: 100}\n")
    assert config.cluster == ClusterSettings(node_id="b-2", lease_seconds=1.5, snapshot_every_entries=100)


def test_a_cluster_needs_a_postgresql_store(tmp_path):
    found = errors(tmp_path, "cluster:\n  node_id: acd1\n")
    line = line_of(tmp_path, "cluster:")
    assert found == [f"{line}: cluster needs `store: postgresql://user@host:port/database` (the routing log and "
                     "the leader lease are shared through PostgreSQL); remove `cluster:` for one node"]


def test_bad_values_are_reported_at_their_line(tmp_path):
    found = errors(tmp_path, STORE + "cluster:\n  lease_seconds: 0.5\n  colour: blue\n")
    start = line_of(tmp_path, "cluster:")
    assert f"{start + 2}: unknown key 'colour' in cluster (expected one of: lease_seconds, node_id, " \
           "node_timeout_seconds, snapshot_every_entries)" in found
    assert f"{start + 1}: cluster lease_seconds must be between 1 and 60, not 0.5" in found
    assert f"{start}: cluster needs 'node_id' (unique per node, e.g. acd1)" in found
    found = errors(tmp_path, STORE + "cluster:\n  node_id: 'two words'\n")
    assert found == [f"{start + 1}: cluster node_id must be 1-63 letters, digits, '.', '_' or '-' (unique per "
                     "node, e.g. acd1), not 'two words'"]


def test_node_timeout_is_read_and_bounded(tmp_path):
    config = load(tmp_path, STORE + "cluster: {node_id: acd1, node_timeout_seconds: 1.5}\n")
    assert config.cluster.node_timeout_seconds == 1.5
    found = errors(tmp_path, STORE + "cluster:\n  node_id: acd1\n  node_timeout_seconds: 0.5\n")
    start = line_of(tmp_path, "cluster:")
    assert found == [f"{start + 2}: cluster node_timeout_seconds must be between 1 and 60, not 0.5: a node "
                     "heartbeats every third of it and each heartbeat may take up to a third, so below 1 s a "
                     "busy but live node would be declared dead"]


def test_changing_the_cluster_section_needs_a_restart(tmp_path):
    one = load(tmp_path, STORE + "cluster:\n  node_id: acd1\n")
    two = load(tmp_path, STORE + "cluster:\n  node_id: acd2\n")
    assert restart_required(one, two) == [
        "cluster ClusterSettings(node_id='acd1', lease_seconds=3.0, snapshot_every_entries=5000, "
        "node_timeout_seconds=3.0) -> ClusterSettings(node_id='acd2', lease_seconds=3.0, "
        "snapshot_every_entries=5000, node_timeout_seconds=3.0)"]
