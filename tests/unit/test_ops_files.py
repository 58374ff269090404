"""The shipped alerting rules and Grafana dashboard: valid, tested, and only about metrics we export."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from acd.metrics import Metrics

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS = REPO / "conf" / "prometheus"


def exported_metric_names() -> set[str]:
    text = generate_latest(Metrics().registry).decode()
    names = set(re.findall(r"^# TYPE (\S+) (\S+)", text, re.M))
    out = set()
    for name, kind in names:
        out.add(name)
        if kind == "counter":
            out.add(name + "_total" if not name.endswith("_total") else name)
        if kind == "histogram":
            out.update({name + "_bucket", name + "_sum", name + "_count"})
    return out | {"up"}


def referenced(text: str) -> set[str]:
    return set(re.findall(r"\b(acd_[a-z_]+)", text))


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus) is installed by scripts/setup")
def test_alert_rules_pass_promtool_check_and_their_unit_tests():
    """`promtool check rules` accepts the rules; `promtool test rules` shows each alert fires when it should."""
    check = subprocess.run(["promtool", "check", "rules", "acd_alerts.yml"], cwd=PROMETHEUS, capture_output=True,
                           text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    test = subprocess.run(["promtool", "test", "rules", "acd_alerts_test.yml"], cwd=PROMETHEUS, capture_output=True,
                          text=True, timeout=60)
    assert test.returncode == 0, test.stdout + test.stderr


def test_rules_and_dashboard_use_only_exported_metrics():
    """A renamed metric breaks this test instead of silently breaking an alert or a panel."""
    exported = exported_metric_names()
    rules = "\n".join(line for line in (PROMETHEUS / "acd_alerts.yml").read_text().splitlines()
                      if not line.lstrip().startswith("#"))
    dashboard = json.loads((REPO / "conf" / "grafana" / "acd-dashboard.json").read_text())
    expressions = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    for source, names in (("alert rules", referenced(rules)), ("dashboard", referenced(expressions))):
        unknown = {n for n in names if n not in exported}
        assert not unknown, f"{source} use metrics we do not export: {sorted(unknown)}"
    assert len(dashboard["panels"]) >= 10
