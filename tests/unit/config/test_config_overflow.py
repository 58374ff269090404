"""conf/agents.yaml `overflow:` steps: parsed into the routing core's OverflowSteps, errors with file:line."""

from pathlib import Path

from acd.config.agents import load_agents
from acd.routing.config import OverflowStep


def load(tmp_path: Path, text: str):
    """load_agents on `text`; (config, [(line, message)])."""
    path = tmp_path / "agents.yaml"
    path.write_text(text)
    errors: list = []
    config = load_agents(path, errors, [])
    return config, [(error.line, error.message) for error in errors]


def test_overflow_steps_add_queues_and_relax_skills_after_seconds(tmp_path):
    config, errors = load(tmp_path, "queues:\n"
                                    "  sales:\n"
                                    "    overflow:\n"
                                    "      - {after: 30, add_queues: [support]}\n"
                                    "      - {after: 60, relax: {spanish: 0}}\n"
                                    "  support: {}\n")
    assert errors == []
    assert config.queues["sales"].routing.overflow == (
        OverflowStep(after_seconds=30.0, add_queues=("support",)),
        OverflowStep(after_seconds=60.0, relax=(("spanish", 0),)))
    assert config.queues["support"].routing.overflow == ()


def test_overflow_to_an_unknown_queue_or_out_of_order_names_the_line(tmp_path):
    _, errors = load(tmp_path, "queues:\n"
                               "  sales:\n"
                               "    overflow:\n"
                               "      - {after: 30, add_queues: [nowhere]}\n"
                               "      - {after: 10, add_queues: [sales]}\n")
    assert [line for line, _ in errors] == [5, 2], errors
    assert "after must be seconds > 30" in errors[0][1]
    assert "adds 'nowhere', which is not another queue" in errors[1][1]


def test_overflow_must_be_a_list_of_known_keys(tmp_path):
    _, errors = load(tmp_path, "queues:\n  sales:\n    overflow: {after: 30}\n")
    assert errors == [(3, errors[0][1])] and "must be a list of steps" in errors[0][1]
    _, errors = load(tmp_path, "queues:\n  sales:\n    overflow:\n      - {after: 30, to: support}\n")
    assert len(errors) == 1 and "unknown key 'to'" in errors[0][1]
