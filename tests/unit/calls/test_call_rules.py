"""Pure pieces of the shell: INFO DTMF bodies, the agent's X-ACD-* headers, whisper prompts, queue_log
lines for agent state changes."""

from acd.calls.inbound import dtmf_from_info
from acd.calls.offers import context_headers, whisper_prompts
from acd.calls.queue_log import QueueLog
from acd.calls.queued_call import QueuedCall
from acd.routing import AgentStateChanged, Offer
from acd.routing.agent_states import AgentState


def test_info_dtmf_relay_and_plain_dtmf_bodies_give_their_digit():
    assert dtmf_from_info("application/dtmf-relay", "Signal=5\r\nDuration=160\r\n") == "5"
    assert dtmf_from_info("application/dtmf-relay", "signal= *\r\n") == "*"
    assert dtmf_from_info("application/dtmf", "a") == "A"


def test_info_without_a_valid_digit_gives_none():
    assert dtmf_from_info("application/dtmf-relay", "Duration=160") is None
    assert dtmf_from_info("application/dtmf-relay", "Signal=x") is None
    assert dtmf_from_info("text/plain", "5") is None


def _queued(context):
    return QueuedCall(call_id="c1", queue="sales", context=context, queued_at=100.0)


def _offer():
    return Offer(call_id="c1", agent_id="1001", queue="sales", ring_deadline=115.0, callback=False, explanation="x")


def test_context_headers_carry_the_customer_and_the_wait_cleaned_and_bounded():
    context = {"caller_id": "5550100", "caller_name": "Eleanor\r\nInjected: yes", "intent": "billing",
               "account_number": "****", "customer": {"name": "E" * 300, "id": "C1", "tier": "vip"}}
    headers = dict(context_headers(_queued(context), _offer(), now=112.4))
    assert headers["X-ACD-Queue"] == "sales" and headers["X-ACD-Caller"] == "5550100"
    assert headers["X-ACD-Caller-Name"] == "EleanorInjected: yes"
    assert "X-ACD-Account-Number" not in headers  # masked digits are not sent
    assert len(headers["X-ACD-Customer"]) == 120 and headers["X-ACD-Tier"] == "vip"
    assert headers["X-ACD-Verified"] == "false" and headers["X-ACD-Wait-Seconds"] == "12"


def test_whisper_names_only_prompts_that_exist():
    context = {"verified": True, "customer": {"tier": "vip"}}
    assert whisper_prompts(context, "sales", {"whisper/vip", "whisper/verified"}) == ["whisper/vip",
                                                                                      "whisper/verified"]
    assert whisper_prompts({}, "sales", {"whisper/queue_sales"}) == ["whisper/queue_sales"]


class _Records:
    def __init__(self):
        self.rows = []

    def queue_log(self, **row):
        self.rows.append(row)


class _Clock:
    def seconds(self):
        return 50.0


def test_queue_log_writes_login_pause_and_unpause_lines_with_their_reasons():
    records = _Records()
    queue_log = QueueLog(records, _Clock())
    for previous, state, reason in ((AgentState.LOGGED_OUT, AgentState.AVAILABLE, "login"),
                                    (AgentState.AVAILABLE, AgentState.PAUSED, "lunch"),
                                    (AgentState.PAUSED, AgentState.AVAILABLE, "ready"),
                                    (AgentState.AVAILABLE, AgentState.OFFERED, "offered c1"),
                                    (AgentState.AVAILABLE, AgentState.LOGGED_OUT, "logout")):
        queue_log.agent_state_changed(AgentStateChanged(agent_id="1001", previous=previous, state=state,
                                                        reason=reason))
    assert [(row["event"], row["data1"]) for row in records.rows] == [
        ("AGENTLOGIN", "1001"), ("PAUSE", "lunch"), ("UNPAUSE", "ready"), ("AGENTLOGOFF", "1001")]
    assert all(row["at"] == 50.0 and row["agent"] == "1001" for row in records.rows)
