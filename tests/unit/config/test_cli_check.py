"""`acd check --root DIR`: exit 0 and a summary on a good tree, exit 1 and `file:line: message` lines on a bad one."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

from acd.cli import main

REPO = Path(__file__).resolve().parents[3]


def broken_copy_of_the_demo(tmp_path: Path) -> Path:
    for name in ("conf", "dialplans", "ivr_flows", "sounds"):
        shutil.copytree(REPO / name, tmp_path / name)
    flow = tmp_path / "ivr_flows/main.yaml"
    flow.write_text(flow.read_text().replace("next: check_hours", "next: check_hour"))
    main_conf = tmp_path / "conf/acd.yaml"
    main_conf.write_text(main_conf.read_text().replace("ports: 20000-23999", "ports: 23999-20000"))
    return tmp_path


def line_of(path: Path, needle: str) -> int:
    return next(number for number, text in enumerate(path.read_text().splitlines(), 1) if needle in text)


def test_check_accepts_the_demo_config(capsys):
    assert main(["check", "--root", str(REPO)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("config OK: 3 routes, 4 flows,")


def test_check_lists_every_problem_as_file_line_message(tmp_path, capsys):
    root = broken_copy_of_the_demo(tmp_path)
    assert main(["check", "--root", str(root)]) == 1
    lines = capsys.readouterr().err.splitlines()
    problems = lines[:-1]
    assert lines[-1] == "2 problem(s); the config was not accepted"
    assert all(re.fullmatch(r".+\.yaml:\d+: .+", line) for line in problems), problems
    ports_line = line_of(root / "conf/acd.yaml", "ports: 23999")
    next_line = line_of(root / "ivr_flows/main.yaml", "check_hour")
    assert f"{root.resolve()}/conf/acd.yaml:{ports_line}: rtp ports" in lines[0]
    assert lines[1].startswith(f"{root.resolve()}/ivr_flows/main.yaml:{next_line}: step 'welcome' goes to unknown step")


def test_check_as_a_command_exits_1_on_a_broken_tree(tmp_path):
    root = broken_copy_of_the_demo(tmp_path)
    done = subprocess.run([sys.executable, "-m", "acd.cli", "check", "--root", str(root)],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert f"main.yaml:{line_of(root / 'ivr_flows/main.yaml', 'check_hour')}: " in done.stderr
