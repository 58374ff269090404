"""When a media leg learns where to send from the peer's RTP (symmetric RTP, RFC 4961 "comedia").

`rtp: symmetric:` in conf/acd.yaml: "auto" (the default) learns only for an SDP address behind NAT
for sure: one of the private ranges a phone behind a NAT writes into its SDP (RFC 1918, RFC 6598
shared address space, link-local, IPv6 unique-local and link-local), which no packet of ours could
reach across the Internet anyway; "always" learns for every SDP address (a phone that puts its
public address in SDP but sits behind a NAT that changes ports); "off" never learns (asymmetric
peers that send from one port and receive on another). The learning itself is in
acd.calls.rtp_leg.RtpLeg.
"""

from __future__ import annotations

import functools
import ipaddress

__all__ = ["SYMMETRIC_SETTINGS", "behind_nat", "learns_source"]

SYMMETRIC_SETTINGS = ("auto", "always", "off")

_NAT_NETWORKS = tuple(ipaddress.ip_network(network) for network in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",  # RFC 1918
    "100.64.0.0/10",                                  # RFC 6598, carrier-grade NAT
    "169.254.0.0/16",                                 # RFC 3927 link-local
    "fc00::/7", "fe80::/10",                          # RFC 4193 unique-local, link-local
))


@functools.lru_cache(maxsize=1024)  # every leg asks; ipaddress parsing was ~6 % of the media worker's samples
def behind_nat(address: str) -> bool:
    """True when `address` (an SDP connection address) is in a private range only reachable behind NAT."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in _NAT_NETWORKS)


def learns_source(setting: str, address: str) -> bool:
    """Whether a leg whose peer's SDP says `address` learns where to send from the peer's RTP."""
    if setting == "always":
        return address not in ("0.0.0.0", "::")  # RFC 2543 hold: nothing to send to, nothing to learn
    return setting == "auto" and behind_nat(address)
