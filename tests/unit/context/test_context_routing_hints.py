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
