"""The restart rules of `plan_restore` (pure): who comes back, in which state, and what they are told."""

from __future__ import annotations

from acd.calls.agent_restore import (WHY_EXPIRED, WHY_LOGOUT_AFTER_CALL, WHY_NO_QUEUES, WHY_UNCONFIGURED,
                                     plan_restore, restore_summary)
from acd.config.agents import AgentConfig
from acd.store.presence import AgentPresence

CONFIGURED = {agent_id: AgentConfig(agent_id=agent_id, name=agent_id, ha1={}, queues={"sales": 0})
              for agent_id in ("1001", "1002", "1003", "1004")}


def presence(agent_id: str, state: str, **fields) -> AgentPresence:
    return AgentPresence(agent_id=agent_id, state=state, queues={"sales": 0}, **fields)


def plan(*agents: AgentPresence, bound=lambda agent_id: True, configured=CONFIGURED):
    return {p.agent_id: p for p in plan_restore(agents, configured, bound)}


def test_busy_agents_come_back_available_and_are_told():
    """Ringing, on a call or in wrap-up: the calls are gone, so the agent is available again."""
    result = plan(presence("1001", "on_call"), presence("1002", "offered"), presence("1003", "wrap_up"))
    assert {a: (r.state, r.changed) for a, r in result.items()} == {
        "1001": ("available", True), "1002": ("available", True), "1003": ("available", True)}
    assert result["1001"].notice() == "ACD restarted: you are available again"
    assert result["1001"].describe() == "1001 available (was on_call)"


def test_available_and_paused_agents_keep_their_state_and_are_not_messaged():
    """Nothing changed for them: no MESSAGE to their phone."""
    result = plan(presence("1001", "available"), presence("1002", "paused", pause_reason="lunch"))
    assert (result["1001"].state, result["1001"].changed, result["1001"].notice()) == ("available", False, None)
    assert (result["1002"].state, result["1002"].pause_reason, result["1002"].notice()) == ("paused", "lunch", None)
    assert result["1002"].describe() == "1002 paused (lunch)"


def test_expired_binding_unconfigured_or_queueless_agents_are_logged_out_with_the_reason():
    """No phone to offer calls to, or no longer an agent with queues: logged out, and why."""
    configured = {**CONFIGURED, "1003": AgentConfig(agent_id="1003", name="1003", ha1={}, queues={})}
    del configured["1002"]
    result = plan(presence("1001", "available"), presence("1002", "available"), presence("1003", "paused",
                                                                                         pause_reason="lunch"),
                  bound=lambda agent_id: agent_id != "1001", configured=configured)
    assert {a: (r.state, r.why) for a, r in result.items()} == {
        "1001": ("logged_out", WHY_EXPIRED), "1002": ("logged_out", WHY_UNCONFIGURED),
        "1003": ("logged_out", WHY_NO_QUEUES)}
    assert result["1001"].notice() == "ACD restarted: you were logged out: registration expired"


def test_a_change_asked_for_during_the_call_applies_after_the_restart():
    """Pause or log out "after this call": the call ended with the restart, so it applies now."""
    result = plan(presence("1001", "on_call", pending="pause", pending_reason="lunch"),
                  presence("1002", "wrap_up", pending="logout"))
    assert (result["1001"].state, result["1001"].pause_reason) == ("paused", "lunch")
    assert result["1001"].notice() == "ACD restarted: you are paused (lunch)"
    assert (result["1002"].state, result["1002"].why) == ("logged_out", WHY_LOGOUT_AFTER_CALL)


def test_logged_out_agents_are_left_alone():
    """An agent whose last state is logged out stays logged out, and is not in the plan."""
    assert plan(presence("1001", "logged_out")) == {}


def test_the_summary_line_names_each_agent():
    """One start-up line: who is back in which state, who was logged out and why."""
    result = plan_restore([presence("1001", "on_call"), presence("1002", "paused", pause_reason="lunch"),
                           presence("1003", "available")], CONFIGURED, lambda agent_id: agent_id != "1003")
    assert restore_summary("a crash", result) == (
        "restored 2 agent(s) after a crash: 1001 available (was on_call), 1002 paused (lunch); "
        f"logged out: 1003 ({WHY_EXPIRED})")
