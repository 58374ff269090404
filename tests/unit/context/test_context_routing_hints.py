"""A customer's language becomes a required skill only when the queue has someone who speaks it."""

from acd.context.routing_hints import language_requirement

SKILLS = {"es": "spanish", "en": "english"}


def test_spanish_speaker_requires_spanish_when_an_agent_speaks_it():
    assert language_requirement({"language": "es"}, SKILLS, [{"english": 7}, {"spanish": 8}]) == {"spanish": 1}


def test_language_nobody_speaks_is_not_required():
    assert language_requirement({"language": "es"}, SKILLS, [{"english": 7}]) == {}


def test_unmapped_or_missing_language_adds_nothing():
    assert language_requirement({"language": "cy"}, SKILLS, [{"welsh": 5}]) == {}
    assert language_requirement({}, SKILLS, [{"spanish": 5}]) == {}


def test_tier_bonus_raises_priority_and_is_capped():
    from acd.context.routing_hints import MAX_PRIORITY, caller_priority

    assert caller_priority(0, {"tier": "vip"}) == 5
    assert caller_priority(2, {"tier": "silver"}) == 3
    assert caller_priority(7, {"tier": "vip"}) == MAX_PRIORITY
    assert caller_priority(4, {}) == 4


def test_last_agent_is_preferred_within_memory_then_the_account_owner():
    from acd.context.routing_hints import LAST_AGENT_MEMORY_SECONDS, preferred_agent

    queues = {"1001": {"sales": 0}, "1002": {"sales": 0}, "1003": {"support": 0}}
    customer = {"last_agent": "1001", "last_agent_at": 1000.0, "account_owner": "1002"}
    assert preferred_agent(customer, "sales", queues, now=2000.0) == "1001"
    assert preferred_agent(customer, "sales", queues, now=1000.0 + LAST_AGENT_MEMORY_SECONDS + 1) == "1002"
    assert preferred_agent({"last_agent": "1003"}, "sales", queues, now=0.0) is None  # not in this queue
    assert preferred_agent({}, "sales", queues, now=0.0) is None


def test_queue_requirements_add_the_language_to_the_steps_skills():
    from acd.context.routing_hints import queue_requirements

    members = [{"spanish": 5}]
    assert queue_requirements({"billing": 3}, {"language": "es"}, SKILLS, members) == {"billing": 3, "spanish": 1}
    assert queue_requirements({"spanish": 4}, {"language": "es"}, SKILLS, members) == {"spanish": 4}
    assert queue_requirements({"billing": 3}, {}, SKILLS, members) == {"billing": 3}


def test_a_found_pin_verifies_the_caller_and_their_customer_record():
    from acd.context.sources import apply_lookup_result
    from acd.ivr.context import CallContext

    context = CallContext({"caller_id": "1"})
    apply_lookup_result(context, "customer_account", {"id": "C1", "tier": "gold"})
    apply_lookup_result(context, "customer_pin", {"verified": True})
    assert context.get("verified") is True and context.get("customer")["verified"] is True
    apply_lookup_result(context, "customer_pin", None)
    assert context.get("customer")["id"] == "C1"
