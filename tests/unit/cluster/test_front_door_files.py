"""The cluster's front door as shipped: conf/kamailio/kamailio.cfg passes Kamailio's own config check
with the defines scripts/cluster and the e2e tests give it, the dispatcher list it reads, and the
node config scripts/cluster writes from conf/acd.yaml."""

import shutil
import subprocess

import pytest
import yaml

from acd.devtools.kamailio_front import CONFIG, KamailioFront, dispatcher_list
from acd.devtools.local_cluster import REPO, node_config


def test_dispatcher_list_names_each_node_in_set_1_in_order():
    assert dispatcher_list([("127.0.0.11", 5060), ("127.0.0.12", 5070)]) == (
        "# setid destination flags priority attributes (written by acd.devtools.kamailio_front)\n"
        "1 sip:127.0.0.11:5060 0 0 node=1\n"
        "1 sip:127.0.0.12:5070 0 0 node=2\n")


@pytest.mark.skipif(shutil.which("kamailio") is None, reason="kamailio is not installed (scripts/setup)")
def test_the_shipped_kamailio_cfg_passes_kamailios_config_check(tmp_path):
    front = KamailioFront(tmp_path, "127.0.0.10", 5060, [("127.0.0.11", 5060)])
    (tmp_path / "dispatcher.list").write_text(dispatcher_list(front.nodes))
    command = [part for part in front.command() if part not in ("-DD", "-E")] + ["-c"]
    checked = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr[-3000:]
    assert CONFIG == REPO / "conf" / "kamailio" / "kamailio.cfg"


def test_a_node_config_puts_the_node_on_its_address_behind_the_front_door():
    shipped = yaml.safe_load((REPO / "conf" / "acd.yaml").read_text())
    config = node_config(shipped, host="127.0.0.12", sip_port=5060, http_port=8080, store="postgresql://acd@h/acd",
                         node_id="node2", front="127.0.0.10", cluster=False)
    assert (config["sip"]["listen"], config["sip"]["public_address"], config["rtp"]["address"],
            config["http"]["listen"]) == ("127.0.0.12",) * 4
    assert all(trunk["sources"] == ["127.0.0.10"] for trunk in config["trunks"].values())
    assert config["store"] == "postgresql://acd@h/acd" and "cluster" not in config
    assert config["sip"]["tls"] == shipped["sip"]["tls"], "the rest of the shipped settings stay"
    with_cluster = node_config(shipped, host="127.0.0.12", sip_port=5060, http_port=8080, store="postgresql://x",
                               node_id="node2", front="127.0.0.10", cluster=True)
    assert with_cluster["cluster"] == {"node_id": "node2"}
