"""The `dtmf:` mode of trunks (conf/acd.yaml): default auto, the four modes, file:line errors, and a
change listed for the reload."""

from pathlib import Path

import pytest

from acd.config.changes import describe_changes
from acd.config.loader import ConfigInvalid, load_config
from tests.e2e.harness import write_config


def demo_tree(root: Path, *, dtmf: str | None = None) -> None:
    """The shipped demo config with a `dtmf:` line on the trunk."""
    write_config(root, sip_port=5060, rtp_base=20000, trunk_extra=f"dtmf: {dtmf}" if dtmf is not None else "")


def test_default_is_auto_and_the_shipped_config_says_auto(tmp_path):
    demo_tree(tmp_path)
    assert load_config(tmp_path).trunks[0].dtmf == "auto"
    shipped = Path(__file__).resolve().parents[3] / "conf" / "acd.yaml"
    assert "    dtmf: auto\n" in shipped.read_text()


@pytest.mark.parametrize("mode", ["auto", "rfc4733", "info", "inband"])
def test_each_mode_is_read(tmp_path, mode):
    demo_tree(tmp_path, dtmf=mode)
    assert load_config(tmp_path).trunks[0].dtmf == mode


@pytest.mark.parametrize("written", ["rfc2833", "tones", "true", "4733"])
def test_a_bad_mode_names_its_file_and_line(tmp_path, written):
    demo_tree(tmp_path, dtmf=written)
    with pytest.raises(ConfigInvalid) as caught:
        load_config(tmp_path)
    path = tmp_path / "conf" / "acd.yaml"
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if "dtmf:" in text)
    found = {(Path(e.path).name, e.line): e.message for e in caught.value.errors}
    assert list(found) == [("acd.yaml", line)], found
    assert "trunk 'test' dtmf must be one of auto, rfc4733, info, inband" in found[("acd.yaml", line)]


def test_a_mode_change_is_listed_for_the_reload(tmp_path):
    demo_tree(tmp_path)
    before = load_config(tmp_path)
    demo_tree(tmp_path, dtmf="inband")
    assert "trunk test: dtmf 'auto' -> 'inband'" in describe_changes(before, load_config(tmp_path))
