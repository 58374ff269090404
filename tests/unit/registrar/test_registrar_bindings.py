"""The registrar's location table (RFC 3261 §10.3) and the Contact parser."""

import pytest

from acd.registrar.bindings import MAX_EXPIRES_PARAM, Binding, BindingTable, RegisterOutcome, parse_contact_values
from acd.sip.errors import RemoteProtocolError

AOR = "sip:1001@acd.example"
PHONE = "sip:1001@192.0.2.10:5060"
OTHER_PHONE = "sip:1001@192.0.2.11:5062;transport=tcp"
SOURCE = ("198.51.100.7", 40000)
T0 = 1000.0


def register(table, contacts, *, expires=None, call_id="call-1", cseq=1, now=T0, aor=AOR):
    """One REGISTER as the shell would pass it."""
    return table.apply(aor, contacts, expires, call_id, cseq, SOURCE, "UDP", "Zoiper 5", now)


def one(uri=PHONE, expires=None, q=1.0):
    return [(uri, expires, q)]


# Adding, refreshing, removing ----------------------------------------------------------------------

def test_first_register_adds_a_binding_with_the_default_expiry():
    table = BindingTable()
    outcome = register(table, one())
    assert (outcome.status, outcome.reason) == (200, "OK")
    [binding] = outcome.added
    assert binding == Binding(aor=AOR, contact=PHONE, expires_at=T0 + 3600, call_id="call-1", cseq=1,
                              source=SOURCE, transport="UDP", user_agent="Zoiper 5", q=1.0, updated_at=T0)
    assert outcome.bindings == (binding,)
    assert outcome.refreshed == outcome.removed == ()
    assert outcome.contact_header_values(T0) == [f"<{PHONE}>;expires=3600"]


def test_expires_parameter_beats_header_beats_default():
    """§10.3 step 6: the Contact's expires parameter, else the Expires header, else the default."""
    table = BindingTable()
    assert register(table, one(expires=120), expires=600).added[0].expires_at == T0 + 120
    assert register(table, one(OTHER_PHONE), expires=600).added[0].expires_at == T0 + 600


def test_long_expiry_is_shortened_to_max_expires():
    table = BindingTable(max_expires=1800, default_expires=1800)
    outcome = register(table, one(expires=86_400))
    assert outcome.added[0].expires_at == T0 + 1800
    assert outcome.contact_header_values(T0 + 0.5) == [f"<{PHONE}>;expires=1800"]  # rounded up


def test_short_expiry_is_423_with_min_expires_and_changes_nothing():
    """§10.3 step 5: a non-zero interval below the minimum is 423 Interval Too Brief + Min-Expires."""
    table = BindingTable(min_expires=60)
    outcome = register(table, one(expires=30))
    assert (outcome.status, outcome.min_expires) == (423, 60)
    assert outcome.added == () and table.lookup(AOR, T0) == []


def test_refresh_with_a_higher_cseq_extends_the_binding():
    table = BindingTable()
    register(table, one(expires=300))
    outcome = register(table, one(expires=300), cseq=2, now=T0 + 200)
    assert outcome.added == ()
    [binding] = outcome.refreshed
    assert (binding.expires_at, binding.cseq, binding.updated_at) == (T0 + 500, 2, T0 + 200)
    assert table.lookup(AOR, T0 + 400) == [binding]


def test_refresh_keeps_the_first_spelling_of_an_equivalent_contact():
    """Host case and parameter order do not make a new binding (a subset of §19.1.4 URI equality)."""
    table = BindingTable()
    register(table, one("sip:1001@Host.example;transport=udp;ob"))
    outcome = register(table, one("sip:1001@host.example;ob;transport=UDP"), cseq=2)
    assert outcome.refreshed[0].contact == "sip:1001@Host.example;transport=udp;ob"
    assert len(table.lookup(AOR, T0)) == 1


def test_same_call_id_with_a_cseq_not_higher_is_500_out_of_order():
    """§10.3 step 6: "Otherwise, the update MUST be aborted and the request fails"."""
    table = BindingTable()
    register(table, one(), cseq=5)
    for cseq in (5, 4):
        outcome = register(table, one(expires=0), cseq=cseq)
        assert (outcome.status, outcome.removed) == (500, ())
    assert len(table.lookup(AOR, T0)) == 1


def test_new_call_id_replaces_the_binding_whatever_its_cseq():
    """A phone that restarted picks a new Call-ID and starts CSeq again from 1."""
    table = BindingTable()
    register(table, one(), cseq=50)
    outcome = register(table, one(), call_id="call-2", cseq=1, now=T0 + 10)
    assert outcome.status == 200 and outcome.refreshed[0].call_id == "call-2"


def test_expires_zero_removes_the_binding():
    table = BindingTable()
    register(table, one())
    outcome = register(table, one(expires=0), cseq=2)
    assert outcome.status == 200
    assert [b.contact for b in outcome.removed] == [PHONE]
    assert outcome.bindings == () and table.lookup(AOR, T0) == []
    assert table.next_deadline() is None


def test_removing_an_unknown_contact_is_a_harmless_200():
    outcome = register(BindingTable(), one(expires=0))
    assert (outcome.status, outcome.removed, outcome.bindings) == (200, (), ())


def test_register_without_contact_is_a_query():
    """§10.3 step 8: no Contact: answer 200 with the current bindings, change nothing."""
    table = BindingTable()
    register(table, one())
    outcome = register(table, [], call_id="query", cseq=1)
    assert outcome.status == 200 and [b.contact for b in outcome.bindings] == [PHONE]
    assert outcome.added == outcome.refreshed == outcome.removed == ()


def test_one_bad_contact_aborts_the_whole_register():
    """§10.3 step 7: bindings are committed only if every update succeeds."""
    table = BindingTable()
    register(table, one(), cseq=5)
    outcome = register(table, [(OTHER_PHONE, None, 1.0), (PHONE, None, 1.0)], cseq=5)
    assert outcome.status == 500
    assert [b.contact for b in table.lookup(AOR, T0)] == [PHONE]


# Wildcard ------------------------------------------------------------------------------------------

def test_wildcard_with_expires_zero_removes_every_binding():
    table = BindingTable()
    register(table, [(PHONE, None, 1.0), (OTHER_PHONE, None, 1.0)])
    outcome = register(table, "*", expires=0, cseq=2)
    assert outcome.status == 200
    assert sorted(b.contact for b in outcome.removed) == sorted([PHONE, OTHER_PHONE])
    assert table.lookup(AOR, T0) == []


@pytest.mark.parametrize("expires", [None, 3600])
def test_wildcard_without_expires_zero_is_400(expires):
    table = BindingTable()
    register(table, one())
    outcome = register(table, "*", expires=expires, cseq=2)
    assert outcome.status == 400 and len(outcome.bindings) == 1


def test_wildcard_with_an_old_cseq_is_500():
    table = BindingTable()
    register(table, one(), cseq=7)
    assert register(table, "*", expires=0, cseq=7).status == 500
    assert register(table, "*", expires=0, call_id="another", cseq=1).status == 200


# Contact limit -------------------------------------------------------------------------------------

def test_over_the_contact_limit_the_least_recently_refreshed_binding_is_dropped():
    table = BindingTable(max_contacts_per_aor=2)
    register(table, one("sip:a@192.0.2.1"), call_id="a", now=T0)
    register(table, one("sip:b@192.0.2.2"), call_id="b", now=T0 + 1)
    register(table, one("sip:a@192.0.2.1"), call_id="a", cseq=2, now=T0 + 2)  # a is now the fresher
    outcome = register(table, one("sip:c@192.0.2.3"), call_id="c", now=T0 + 3)
    assert outcome.status == 200
    assert [b.contact for b in outcome.removed] == ["sip:b@192.0.2.2"]
    assert [b.contact for b in outcome.bindings] == ["sip:c@192.0.2.3", "sip:a@192.0.2.1"]


def test_one_register_with_more_contacts_than_the_limit_is_403():
    table = BindingTable(max_contacts_per_aor=2)
    contacts = [(f"sip:{n}@192.0.2.{n}", None, 1.0) for n in range(1, 4)]
    outcome = register(table, contacts)
    assert outcome.status == 403 and table.lookup(AOR, T0) == []


# Lookup, expiry, restore ---------------------------------------------------------------------------

def test_lookup_orders_by_q_then_most_recent():
    table = BindingTable()
    register(table, one("sip:low@192.0.2.1", q=0.5), call_id="1", now=T0)
    register(table, one("sip:old@192.0.2.2"), call_id="2", now=T0 + 1)
    register(table, one("sip:new@192.0.2.3"), call_id="3", now=T0 + 2)
    assert [b.contact for b in table.lookup(AOR, T0 + 3)] == ["sip:new@192.0.2.3", "sip:old@192.0.2.2",
                                                              "sip:low@192.0.2.1"]
    assert table.lookup("sip:nobody@acd.example", T0) == []


def test_lookup_hides_expired_bindings_before_the_sweep():
    table = BindingTable()
    register(table, one(expires=60))
    assert table.lookup(AOR, T0 + 59.9) != []
    assert table.lookup(AOR, T0 + 60) == []


def test_expire_at_next_deadline_removes_exactly_the_due_bindings():
    """Tests jump time with table.expire(table.next_deadline()), as STYLE 2 asks."""
    table = BindingTable()
    register(table, one(PHONE, expires=60))
    register(table, one(OTHER_PHONE, expires=120), call_id="call-2")
    assert table.next_deadline() == T0 + 60
    assert [b.contact for b in table.expire(table.next_deadline())] == [PHONE]
    assert table.next_deadline() == T0 + 120
    assert [b.contact for b in table.expire(table.next_deadline())] == [OTHER_PHONE]
    assert table.next_deadline() is None and table.expire(T0 + 10_000) == []


def test_expired_but_unswept_binding_is_added_again_not_refreshed():
    """A REGISTER arriving after expiry, before the sweep, is a new binding even with an old CSeq."""
    table = BindingTable()
    register(table, one(expires=60), cseq=9)
    outcome = register(table, one(expires=60), cseq=9, now=T0 + 61)
    assert outcome.status == 200 and len(outcome.added) == 1 and outcome.refreshed == ()


def test_restore_loads_live_bindings_and_returns_expired_ones():
    table = BindingTable()
    register(table, one(PHONE, expires=600))
    register(table, one(OTHER_PHONE, expires=60), call_id="call-2")
    saved = table.lookup(AOR, T0)
    after_restart = BindingTable()
    dropped = after_restart.restore(saved, T0 + 100)
    assert [b.contact for b in dropped] == [OTHER_PHONE]
    assert [b.contact for b in after_restart.lookup(AOR, T0 + 100)] == [PHONE]
    # The restored binding keeps its Call-ID/CSeq: an old retransmission is still out of order.
    assert register(after_restart, one(PHONE), cseq=1, now=T0 + 100).status == 500


def test_table_limits_are_checked():
    with pytest.raises(ValueError):
        BindingTable(min_expires=600, default_expires=300)
    with pytest.raises(ValueError):
        BindingTable(max_contacts_per_aor=0)


def test_outcome_and_binding_check_themselves():
    with pytest.raises(ValueError):
        RegisterOutcome(status=423, reason="Interval Too Brief")
    binding = register(BindingTable(), one()).added[0]
    with pytest.raises(ValueError):
        RegisterOutcome(status=500, reason="Server Error", added=(binding,))
    with pytest.raises(ValueError):
        Binding(aor=AOR, contact=PHONE, expires_at=1, call_id="c", cseq=1, source=SOURCE, transport="UDP",
                q=1.5, updated_at=0)


# Contact parsing -----------------------------------------------------------------------------------

def test_parse_contacts_with_expires_and_q():
    values = ['"Agent 1001" <sip:1001@192.0.2.10:5060;transport=udp>;expires=300;q=0.7',
              "<sip:1001@192.0.2.11>", "sip:1001@192.0.2.12;expires=0"]
    assert parse_contact_values(values) == [
        ("sip:1001@192.0.2.10:5060;transport=udp", 300, 0.7),
        ("sip:1001@192.0.2.11", None, 1.0),
        ("sip:1001@192.0.2.12", 0, 1.0),
    ]


def test_parse_wildcard():
    assert parse_contact_values([" * "]) == "*"


def test_huge_expires_is_capped_at_2_to_the_32_minus_1():
    """§20.19: delta-seconds above 2**32-1 are taken as 2**32-1."""
    assert parse_contact_values(["<sip:a@b>;expires=99999999999999"]) == [("sip:a@b", MAX_EXPIRES_PARAM, 1.0)]


@pytest.mark.parametrize("values, status", [
    (["*", "<sip:a@b>"], 400),               # "*" must stand alone
    (["<sip:a@b"], 400),                      # unterminated <
    (["<sip:a@b>;expires=soon"], 400),
    (["<sip:a@b>;expires=-1"], 400),
    (["<sip:a@b>;expires"], 400),
    (["<sip:a@b>;q=1.5"], 400),
    (["<sip:a@b>;q=0.1234"], 400),
    (["<sip:a@b>;q=high"], 400),
    (["<sip:a@b>;q"], 400),
    (["<sip:>"], 400),                         # no host
    (["<http://example.com/>"], 416),          # not a SIP URI
    (["nonsense"], 400),
])
def test_parse_garbage_contacts(values, status):
    with pytest.raises(RemoteProtocolError) as caught:
        parse_contact_values(values)
    assert caught.value.status == status


def test_parsed_contacts_feed_the_table():
    table = BindingTable()
    contacts = parse_contact_values(["<sip:1001@192.0.2.10>;expires=120;q=0.5"])
    outcome = register(table, contacts)
    assert outcome.contact_header_values(T0) == ["<sip:1001@192.0.2.10>;expires=120;q=0.5"]
