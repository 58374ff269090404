"""The routing log's wire format: golden payloads round-trip, broken twins fail naming the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from acd.cluster.wire import (
    DECISION_TYPES,
    EVENT_TYPES,
    WireFormatError,
    decode_decision,
    decode_decisions,
    decode_event,
    encode_decision,
    encode_event,
)
from acd.routing import AgentState, CallArrived, CallWaiting

DATA = Path(__file__).resolve().parents[2] / "data" / "routing_log"


def lines(name: str) -> list:
    """The JSON values of one .jsonl file under tests/data/routing_log."""
    return [json.loads(line) for line in (DATA / name).read_text().splitlines() if line.strip()]


def test_every_golden_event_decodes_and_encodes_back_to_the_same_payload():
    golden = lines("events.jsonl")
    assert {payload["type"] for payload in golden} == set(EVENT_TYPES)
    for payload in golden:
        assert encode_event(decode_event(payload)) == payload


def test_every_golden_decision_decodes_and_encodes_back_to_the_same_payload():
    golden = lines("decisions.jsonl")
    assert {payload["type"] for payload in golden} == set(DECISION_TYPES)
    for payload in golden:
        assert encode_decision(decode_decision(payload)) == payload


def test_decoded_values_have_the_engines_types():
    arrived = decode_event(lines("events.jsonl")[6])
    assert isinstance(arrived, CallArrived)
    assert arrived.requirements == (("billing", 5), ("spanish", 2))
    changed = next(decode_decision(p) for p in lines("decisions.jsonl") if p["type"] == "AgentStateChanged")
    assert changed.previous is AgentState.AVAILABLE and changed.state is AgentState.OFFERED


@pytest.mark.parametrize("row", lines("events_invalid.jsonl"), ids=lambda row: row["error"][:40])
def test_a_broken_event_payload_is_refused_naming_what_is_wrong(row):
    with pytest.raises(WireFormatError) as caught:
        decode_event(row["payload"])
    assert row["error"] in str(caught.value)


@pytest.mark.parametrize("row", lines("decisions_invalid.jsonl"), ids=lambda row: row["error"][:40])
def test_a_broken_decision_payload_is_refused_naming_what_is_wrong(row):
    with pytest.raises(WireFormatError) as caught:
        decode_decisions(row["payload"])
    assert row["error"] in str(caught.value)


def test_payloads_survive_a_json_text_round_trip_exactly():
    for payload in lines("events.jsonl") + lines("decisions.jsonl"):
        assert json.loads(json.dumps(payload)) == payload


def test_numbers_that_jsonb_cannot_hold_are_refused_when_encoding():
    waiting = CallWaiting(call_id="c", queue="q", position=1, estimated_wait_seconds=float("inf"), explanation="")
    with pytest.raises(WireFormatError, match="only finite numbers"):
        encode_decision(waiting)


def test_only_routing_events_and_decisions_are_encoded():
    with pytest.raises(WireFormatError, match="not a routing event: dict"):
        encode_event({"type": "CallEnded"})
    with pytest.raises(WireFormatError, match="not a routing decision: CallArrived"):
        encode_decision(CallArrived(call_id="c", queue="q"))  # type: ignore[arg-type]
