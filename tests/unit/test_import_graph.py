"""The package's layering: no import cycles; sip_server only from the composition root; the API and
metrics read the shell only through the live view."""

from acd.devtools.import_graph import find_cycles, forbidden_imports, import_graph


def test_acd_has_no_import_cycle():
    assert find_cycles(import_graph()) == []


def test_no_forbidden_imports():
    assert forbidden_imports(import_graph()) == []


def test_a_cycle_is_found_however_long():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c"]]


def test_a_root_only_import_elsewhere_is_reported():
    graph = {"acd.calls.session": {"acd.calls.sip_server"}, "acd.calls.sip_server": set(),
             "acd.api.rest": {"acd.calls.acd_service", "acd.calls.view"}}
    problems = forbidden_imports(graph)
    assert any("acd.calls.session imports acd.calls.sip_server" in p for p in problems)
    assert any("acd.api.rest imports acd.calls.acd_service" in p for p in problems)
    assert not any("acd.calls.view" in p.split(" imports ")[1].split(" ")[0] for p in problems)


def test_type_checking_imports_count_as_edges():
    graph = import_graph()
    assert "acd.calls.ports" in graph["acd.calls.session"]
