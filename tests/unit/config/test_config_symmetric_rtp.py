"""`rtp: symmetric:` (conf/acd.yaml): default auto, the three settings, YAML booleans, file:line errors."""

from pathlib import Path

import pytest

from acd.config.loader import ConfigInvalid, load_config
from tests.e2e.harness import write_config


def tree(root: Path, symmetric: str | None = None) -> None:
    write_config(root, sip_port=5060, rtp_base=20000,
                 rtp_extra=f"  symmetric: {symmetric}\n" if symmetric is not None else "")


def test_default_is_auto_and_the_shipped_config_says_auto(tmp_path):
    tree(tmp_path)
    assert load_config(tmp_path).rtp.symmetric == "auto"
    shipped = Path(__file__).resolve().parents[3] / "conf" / "acd.yaml"
    assert "\n  symmetric: auto " in shipped.read_text()


@pytest.mark.parametrize(("written", "read"), [("auto", "auto"), ("always", "always"), ("off", "off"),
                                               ("true", "always"), ("false", "off"), ("on", "always")])
def test_each_setting_is_read(tmp_path, written, read):
    tree(tmp_path, written)
    assert load_config(tmp_path).rtp.symmetric == read


@pytest.mark.parametrize("written", ["yes-please", "comedia", "1"])
def test_a_bad_setting_names_its_file_and_line(tmp_path, written):
    tree(tmp_path, written)
    with pytest.raises(ConfigInvalid) as caught:
        load_config(tmp_path)
    path = tmp_path / "conf" / "acd.yaml"
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if "symmetric:" in text)
    found = {(Path(e.path).name, e.line): e.message for e in caught.value.errors}
    assert list(found) == [("acd.yaml", line)], found
    assert "rtp symmetric must be one of auto, always, off" in found[("acd.yaml", line)]
