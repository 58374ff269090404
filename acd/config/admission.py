"""`sip: admission:` of conf/acd.yaml (admission control of new calls, issue 21), and the capacity
warnings `acd check` and `acd serve` print when the RTP range cannot hold the call ceiling."""

from __future__ import annotations

from .checker import Checker
from .model import AdmissionSettings, Config
from .yaml_lines import LineDict

__all__ = ["parse_admission", "capacity_warnings"]

# Far above one process; the bounds keep typos (an extra zero) visible.
MAX_CALLS = 1_000_000
MAX_NEW_CALLS_PER_SECOND = 100_000
# A lag under a few milliseconds is a normal busy tick; over 10 s nobody is served anyway.
MIN_LAG_SECONDS, MAX_LAG_SECONDS = 0.005, 10.0
# RFC 3261 §20.33 allows any number of seconds; past an hour a carrier would treat us as gone.
MAX_RETRY_AFTER_SECONDS = 3600
WHAT = "sip admission"


def parse_admission(check: Checker, sip: LineDict) -> AdmissionSettings:
    """`sip: admission:` → AdmissionSettings (defaults for what is absent; errors at a bad value's line)."""
    default = AdmissionSettings()
    if "admission" not in sip:
        return default
    section = check.mapping(sip["admission"], sip.line_of("admission"), WHAT)
    if section is None:
        return default
    check.unknown_keys(section, {"max_calls", "max_new_calls_per_second", "overload_loop_lag_seconds",
                                 "retry_after_seconds"}, WHAT)
    max_calls = _auto(check, section, "max_calls", minimum=1, maximum=MAX_CALLS, integer=True,
                      what="a number of calls")
    rate = _auto(check, section, "max_new_calls_per_second", minimum=0, maximum=MAX_NEW_CALLS_PER_SECOND,
                 integer=False, what="a number of calls a second (0: no limit)")
    lag = float(check.number(section, "overload_loop_lag_seconds", default.overload_loop_lag_seconds, WHAT,
                             minimum=0, maximum=MAX_LAG_SECONDS))
    if 0 < lag < MIN_LAG_SECONDS:
        check.error(section.line_of("overload_loop_lag_seconds"),
                    f"{WHAT} overload_loop_lag_seconds must be 0 (not watched) or at least {MIN_LAG_SECONDS}: a "
                    f"smaller lag is every busy tick, not overload; not {lag}")
        lag = default.overload_loop_lag_seconds
    retry_after = int(check.number(section, "retry_after_seconds", default.retry_after_seconds, WHAT, minimum=1,
                                   maximum=MAX_RETRY_AFTER_SECONDS, integer=True))
    return AdmissionSettings(max_calls=None if max_calls is None else int(max_calls),
                             max_new_calls_per_second=None if rate is None else float(rate),
                             overload_loop_lag_seconds=lag, retry_after_seconds=retry_after)


def _auto(check: Checker, section: LineDict, name: str, *, minimum: float, maximum: float, integer: bool,
          what: str) -> float | None:
    """`auto` (None), or a number within bounds; an error names the setting, the bounds and the value."""
    value = section.get(name, "auto")
    if value == "auto":
        return None
    number_like = isinstance(value, int) or (isinstance(value, float) and not integer)
    if isinstance(value, bool) or not number_like or not minimum <= value <= maximum:
        check.error(section.line_of(name), f"{WHAT} {name} must be auto or {what}, {minimum:g}-{maximum:g}; "
                                           f"not {value!r}")
        return None
    return value


def capacity_warnings(config: Config) -> list[str]:
    """What the RTP range cannot hold: fewer call legs than the call ceiling (calls past them are
    refused for lack of a port, the costly way), or than the ceiling plus the agents' own legs."""
    rtp, admission = config.rtp, config.sip.admission
    legs = (rtp.port_max - rtp.port_min) // 2 + 1
    ceiling = admission.ceilings(rtp).max_calls
    agents = len(config.agents.agents) if config.agents is not None else 0
    needed_ports = 2 * (ceiling + agents)
    high = rtp.port_min + needed_ports - 1
    widen = (f"widen rtp ports to {rtp.port_min}-{high} or lower sip admission max_calls" if high <= 65535
             else "lower sip admission max_calls (or run a second server)")
    if legs < ceiling:
        return [f"rtp ports {rtp.port_min}-{rtp.port_max} hold {legs} call legs, fewer than sip admission max_calls "
                f"{ceiling}: calls past {legs} would be refused for want of a port; {widen}"]
    if legs < ceiling + agents:
        return [f"rtp ports {rtp.port_min}-{rtp.port_max} hold {legs} call legs: with {ceiling} calls in progress "
                f"(sip admission max_calls) only {legs - ceiling} are left for the legs to {agents} agents; {widen}"]
    return []
