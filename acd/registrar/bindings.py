"""The registrar's location table (RFC 3261 §10.3): address-of-record -> contact bindings. Pure.

Rules of this file:
- `BindingTable.apply` runs §10.3 steps 5-8 on an authenticated REGISTER and returns a
  `RegisterOutcome`: the status to answer, the AOR's bindings for the 200's Contact headers, and what
  changed, so the shell can persist exactly that (`acd.store.bindings_store`).
- All or nothing (§10.3 step 7: "committed ... if and only if all binding updates and additions
  succeed"): every check runs before the table changes, so a refused REGISTER changes nothing.
- Time is an argument; the shell arms one timer at `next_deadline()` and calls `expire(now)` (STYLE 2).
- The AOR is an opaque key: the shell canonicalises the To URI (step 5) before calling.
- Contacts are matched by a normalised URI key (scheme, user, host case-folded, port, parameters
  sorted), a practical subset of §19.1.4; the first spelling received is the one kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

from acd.sip.errors import RemoteProtocolError
from acd.sip.headers import NameAddr, SipUri

__all__ = ["Binding", "BindingTable", "RegisterOutcome", "ContactSpec", "parse_contact_values", "MAX_EXPIRES_PARAM"]

# (uri, expires parameter or None, q)
ContactSpec = tuple[str, int | None, float]

# RFC 3261 §20.19 (Expires) and §10.2.1.1: delta-seconds above 2**32-1 are taken as 2**32-1.
MAX_EXPIRES_PARAM = 2**32 - 1
# Absent q: RFC 3261 gives no default; like HTTP (RFC 7231 §5.3.1) we treat it as the top value 1.0.
DEFAULT_Q = 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Binding:
    """One contact bound to an address-of-record until `expires_at`.

    `updated_at` is when the binding was last added or refreshed: "most recent first" in `lookup`,
    and the victim choice when an AOR is over its contact limit. `source`/`transport` are where the
    REGISTER came from, the way back through NAT when the Contact holds a private address. `path` is
    the REGISTER's Path (RFC 3327, `acd.registrar.path`): the proxies requests to the contact go
    through, as their preloaded Route set; empty when the phone registered directly.
    """

    aor: str
    contact: str
    expires_at: float
    call_id: str
    cseq: int
    source: tuple[str, int]
    transport: str
    user_agent: str = ""
    q: float = DEFAULT_Q
    updated_at: float
    path: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.aor or not self.contact:
            raise ValueError("a binding needs an address-of-record and a contact")
        if not 0.0 <= self.q <= 1.0:
            raise ValueError(f"q {self.q} is outside 0-1 (RFC 3261 §20.10)")
        if self.cseq < 0:
            raise ValueError(f"CSeq {self.cseq} is negative")

    def expires_in(self, now: float) -> int:
        """Whole seconds left, rounded up, as written in the 200's `;expires=` (never below 0)."""
        remaining = self.expires_at - now
        whole = int(remaining)
        return max(0, whole + (1 if remaining > whole else 0))

    def contact_header_value(self, now: float) -> str:
        """`<uri>;expires=N[;q=x]`, one Contact value of the 200 OK (RFC 3261 §10.3 step 8)."""
        q = "" if self.q == DEFAULT_Q else f";q={self.q:g}"
        return f"<{self.contact}>;expires={self.expires_in(now)}{q}"


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisterOutcome:
    """The answer to one REGISTER: `status` (200, 400, 403, 423, 500), a reason phrase, and effects.

    `bindings` are the AOR's current bindings (after the change when 200, unchanged otherwise);
    `added`, `refreshed` go to `BindingStore.save`, `removed` to `BindingStore.delete`.
    `min_expires` is set with 423, for the Min-Expires header (§10.3 step 5).
    """

    status: int
    reason: str
    bindings: tuple[Binding, ...] = ()
    added: tuple[Binding, ...] = ()
    refreshed: tuple[Binding, ...] = ()
    removed: tuple[Binding, ...] = ()
    min_expires: int | None = None

    def __post_init__(self) -> None:
        if (self.status == 423) != (self.min_expires is not None):
            raise ValueError("min_expires goes with status 423, and only with it")
        if self.status != 200 and (self.added or self.refreshed or self.removed):
            raise ValueError(f"a {self.status} REGISTER changes no binding")

    def contact_header_values(self, now: float) -> list[str]:
        """Contact values for the 200 OK, one per current binding."""
        return [binding.contact_header_value(now) for binding in self.bindings]


def _contact_key(uri: str) -> tuple:
    parsed = SipUri.parse(uri)
    params = tuple(sorted((name, (value or "").lower()) for name, value in parsed.params.items()))
    return (parsed.scheme, parsed.user, parsed.host.lower(), parsed.port, params)


def _rank(binding: Binding) -> tuple[float, float]:
    return (-binding.q, -binding.updated_at)


class BindingTable:
    """All bindings, keyed by AOR then by contact key.

    Defaults: `min_expires=60` is RFC 3261 §10.2.8's example and what Kamailio/Asterisk use, short
    enough for NAT keep-alive by re-registration; `max_expires`/`default_expires` 3600 follow §10.2.1.1
    ("a default of one hour"). `max_contacts_per_aor=5`: an agent has one or two phones; the rest is
    room for a softphone that restarted or changed port before its old binding expired. When a REGISTER
    would exceed it, the least recently refreshed bindings are dropped (Asterisk's `remove_existing`):
    a 403 would lock the agent out until the stale bindings expired, up to an hour later. A single
    REGISTER asking for more contacts than the limit still gets 403.
    """

    def __init__(self, *, min_expires: int = 60, max_expires: int = 3600, default_expires: int = 3600,
                 max_contacts_per_aor: int = 5) -> None:
        if not 0 < min_expires <= default_expires <= max_expires:
            raise ValueError("expiry limits need 0 < min_expires <= default_expires <= max_expires")
        if max_contacts_per_aor < 1:
            raise ValueError("max_contacts_per_aor must be at least 1")
        self.min_expires = min_expires
        self.max_expires = max_expires
        self.default_expires = default_expires
        self.max_contacts_per_aor = max_contacts_per_aor
        self._by_aor: dict[str, dict[tuple, Binding]] = {}

    def apply(self, aor: str, contacts: Sequence[ContactSpec] | Literal["*"], expires_header: int | None,
              call_id: str, cseq: int, source: tuple[str, int], transport: str, user_agent: str,
              now: float, *, path: tuple[str, ...] = ()) -> RegisterOutcome:
        """Run one REGISTER's Contacts against the table (§10.3 steps 6-8); see the module docstring.
        `path`: the REGISTER's Path values (RFC 3327 §5.3), stored with each binding it adds or
        refreshes (a refresh through other proxies takes the new Path)."""
        current = self._by_aor.get(aor, {})
        if contacts == "*":
            return self._remove_all(aor, current, expires_header, call_id, cseq, now)
        wanted: dict[tuple, tuple[str, int, float]] = {}  # key -> (uri, expires, q); the last one wins
        for uri, expires_param, q in contacts:
            expires = self._expires(expires_param, expires_header)
            if 0 < expires < self.min_expires:
                return self._refused(aor, now, 423, "Interval Too Brief", min_expires=self.min_expires)
            wanted[_contact_key(uri)] = (uri, min(expires, self.max_expires), q)
        # A binding past expires_at but not yet swept by `expire` counts as absent, but keeps its
        # spelling of the contact, so the store's row for it is overwritten rather than orphaned.
        staying = dict(current)
        added, refreshed, removed = [], [], []
        for key, (uri, expires, q) in wanted.items():
            old = current.get(key)
            live = old is not None and old.expires_at > now
            if live and old.call_id == call_id and cseq <= old.cseq:
                # §10.3 step 6: same Call-ID needs a higher CSeq, "Otherwise, the update MUST be aborted".
                return self._refused(aor, now, 500, "Out Of Order Registration")
            if expires == 0:
                if old is not None:
                    removed.append(staying.pop(key))
                continue
            binding = Binding(aor=aor, contact=old.contact if old else uri, expires_at=now + expires,
                              call_id=call_id, cseq=cseq, source=source, transport=transport,
                              user_agent=user_agent, q=q, updated_at=now, path=tuple(path))
            staying[key] = binding
            (refreshed if live else added).append(binding)
        registering = {key for key, (_uri, expires, _q) in wanted.items() if expires}
        if len(registering) > self.max_contacts_per_aor:
            return self._refused(aor, now, 403, "Too Many Contacts")
        others = sorted((key for key, b in staying.items() if key not in registering and b.expires_at > now),
                        key=lambda key: staying[key].updated_at)
        excess = len(registering) + len(others) - self.max_contacts_per_aor
        for key in others[:max(0, excess)]:
            removed.append(staying.pop(key))
        self._set(aor, staying)
        return RegisterOutcome(status=200, reason="OK", bindings=tuple(self.lookup(aor, now)),
                               added=tuple(added), refreshed=tuple(refreshed), removed=tuple(removed))

    def _expires(self, expires_param: int | None, expires_header: int | None) -> int:
        # §10.3 step 6: the Contact's expires parameter, else the Expires header, else the default.
        if expires_param is not None:
            return expires_param
        if expires_header is not None:
            return expires_header
        return self.default_expires

    def _remove_all(self, aor: str, current: dict[tuple, Binding], expires_header: int | None,
                    call_id: str, cseq: int, now: float) -> RegisterOutcome:
        # §10.3 step 6: "*" only with Expires: 0 (and alone, checked by parse_contact_values).
        if expires_header != 0:
            return self._refused(aor, now, 400, "Wildcard Contact Needs Expires 0")
        for old in current.values():
            if old.expires_at > now and old.call_id == call_id and cseq <= old.cseq:
                return self._refused(aor, now, 500, "Out Of Order Registration")
        self._by_aor.pop(aor, None)
        return RegisterOutcome(status=200, reason="OK", removed=tuple(current.values()))

    def _refused(self, aor: str, now: float, status: int, reason: str, *,
                 min_expires: int | None = None) -> RegisterOutcome:
        return RegisterOutcome(status=status, reason=reason, bindings=tuple(self.lookup(aor, now)),
                               min_expires=min_expires)

    def _set(self, aor: str, bindings: dict[tuple, Binding]) -> None:
        if bindings:
            self._by_aor[aor] = bindings
        else:
            self._by_aor.pop(aor, None)

    def lookup(self, aor: str, now: float) -> list[Binding]:
        """Unexpired bindings of an AOR, best q first, then most recently refreshed first."""
        live = [b for b in self._by_aor.get(aor, {}).values() if b.expires_at > now]
        return sorted(live, key=_rank)

    def expire(self, now: float) -> list[Binding]:
        """Remove and return every binding whose time is up (expires_at <= now)."""
        expired: list[Binding] = []
        for aor in list(self._by_aor):
            bindings = self._by_aor[aor]
            gone = [key for key, binding in bindings.items() if binding.expires_at <= now]
            expired.extend(bindings.pop(key) for key in gone)
            self._set(aor, bindings)
        return expired

    def next_deadline(self) -> float | None:
        """When the next binding expires, or None when the table is empty.

        A linear scan: a call center has hundreds to a few thousand bindings, well under a millisecond.
        """
        return min((b.expires_at for bindings in self._by_aor.values() for b in bindings.values()), default=None)

    def restore(self, bindings: Sequence[Binding], now: float) -> list[Binding]:
        """Load bindings saved before a restart; return the expired ones (not loaded, to delete from the store)."""
        dropped: list[Binding] = []
        for binding in bindings:
            if binding.expires_at <= now:
                dropped.append(binding)
                continue
            self._by_aor.setdefault(binding.aor, {})[_contact_key(binding.contact)] = binding
        return dropped


def _parse_expires_param(value: str | None) -> int:
    # contact-params: c-p-expires = "expires" EQUAL delta-seconds; delta-seconds = 1*DIGIT (§25.1).
    if value is None or not (value.isascii() and value.isdigit()):
        raise RemoteProtocolError(f"Contact expires parameter {value!r} is not a number of seconds")
    return min(int(value), MAX_EXPIRES_PARAM)


def _parse_q(value: str | None) -> float:
    # qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )                     (§25.1)
    if value is None:
        raise RemoteProtocolError("Contact q parameter has no value")
    whole, _, fraction = value.partition(".")
    valid = (whole == "0" and len(fraction) <= 3 and (fraction == "" or (fraction.isascii() and fraction.isdigit()))) \
        or (whole == "1" and len(fraction) <= 3 and set(fraction) <= {"0"})
    if not valid:
        raise RemoteProtocolError(f"Contact q parameter {value!r} is not a qvalue between 0 and 1")
    return float(value)


def parse_contact_values(values: Sequence[str]) -> list[ContactSpec] | Literal["*"]:
    """Contact header elements (as split by `Headers.get_all`) -> [(uri, expires or None, q)] or "*".

    Raises RemoteProtocolError: 400 for a malformed address, expires or q, or a "*" that is not the
    only Contact (§10.3 step 6); 416 for a URI scheme other than sip/sips/tel (from SipUri.parse).
    """
    stripped = [value.strip() for value in values]
    if "*" in stripped:
        if len(stripped) != 1:
            raise RemoteProtocolError("Contact '*' must be the only Contact value")
        return "*"
    contacts: list[ContactSpec] = []
    for value in stripped:
        address = NameAddr.parse(value)
        SipUri.parse(address.uri)  # validate now: 400 or 416 instead of a failure inside the table
        expires = _parse_expires_param(address.params["expires"]) if "expires" in address.params else None
        q = _parse_q(address.params["q"]) if "q" in address.params else DEFAULT_Q
        contacts.append((address.uri, expires, q))
    return contacts
