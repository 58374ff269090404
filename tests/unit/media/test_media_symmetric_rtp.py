"""When a leg learns where to send from the peer's RTP (acd/media/symmetric_rtp.py)."""

import pytest

from acd.media.symmetric_rtp import behind_nat, learns_source


@pytest.mark.parametrize("address", ["10.1.2.3", "172.16.0.9", "172.31.255.1", "192.168.1.20", "100.64.3.4",
                                     "169.254.10.1", "fd00::1", "fe80::1"])
def test_private_addresses_are_behind_nat(address):
    assert behind_nat(address) and learns_source("auto", address) and learns_source("always", address)


@pytest.mark.parametrize("address", ["127.0.0.1", "203.0.113.50", "172.32.0.1", "100.128.0.1", "8.8.8.8",
                                     "2001:db8::1", "::1", "not-an-address", ""])
def test_public_loopback_and_broken_addresses_are_learnt_only_when_always(address):
    assert not behind_nat(address) and not learns_source("auto", address)
    assert learns_source("always", address) == (address not in ("0.0.0.0", "::"))


@pytest.mark.parametrize("address", ["0.0.0.0", "::"])
def test_a_hold_address_is_never_learnt_from(address):
    assert not learns_source("always", address) and not learns_source("auto", address)


def test_off_never_learns():
    assert not learns_source("off", "192.168.1.20")
