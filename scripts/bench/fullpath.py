"""Full-path benchmark (issue 6, scenario 3): caller → IVR → DTMF → queue → SIPp agents auto-answering
→ bridged talk → the agent hangs up. Starts our server with a bench config, registers and logs in
`--agents` SIPp agents (Digest, *45), runs `--rate` calls/s for `--seconds`, then reads the server's
/metrics and log: calls answered by an agent, lost calls, missed digits, post-queue setup (queue
wait), server CPU. Prints a table and writes JSON. Bounded: SIPp -m and -timeout, every process killed.

    .venv/bin/python scripts/bench/fullpath.py --rate 100 --seconds 10 --agents 400 --out fullpath.json
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from acd.sip.digest import compute_ha1  # noqa: E402
from tests.e2e.harness import LOOPBACK, SCENARIOS, free_port, run_sipp, start_server  # noqa: E402

BENCH_SCENARIOS = Path(__file__).resolve().parent / "scenarios"
FLOW = """
name: bench_fullpath
steps:
  menu: {menu: digits/1, choices: {"1": queue}, timeout: 5, retries: 2, on_failure: end}
  queue: {queue: bench, on_failure: end}
  end: {hangup: true}
"""


def agents_yaml(agents: list[str]) -> str:
    lines = ["realm: bench", "digest_algorithms: [MD5, SHA-256]", "queues:",
             "  bench: {strategy: longest-idle, wrap_up: 0, ring_timeout: 5, when_no_agents: join, max_wait: 120, "
             "announce_every: 60}", "  sales: {when_no_agents: refuse}", "  support: {when_no_agents: refuse}",
             "  billing: {when_no_agents: refuse}", "agents:"]
    for agent in agents:
        lines += [f'  "{agent}":', "    password_ha1:", f"      md5: {compute_ha1(agent, 'bench', 'pw', 'MD5')}",
                  "    queues: {bench: 0}"]
    return "\n".join(lines) + "\n"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--agents", type=int, default=400)
    parser.add_argument("--out", default="bench-fullpath.json")
    args = parser.parse_args()
    calls = int(args.rate * args.seconds)
    agents = [str(50000 + n) for n in range(args.agents)]
    work = Path(tempfile.mkdtemp(prefix="acd-fullpath-"))
    http_port = free_port(kind=socket.SOCK_STREAM, both=False)
    server = start_server(work / "server", sip_port=free_port(), rtp_base=14000, rtp_ports=8000, http_port=http_port,
                          extra_files={"conf/agents.yaml": agents_yaml(agents),
                                       "dialplans/bench.yaml": 'routes:\n  - {number: "9100", flow: bench_fullpath}\n',
                                       "ivr_flows/bench_fullpath.yaml": FLOW})
    answering = None
    try:
        agent_port = free_port(both=False)
        answering = subprocess.Popen(
            ["sipp", server.target, "-sf", str(SCENARIOS / "agent_answers.xml"), "-i", LOOPBACK, "-p", str(agent_port),
             "-mp", str(free_port(both=False)), "-m", str(calls), "-nostdin", "-timeout", f"{int(args.seconds) + 90}s"],
            cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        csv = work / "agents.csv"
        csv.write_text("SEQUENTIAL\n" + "".join(f"{a};[authentication username={a} password=pw];{agent_port}\n"
                                                for a in agents))
        login = run_sipp(work / "login", server.target, "-inf", str(csv), scenario="agents_login.xml",
                         calls=len(agents), rate=100, limit=len(agents), timeout=60)
        login.assert_ok(server)
        time.sleep(2)
        cpu_before, started = cpu_seconds(server.process.pid), time.monotonic()
        callers = run_sipp(work / "callers", server.target, scenario=str(BENCH_SCENARIOS / "fullpath_caller.xml"),
                           service="9100", calls=calls, rate=args.rate, limit=calls, timeout=args.seconds + 90)
        elapsed = time.monotonic() - started
        cpu = (cpu_seconds(server.process.pid) - cpu_before) / elapsed * 100
        metrics = urllib.request.urlopen(f"http://{LOOPBACK}:{http_port}/metrics", timeout=10).read().decode()
        log = server.log()
    finally:
        if answering is not None and answering.poll() is None:
            answering.kill()
            answering.wait(timeout=5)
        server.stop()

    def sample(name: str) -> float:
        match = re.search(rf"^{re.escape(name)} ([0-9.e+]+)$", metrics, re.M)
        return float(match.group(1)) if match else 0.0

    ok = re.search(r"Successful call\s*\|\s*\d+\s*\|\s*(\d+)", callers.stdout)
    failed = re.search(r"Failed call\s*\|\s*\d+\s*\|\s*(\d+)", callers.stdout)
    waits = [float(w) for w in re.findall(r"connected to agent=\S+ after ([0-9.]+)s in queue bench", log)]
    choices = len(re.findall(r"menu=menu choice=1 next=queue", log))
    answered = int(sample('acd_queue_answered_total{queue="bench"}'))
    invited = len(set(re.findall(r"call=(\S+) INVITE from=sip:7", log)))
    ended = len(set(re.findall(r"call=(\S+) ended reason=", log)) & set(re.findall(r"call=(\S+) INVITE from=sip:7", log)))
    result = {
        "rate": args.rate, "seconds": args.seconds, "calls": calls, "agents": args.agents,
        "sipp_successful": int(ok.group(1)) if ok else None, "sipp_failed": int(failed.group(1)) if failed else None,
        "invites_seen": invited, "calls_with_end_record": ended, "lost": invited - ended,
        "answered_by_agent": answered, "answered_percent": round(100 * answered / calls, 2),
        "digits_recognised": choices, "missed_digits": invited - choices,
        "queue_wait_p50_s": round(statistics.median(waits), 3) if waits else None,
        "queue_wait_p99_s": round(sorted(waits)[int(0.99 * (len(waits) - 1))], 3) if waits else None,
        "server_cpu_percent": round(cpu, 1), "elapsed_s": round(elapsed, 1),
    }
    print(" | ".join(f"{k}={v}" for k, v in result.items()))
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0 if result["lost"] == 0 and result["missed_digits"] == 0 and result["sipp_failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
