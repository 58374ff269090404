"""SIP capacity benchmark: call rate and concurrent media calls, aimed at any SIP server.

    .venv/bin/python scripts/bench/sip_bench.py rate                       # our server, demo IVR, 30 s per step
    .venv/bin/python scripts/bench/sip_bench.py concurrency                # N = 100, 250, 500, 1000
    .venv/bin/python scripts/bench/sip_bench.py rate --target 127.0.0.1:5060 --number 9000 --server-pid 1234
    .venv/bin/python scripts/bench/sip_bench.py rate --rates 5 --step-seconds 2 --out /tmp/b.json   # smoke

Measured the way shared/PEERS.md measured Asterisk and sippy (SIPp 3.6.1 on the same two cores):

- `rate`: SIPp callers (scenarios/rate_call.xml) INVITE with SDP -> 200 -> ACK -> 1 s -> BYE, stepped
  (`sipp -r R -m step_seconds*R`) until the first step with a failed call. Then, at half the highest
  clean rate, setup latency = first INVITE to first 200 (CSeq INVITE) per Call-ID, read from a
  loopback capture (`tshark -i lo -f "udp port P"` into a pcap, read back), p50/p99.
- `concurrency`: N SIPp callers (scenarios/hold_call.xml) each hold a call to an endless prompt loop
  and stream their own PCMU (a pcap this script generates); after ramp-up the server->caller RTP is
  captured for `--capture-seconds` and read with `tshark -q -z rtp,streams`: loss, max delta, jitter
  per stream, p50/p99 over streams. Stops at the first N that fails.

Server CPU (utime+stime from /proc/PID/stat; 100% = one core) and RSS (VmRSS) are read when the
server's pid is known: always for our own server, with `--server-pid` for another one.

Without `--target` the script starts our server (`acd serve`, at the default INFO log level) on free
ports in a temp dir with the shipped demo config (dialplans, flows, queues, agents, incidents; hours
open around the clock) plus two bench numbers. `rate` dials the demo's front door, 1000 (welcome,
hours check, DTMF menu: what callers run), as shared/PEERS.md did for Asterisk; `--bench-flow` dials
9000 -> flow `bench_rate` (a 2.8 s prompt, then the endless loop) instead; 9001 -> flow
`bench_loop` (endless: a menu whose prompt is the 16 s hold music, 1 s timeout, `on_failure` back to
itself, so `acd check` accepts it: the loop waits for input). It stops the server afterwards.

Everything is bounded: SIPp gets `-m`, `-timeout` and a process timeout; every process started here is
killed by pid in a `finally`. No step runs longer than about 90 s.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sip_pcap import sip_datagrams  # the sibling reader of SIP captures (scripts/bench/ is the script's path)

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SCENARIOS = HERE / "scenarios"
LOOPBACK = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024

# ----------------------------------------------------------------------------------------------
# Bench config for our own server
# ----------------------------------------------------------------------------------------------
RTP_PORTS = 4000  # 2000 legs: the rate test at 400+/s holds ~600 calls, concurrency up to 1000

BENCH_DIALPLAN = """\
# Bench numbers (scripts/bench/sip_bench.py).
routes:
  - number: "9000"
    flow: bench_rate
  - number: "9001"
    flow: bench_loop
"""

# The checker refuses loops without input, so the endless loop is a menu (it waits for a key) whose
# on_failure is itself: 16 s of hold music, 1 s of silence waiting for a key, again.
BENCH_RATE_FLOW = """\
name: bench_rate
start: greet
steps:
  greet:
    play: welcome           # 2.8 s
    next: hold
  hold:
    menu: moh               # 16 s, then 1 s waiting for a key, then again
    choices: {"#": hold}
    timeout: 1
    retries: 1
    on_failure: hold
"""

BENCH_LOOP_FLOW = """\
name: bench_loop
start: hold
steps:
  hold:
    menu: moh
    choices: {"#": hold}
    timeout: 1
    retries: 1
    on_failure: hold
"""


# Admission control (issue 21) refuses calls past the measured capacity by design; the capacity
# benchmarks measure the server without it (`--admission auto` runs the shipped defaults).
ADMISSION_OFF = "{max_calls: 1000000, max_new_calls_per_second: 0, overload_loop_lag_seconds: 0}"


def bench_acd_yaml(sip_port: int, rtp_base: int, *, admission: str = ADMISSION_OFF, http_port: int = 0,
                   rtp_workers: str = "auto") -> str:
    """conf/acd.yaml of the bench server; `admission`: the `sip: admission:` value (inline YAML, "" for none);
    `rtp_workers`: `rtp: workers:` (auto, the shipped default, or a number; 0 = media in the call process)."""
    return (
        "sip:\n"
        f"  listen: {LOOPBACK}\n  port: {sip_port}\n  public_address: {LOOPBACK}\n  transports: [udp]\n"
        + (f"  admission: {admission}\n" if admission else "") +
        "rtp:\n"
        f"  address: {LOOPBACK}\n  ports: {rtp_base}-{rtp_base + RTP_PORTS - 1}\n  workers: {rtp_workers}\n"
        f"http:\n  listen: {LOOPBACK}\n  port: {http_port}\n"
        "trunks:\n  bench:\n"
        f"    sources: [{LOOPBACK}]\n"
        "data_dir: data\n"
        f"sounds_dir: {REPO / 'sounds'}\n"
    )


class OwnServer:
    """Our `acd serve` on free ports with the bench config (tests/e2e/harness.write_config plus the
    bench files). Started here rather than by harness.start_server, which waits for an INFO log line
    that --log-level WARNING hides: ready = the SIP UDP port is bound."""

    def __init__(self, workdir: Path, log_level: str, *, admission: str = ADMISSION_OFF, http: bool = False,
                 rtp_workers: str = "auto") -> None:
        sys.path.insert(0, str(REPO))
        from tests.e2e.harness import AcdServer, free_port, write_config  # noqa: PLC0415 - only for our server

        self.sip_port = free_port()
        self.http_port = free_port() if http else 0
        self.rtp_base = rtp_base_below_ephemeral()
        root = Path(tempfile.mkdtemp(prefix="acd-", dir=workdir))
        write_config(root, sip_port=self.sip_port, rtp_base=self.rtp_base,
                     extra_files={"conf/acd.yaml": bench_acd_yaml(self.sip_port, self.rtp_base, admission=admission,
                                                                  http_port=self.http_port, rtp_workers=rtp_workers),
                                  "dialplans/bench.yaml": BENCH_DIALPLAN,
                                  "ivr_flows/bench_rate.yaml": BENCH_RATE_FLOW,
                                  "ivr_flows/bench_loop.yaml": BENCH_LOOP_FLOW})
        log_path = root / "server.log"
        log_file = open(log_path, "wb")
        process = subprocess.Popen([sys.executable, "-m", "acd.cli", "serve", "--root", str(root), "--log-level",
                                    log_level], stdout=log_file, stderr=subprocess.STDOUT, cwd=REPO)
        self.server = AcdServer(root=root, sip_port=self.sip_port, process=process, log_path=log_path,
                                _log_file=log_file)
        self.pid = process.pid
        self.target = f"{LOOPBACK}:{self.sip_port}"
        self.rtp_range = (self.rtp_base, self.rtp_base + RTP_PORTS - 1)
        try:
            self._wait_ready(timeout=30)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.server.alive():
                raise RuntimeError(f"our server exited: {self.log_tail()}")
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                try:
                    probe.bind((LOOPBACK, self.sip_port))
                except OSError:
                    time.sleep(0.3)  # bound: let it finish starting (prompts, routes)
                    return
            time.sleep(0.1)
        raise RuntimeError(f"our server did not bind {self.target} within {timeout}s: {self.log_tail()}")

    def stop(self) -> None:
        self.server.stop()

    def log_tail(self, chars: int = 3000) -> str:
        return self.server.log()[-chars:]


@contextmanager
def server_for(args, workdir: Path):
    """Our fresh server (stopped after), or the --target one (left alone)."""
    if args.target:
        yield None
        return
    own = OwnServer(workdir, args.server_log_level, admission="" if args.admission == "auto" else ADMISSION_OFF,
                    http=True, rtp_workers=args.rtp_workers)
    try:
        yield own
    finally:
        own.stop()


# ----------------------------------------------------------------------------------------------
# Process metrics
# ----------------------------------------------------------------------------------------------
def cpu_seconds(pid: int | None) -> float | None:
    """utime + stime of `pid` (all its threads) in seconds."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def loop_lag_over(http_port: int | None, threshold_s: float = 0.1) -> dict | None:
    """From our server's /metrics: how many 50 ms ticks of the event loop ran more than `threshold_s`
    late (stalls), of how many, and the largest bucket bound reached."""
    if not http_port:
        return None
    import urllib.request  # noqa: PLC0415 - only for our own server
    try:
        page = urllib.request.urlopen(f"http://{LOOPBACK}:{http_port}/metrics", timeout=5).read().decode()
    except OSError:
        return None
    buckets = {}
    for match in re.finditer(r'^acd_event_loop_lag_seconds_bucket\{le="([^"]+)"\} (\S+)$', page, re.M):
        buckets[float(match.group(1))] = float(match.group(2))
    if not buckets:
        return None
    total = buckets.get(float("inf"), 0.0)
    within = max((count for bound, count in buckets.items() if bound <= threshold_s), default=0.0)
    worst = min((bound for bound, count in buckets.items() if count >= total), default=None)
    gc_count = sum(float(m.group(1)) for m in re.finditer(r'^acd_gc_pause_seconds_count\{[^}]*\} (\S+)$', page, re.M))
    gc_seconds = sum(float(m.group(1)) for m in re.finditer(r'^acd_gc_pause_seconds_sum\{[^}]*\} (\S+)$', page, re.M))
    return {"ticks": int(total), "over_threshold": int(total - within), "threshold_s": threshold_s,
            "worst_bucket_s": worst, "gc_pauses": int(gc_count), "gc_pause_seconds": gc_seconds}


def child_pids(pid: int | None) -> list[int]:
    """The direct children of `pid` (our server's media workers and records writer; see child_kind)."""
    if pid is None:
        return []
    found: list[int] = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found.extend(int(child) for child in children.read_text().split())
        except OSError:
            continue
    return sorted(set(found))


def child_kind(pid: int) -> str:
    """"records" for our server's records writer (acd.store.records_process), "media" for the rest
    (its media workers)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "media"
    return "records" if b"acd.store.records_process" in command else "media"


def children_cpu_seconds(pid: int | None, kind: str = "media") -> dict[int, float]:
    """utime + stime of each child of `pid` of `kind` (see child_kind), by child pid."""
    seconds = {}
    for child in child_pids(pid):
        value = cpu_seconds(child)
        if value is not None and child_kind(child) == kind:
            seconds[child] = value
    return seconds


def rss_kib(pid: int | None) -> int | None:
    """Resident set size of `pid` in KiB."""
    if pid is None:
        return None
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_KIB
    except OSError:
        return None


def socket_drops(port: int | None) -> int | None:
    """Datagrams the kernel dropped at the UDP socket(s) bound to `port` on this machine (the
    `drops` column of /proc/net/udp): the server's SIP socket not read fast enough."""
    if port is None:
        return None
    total, found = 0, False
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 13 and int(fields[1].rsplit(":", 1)[1], 16) == port:
            total += int(fields[12])
            found = True
    return total if found else None


def machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs from /proc/stat."""
    values = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


class CpuWindow:
    """CPU% (100 = one core) of a pid between start() and stop(), and its peak RSS sampled each 0.5 s."""

    def __init__(self, pid: int | None, sip_port: int | None = None) -> None:
        self.pid = pid
        self.sip_port = sip_port
        self.peak_rss = rss_kib(pid)
        self.rss_timeline: list[tuple[int, int | None]] = []  # (seconds into the window, RSS KiB) every 10 s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        started = time.monotonic()
        next_mark = 10.0
        while not self._stop.wait(0.5):
            rss = rss_kib(self.pid)
            if rss is not None and (self.peak_rss is None or rss > self.peak_rss):
                self.peak_rss = rss
            if time.monotonic() - started >= next_mark:
                self.rss_timeline.append((round(next_mark), rss))
                next_mark += 10.0

    def start(self) -> "CpuWindow":
        self.t0, self.c0 = time.monotonic(), cpu_seconds(self.pid)
        self.children0 = children_cpu_seconds(self.pid)
        self.records0 = children_cpu_seconds(self.pid, "records")
        self.drops0 = socket_drops(self.sip_port)
        self.machine0 = machine_busy()
        if self.pid is not None:
            self._thread.start()
        return self

    def stop(self) -> dict:
        t1, c1 = time.monotonic(), cpu_seconds(self.pid)
        children1 = children_cpu_seconds(self.pid)
        records1 = children_cpu_seconds(self.pid, "records")
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        cpu = None if self.c0 is None or c1 is None else round(100 * (c1 - self.c0) / (t1 - self.t0), 1)
        busy1, total1 = machine_busy()
        machine = round(100 * os.cpu_count() * (busy1 - self.machine0[0]) / max(1, total1 - self.machine0[1]), 1)
        drops1 = socket_drops(self.sip_port)
        drops = None if drops1 is None or self.drops0 is None else drops1 - self.drops0
        # machine_cpu_percent: every process on every core (100% = one core): server + SIPp + tshark +
        # whatever else runs on this shared machine; a high value beside a low server figure is noise.
        # media_cpu_percent: the server's media worker processes (rtp: workers:), 100% = one core;
        # cpu_percent is the call process alone.
        # records_cpu_percent: the records writer process (acd serve runs one).
        media = round(100 * sum(c - self.children0.get(child, 0.0) for child, c in children1.items())
                      / (t1 - self.t0), 1) if children1 else None
        records = round(100 * sum(c - self.records0.get(child, 0.0) for child, c in records1.items())
                        / (t1 - self.t0), 1) if records1 else None
        return {"sip_socket_drops": drops, "machine_cpu_percent": machine, "cpu_percent": cpu,
                "media_cpu_percent": media, "records_cpu_percent": records,
                "media_rss_kib": sum(rss_kib(c) or 0 for c in children1) or None,
                "rss_kib": rss_kib(self.pid), "peak_rss_kib": self.peak_rss, "rss_timeline": self.rss_timeline,
                "cpu_window_s": round(t1 - self.t0, 2)}


# ----------------------------------------------------------------------------------------------
# Processes: SIPp and captures, always bounded and killed by pid
# ----------------------------------------------------------------------------------------------
def rtp_base_below_ephemeral() -> int:
    """The first port of our server's RTP range, placed below the kernel's ephemeral range: SIPp's
    ports (-p, -mp, its sockets) are ephemeral, and one of them inside our range made a call now and
    then fail with "RTP port N is held by another program" (1-3 calls a run at 400/s)."""
    low = 32768
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return random.randrange(10000, max(10002, low - RTP_PORTS), 2)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def kill(process: subprocess.Popen | None, sig: int = signal.SIGTERM, wait: float = 5.0) -> None:
    """Stop one process we started (by its pid): `sig`, then SIGKILL."""
    if process is None or process.poll() is not None:
        return
    try:
        process.send_signal(sig)
        process.wait(timeout=wait)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)
    except ProcessLookupError:
        pass


@dataclass
class SippRun:
    """One SIPp run's outcome, from its final statistics row."""

    command: list[str]
    returncode: int | None
    elapsed_s: float
    successful: int = 0
    failed: int = 0
    retransmissions: int = 0
    dead_calls: int = 0
    out_of_call: int = 0
    timed_out: bool = False
    errors_tail: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.failed == 0 and not self.timed_out


class Sipp:
    """A SIPp caller run in the background: `-m`, `-timeout` and a process deadline bound it."""

    def __init__(self, workdir: Path, target: str, scenario: Path, *, number: str, rate: float, calls: int,
                 hold_ms: int, limit: int | None, timeout_s: int, extra: list[str] | None = None) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.stats = workdir / "stats.csv"
        self.errors = workdir / "errors.log"
        self.timeout_s = timeout_s
        self.media_port = free_udp_port()
        self.command = ["sipp", target, "-sf", str(scenario), "-s", number, "-i", LOOPBACK,
                        "-p", str(free_udp_port()), "-mp", str(self.media_port), "-r", str(rate), "-m", str(calls),
                        "-d", str(hold_ms), "-nostdin", "-timeout", f"{timeout_s}s", "-timeout_error",
                        "-max_retrans", "5", "-trace_stat", "-stf", str(self.stats), "-fd", "1",
                        "-trace_err", "-error_file", str(self.errors)]
        if limit is not None:
            self.command += ["-l", str(limit)]
        self.command += list(extra or [])
        self.started = time.monotonic()
        self.process = subprocess.Popen(self.command, cwd=workdir, stdout=subprocess.DEVNULL,
                                        stderr=open(workdir / "sipp.stderr", "wb"))

    def running(self) -> bool:
        return self.process.poll() is None

    def wait(self) -> SippRun:
        """Wait for SIPp (at most its own -timeout plus 15 s), then read its statistics."""
        timed_out = False
        try:
            self.process.wait(timeout=self.timeout_s + 15 - (time.monotonic() - self.started))
        except (subprocess.TimeoutExpired, ValueError):
            timed_out = True
        finally:
            kill(self.process, signal.SIGTERM)
        run = SippRun(self.command, self.process.returncode, round(time.monotonic() - self.started, 1),
                      timed_out=timed_out)
        row = last_stats_row(self.stats)
        run.successful = int(row.get("SuccessfulCall(C)", 0) or 0)
        run.failed = int(row.get("FailedCall(C)", 0) or 0)
        run.retransmissions = int(row.get("Retransmissions(C)", 0) or 0)
        run.dead_calls = int(row.get("DeadCalls(C)", 0) or 0)
        run.out_of_call = int(row.get("OutOfCallMsgs(C)", 0) or 0)
        if self.errors.exists():
            run.errors_tail = self.errors.read_text(errors="replace")[-1500:]
        return run

    def stop(self) -> None:
        kill(self.process, signal.SIGTERM)


def last_stats_row(path: Path) -> dict[str, str]:
    """The last row of SIPp's -trace_stat CSV (';'-separated, header first) as {column: value}."""
    if not path.exists():
        return {}
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    if len(lines) < 2:
        return {}
    header, last = lines[0].split(";"), lines[-1].split(";")
    return dict(zip(header, last))


class Capture:
    """`tshark -i lo -f FILTER -w FILE` in the background, started and stopped by pid."""

    def __init__(self, pcap: Path, capture_filter: str, timeout_s: int) -> None:
        self.pcap = pcap
        self.stderr_path = pcap.with_suffix(".stderr")
        self.process = subprocess.Popen(["tshark", "-i", "lo", "-f", capture_filter, "-w", str(pcap), "-q",
                                         "-B", "64", "-a", f"duration:{timeout_s}"],
                                        stdout=subprocess.DEVNULL, stderr=open(self.stderr_path, "wb"))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # wait until dumpcap says it captures
            if "Capturing on" in self.stderr_path.read_text(errors="replace") or self.process.poll() is not None:
                break
            time.sleep(0.05)
        time.sleep(0.3)

    def stop(self) -> str:
        """Stop capturing (SIGINT lets tshark close the file); returns its stderr (drop counts)."""
        kill(self.process, signal.SIGINT, wait=15)
        return self.stderr_path.read_text(errors="replace")


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def r3(value):
    return None if value is None else round(value, 3)


# ----------------------------------------------------------------------------------------------
# rate
# ----------------------------------------------------------------------------------------------
def setup_latencies(pcap: Path, sip_port: int) -> list[float]:
    """ms from the first INVITE to the first 200 (CSeq INVITE) per Call-ID, in a SIP capture."""
    invites: dict[str, float] = {}
    answers: dict[str, float] = {}
    for message in sip_datagrams(pcap, sip_port):
        if message.method == "INVITE":
            invites.setdefault(message.call_id, message.at)
        elif message.status == 200 and message.cseq_method == "INVITE":
            answers.setdefault(message.call_id, message.at)
    return [1000 * (answers[c] - invites[c]) for c in invites if c in answers]


def rate_step(args, target: str, pid: int | None, rate: float, seconds: float, workdir: Path,
              capture_port: int | None = None) -> dict:
    """One step of load at `rate` calls/s for `seconds`; with `capture_port`, setup latency too."""
    calls = max(1, int(round(rate * seconds)))
    workdir.mkdir(parents=True, exist_ok=True)
    capture = None
    pcap = workdir / "sip.pcap"
    if capture_port is not None:
        capture = Capture(pcap, f"udp port {capture_port}", timeout_s=int(seconds) + 60)
    window = CpuWindow(pid, int(target.rsplit(":", 1)[1])).start()
    sipp = None
    try:
        number = args.number or ("9000" if args.bench_flow else "1000")
        sipp = Sipp(workdir, target, SCENARIOS / "rate_call.xml", number=number, rate=rate,
                    calls=calls, hold_ms=1000, limit=None, timeout_s=int(seconds) + 30)
        run = sipp.wait()
    finally:
        if sipp is not None:
            sipp.stop()
        usage = window.stop()
        capture_log = capture.stop() if capture is not None else ""
    result = {"rate": rate, "calls": calls, "successful": run.successful, "failed": run.failed,
              "retransmissions": run.retransmissions, "sipp_exit": run.returncode, "sipp_elapsed_s": run.elapsed_s,
              "timed_out": run.timed_out, "ok": run.ok and run.successful == calls, **usage}
    if run.successful == 0 and run.failed == 0 and not run.timed_out:
        result["ok"] = False  # no statistics at all: SIPp could not run
    if not result["ok"]:
        result["errors_tail"] = run.errors_tail
    if capture is not None:
        latencies = setup_latencies(pcap, capture_port)
        result.update({"latency_samples": len(latencies), "setup_p50_ms": r3(percentile(latencies, 50)),
                       "setup_p99_ms": r3(percentile(latencies, 99)), "setup_max_ms": r3(max(latencies, default=None)),
                       "capture_note": capture_log.strip().splitlines()[-1:] if capture_log.strip() else []})
        if not args.keep:
            pcap.unlink(missing_ok=True)
    return result


def run_rate(args, workdir: Path, run_index: int) -> dict:
    """Step the rate until the first failed call; then latency at half the best clean rate."""
    steps: list[dict] = []
    best = None
    clean, dirty = None, False  # highest rate below the first step with a retransmission or UDP drop
    with server_for(args, workdir) as own:
        target = own.target if own else args.target
        pid = own.pid if own else args.server_pid
        idle_rss = rss_kib(pid)
        for rate in args.rates:
            step_dir = workdir / f"run{run_index}-rate{rate:g}"
            lag_before = loop_lag_over(own.http_port if own else None)
            step = rate_step(args, target, pid, rate, args.step_seconds, step_dir)
            lag_after = loop_lag_over(own.http_port if own else None)
            if lag_before and lag_after:
                step["loop_stalls_over_100ms"] = lag_after["over_threshold"] - lag_before["over_threshold"]
                step["loop_lag_worst_bucket_s"] = lag_after["worst_bucket_s"]
                step["gc_pauses"] = lag_after["gc_pauses"] - lag_before["gc_pauses"]
                step["gc_pause_seconds"] = round(lag_after["gc_pause_seconds"] - lag_before["gc_pause_seconds"], 3)
            steps.append(step)
            print(f"  rate {rate:g}/s: {step['successful']}/{step['calls']} ok, {step['failed']} failed, "
                  f"{step['retransmissions']} retrans, {step['sip_socket_drops']} SIP socket drops, "
                  f"cpu {step['cpu_percent']}% + media {step.get('media_cpu_percent')}% "
                  f"+ records {step.get('records_cpu_percent')}% "
                  f"(machine {step['machine_cpu_percent']}%), "
                  f"rss {step['rss_kib']} KiB, stalls >100 ms {step.get('loop_stalls_over_100ms')}, "
                  f"gc {step.get('gc_pauses')} pauses {step.get('gc_pause_seconds')} s, "
                  f"sipp {step['sipp_elapsed_s']} s", flush=True)
            if len(step.get("rss_timeline") or []) > 6:
                print("    rss KiB every 10 s: " + " ".join(str(rss) for _, rss in step["rss_timeline"]), flush=True)
            if not step["ok"]:
                if own and not own.server.alive():
                    step["server_log_tail"] = own.log_tail()
                break
            best = rate
            if step["retransmissions"] or step["sip_socket_drops"]:
                dirty = True
            if not dirty:
                clean = rate
    latency = None
    if (best is not None or args.latency_rate) and not args.no_latency:
        half = args.latency_rate or best / 2
        # A fresh server for the latency run (ours): the failed step may have left a backlog behind.
        with server_for(args, workdir) as own:
            target = own.target if own else args.target
            pid = own.pid if own else args.server_pid
            port = own.sip_port if own else int(target.rsplit(":", 1)[1])
            latency = rate_step(args, target, pid, half, args.latency_seconds,
                                workdir / f"run{run_index}-latency{half:g}", capture_port=port)
        print(f"  latency at {half:g}/s: p50 {latency['setup_p50_ms']} ms, p99 {latency['setup_p99_ms']} ms "
              f"({latency['latency_samples']} calls, {latency['failed']} failed, cpu {latency['cpu_percent']}%)",
              flush=True)
    return {"steps": steps, "best_rate": best, "best_rate_no_retrans": clean, "idle_rss_kib": idle_rss,
            "latency": latency}


# ----------------------------------------------------------------------------------------------
# concurrency
# ----------------------------------------------------------------------------------------------
def write_pcmu_pcap(path: Path, seconds: float) -> None:
    """An Ethernet/IPv4/UDP/RTP pcap of PCMU (PT 0) frames every 20 ms: a 440 Hz tone, for SIPp's
    play_pcap_audio (which rewrites addresses and ports)."""
    frames = int(seconds * 50)
    tone = bytes(_ulaw(int(8000 * math.sin(2 * math.pi * 440 * n / 8000))) for n in range(8000))
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    ssrc = 0x1234ABCD
    for i in range(frames):
        payload = tone[(i * 160) % 8000:(i * 160) % 8000 + 160]
        marker_pt = 0x80 if i == 0 else 0  # PT 0 (PCMU), marker on the first packet
        rtp = struct.pack("!BBHII", 0x80, marker_pt, i & 0xFFFF, (i * 160) & 0xFFFFFFFF, ssrc) + payload
        udp = struct.pack("!HHHH", 40000, 40002, 8 + len(rtp), 0) + rtp
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i & 0xFFFF, 0, 64, 17, 0,
                         socket.inet_aton(LOOPBACK), socket.inet_aton(LOOPBACK))
        ip = ip[:10] + struct.pack("!H", _ip_checksum(ip)) + ip[12:]
        frame = b"\x00" * 12 + b"\x08\x00" + ip + udp
        stamp = i * 0.02
        out += struct.pack("<IIII", int(stamp), int(round((stamp % 1) * 1e6)) % 1000000, len(frame), len(frame))
        out += frame
    path.write_bytes(bytes(out))


def write_pcmu_wav(path: Path, seconds: float) -> None:
    """A mu-law WAV (8 kHz mono) of a 440 Hz tone, for SIPp's rtp_stream (it loops the file)."""
    samples = bytes(_ulaw(int(8000 * math.sin(2 * math.pi * 440 * n / 8000))) for n in range(int(8000 * seconds)))
    fmt = struct.pack("<HHIIHHH", 7, 1, 8000, 8000, 1, 8, 0)  # WAVE_FORMAT_MULAW, extension size 0
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(samples)) + samples
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def _ip_checksum(header: bytes) -> int:
    total = sum(struct.unpack("!10H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _ulaw(sample: int) -> int:
    """G.711 mu-law encoding of one 16-bit sample."""
    sign = 0x80 if sample < 0 else 0
    sample = min(abs(sample), 32635) + 0x84
    exponent = max(0, sample.bit_length() - 8)
    exponent = min(exponent, 7)
    mantissa = (sample >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def rtp_streams(pcap: Path) -> list[dict]:
    """Per stream from `tshark -q -z rtp,streams`: packets, lost, max delta, max and mean jitter (ms)."""
    completed = subprocess.run(["tshark", "-r", str(pcap), "-q", "-o", "rtp.heuristic_rtp:TRUE", "-z", "rtp,streams"],
                               capture_output=True, text=True, timeout=180)
    streams = []
    # Start time  End time  Src IP  Port  Dest IP  Port  SSRC  Payload  Pkts  Lost (pct)  Min Delta
    #   Mean Delta  Max Delta  Min Jitter  Mean Jitter  Max Jitter  Problems?   (tshark 4.0, ms)
    number = r"\s+([\d.]+)"
    pattern = re.compile(r"^\s*([\d.]+)\s+([\d.]+)\s+(\S+)\s+(\d+)\s+(\S+)\s+(\d+)\s+(0x[0-9A-Fa-f]+)\s+(.+?)"
                         r"\s+(\d+)\s+(-?\d+)\s+\((-?[\d.]+)%\)" + number * 6)
    for line in completed.stdout.splitlines():
        match = pattern.match(line)
        if not match:
            continue
        g = match.groups()
        start, end, packets = float(g[0]), float(g[1]), int(g[8])
        streams.append({"src_port": int(g[3]), "dst_port": int(g[5]), "ssrc": g[6], "payload": g[7].strip(),
                        "packets": packets, "lost": int(g[9]), "max_delta_ms": float(g[13]),
                        "mean_jitter_ms": float(g[15]), "max_jitter_ms": float(g[16]),
                        "pps": (packets - 1) / (end - start) if end > start else None})
    return streams


def concurrency_step(args, n: int, workdir: Path, run_index: int) -> dict:
    """N held calls to the endless loop, media both ways; capture server->caller RTP after ramp-up."""
    step_dir = workdir / f"run{run_index}-conc{n}"
    step_dir.mkdir(parents=True, exist_ok=True)
    hold = args.hold_seconds
    ramp = n / args.ramp_rate
    scenario = step_dir / "hold_call.xml"
    template = (SCENARIOS / "hold_call.xml").read_text()
    if args.media_source == "rtpstream":
        tone = workdir / "pcmu-tone.wav"
        if not tone.exists():
            write_pcmu_wav(tone, 10.0)
        # SIPp's rtp_stream: one sending thread per -rtp_threadtasks calls instead of one per call.
        template = template.replace('<exec play_pcap_audio="@PCAP@"/>', f'<exec rtp_stream="{tone},-1,0"/>')
    else:
        pcap_audio = workdir / f"pcmu-{hold}s.pcap"
        if not pcap_audio.exists():
            write_pcmu_pcap(pcap_audio, hold + 1)
        template = template.replace("@PCAP@", str(pcap_audio))
    scenario.write_text(template)
    with server_for(args, workdir) as own:
        target = own.target if own else args.target
        pid = own.pid if own else args.server_pid
        time.sleep(0.5)
        idle_rss = rss_kib(pid)
        if own:
            rtp_filter = f"udp and src portrange {own.rtp_range[0]}-{own.rtp_range[1]}"
        else:
            rtp_filter = f"udp and src portrange {args.rtp_ports}"
        sipp = capture = window = None
        usage: dict = {}
        capture_log = ""
        rtp_pcap = step_dir / "rtp.pcap"
        try:
            sipp = Sipp(step_dir, target, scenario, number=args.number or "9001", rate=args.ramp_rate, calls=n,
                        hold_ms=hold * 1000, limit=n, timeout_s=int(ramp + hold + 30))
            settle = ramp + 2.0
            deadline = time.monotonic() + settle
            while time.monotonic() < deadline and sipp.running():
                time.sleep(0.2)
            window_len = min(args.capture_seconds, max(1.0, hold - 4.0))
            # Only the server's RTP to this SIPp's media port: other servers may share the machine.
            rtp_filter += f" and dst port {sipp.media_port}"
            if sipp.running():
                capture = Capture(rtp_pcap, rtp_filter, timeout_s=int(window_len) + 30)
                window = CpuWindow(pid).start()
                time.sleep(window_len)
                usage = window.stop()
                capture_log = capture.stop()
            run = sipp.wait()
        finally:
            if sipp is not None:
                sipp.stop()
            if capture is not None:
                capture_log = capture_log or capture.stop()
        server_dead = own is not None and not own.server.alive()
        log_tail = own.log_tail() if own and (server_dead or not run.ok) else ""
    streams = rtp_streams(rtp_pcap) if rtp_pcap.exists() else []
    if not args.keep:
        rtp_pcap.unlink(missing_ok=True)
    mean_jitter = [s["mean_jitter_ms"] for s in streams]
    max_jitter = [s["max_jitter_ms"] for s in streams]
    max_delta = [s["max_delta_ms"] for s in streams]
    pps = [s["pps"] for s in streams if s["pps"] is not None]
    lost = sum(max(0, s["lost"]) for s in streams)
    peak = usage.get("peak_rss_kib")
    rss_per_call = None if peak is None or idle_rss is None else round((peak - idle_rss) / n, 1)
    result = {"n": n, "successful": run.successful, "failed": run.failed, "retransmissions": run.retransmissions,
              "sipp_exit": run.returncode, "sipp_elapsed_s": run.elapsed_s, "timed_out": run.timed_out,
              "streams": len(streams), "packets": sum(s["packets"] for s in streams), "lost": lost,
              "mean_jitter_p50_ms": r3(percentile(mean_jitter, 50)),
              "mean_jitter_p99_ms": r3(percentile(mean_jitter, 99)),
              "max_jitter_p50_ms": r3(percentile(max_jitter, 50)), "max_jitter_p99_ms": r3(percentile(max_jitter, 99)),
              "max_delta_p50_ms": r3(percentile(max_delta, 50)), "max_delta_p99_ms": r3(percentile(max_delta, 99)),
              "pps_per_stream_p1": r3(percentile(pps, 1)), "pps_per_stream_p50": r3(percentile(pps, 50)),
              "idle_rss_kib": idle_rss, "rss_per_call_kib": rss_per_call, **usage,
              "capture_note": capture_log.strip().splitlines()[-1:] if capture_log.strip() else []}
    problems = []
    if not run.ok or run.successful != n:
        problems.append(f"sipp: {run.successful}/{n} ok, {run.failed} failed, exit {run.returncode}")
    if len(streams) < n:
        problems.append(f"only {len(streams)} of {n} server->caller streams captured")
    if lost > 0:
        problems.append(f"{lost} RTP packets lost")
    if result["mean_jitter_p99_ms"] is not None and result["mean_jitter_p99_ms"] > args.max_jitter_ms:
        problems.append(f"mean jitter p99 {result['mean_jitter_p99_ms']} ms > {args.max_jitter_ms} ms")
    if server_dead:
        problems.append("server died")
    result["problems"] = problems
    result["ok"] = not problems
    if not result["ok"]:
        result["errors_tail"] = run.errors_tail
        result["server_log_tail"] = log_tail
    return result


def run_concurrency(args, workdir: Path, run_index: int) -> dict:
    steps = []
    for n in args.concurrency:
        step = concurrency_step(args, n, workdir, run_index)
        steps.append(step)
        print(f"  N={n}: {step['successful']}/{n} ok, {step['streams']} streams, lost {step['lost']}, "
              f"mean jitter p50/p99 {step['mean_jitter_p50_ms']}/{step['mean_jitter_p99_ms']} ms, "
              f"max delta p99 {step['max_delta_p99_ms']} ms, "
              f"cpu {step.get('cpu_percent')}% + media {step.get('media_cpu_percent')}% "
              f"(machine {step.get('machine_cpu_percent')}%), "
              f"rss/call {step['rss_per_call_kib']} KiB" + (f"  FAIL: {'; '.join(step['problems'])}"
                                                              if step["problems"] else ""), flush=True)
        if not step["ok"]:
            break
    passed = [s["n"] for s in steps if s["ok"]]
    return {"steps": steps, "best_n": max(passed) if passed else None}


# ----------------------------------------------------------------------------------------------
# Summary
# ----------------------------------------------------------------------------------------------
def median(values):
    values = [v for v in values if v is not None]
    return None if not values else statistics.median(values)


def summarize(mode: str, runs: list[dict]) -> dict:
    if mode == "rate":
        best = median([r["best_rate"] for r in runs])
        lat = [r["latency"] for r in runs if r["latency"]]
        per_rate: dict[float, list[dict]] = {}
        for r in runs:
            for s in r["steps"]:
                per_rate.setdefault(s["rate"], []).append(s)
        return {"best_rate_median": best, "best_rates": [r["best_rate"] for r in runs],
                "best_rates_no_retrans": [r["best_rate_no_retrans"] for r in runs],
                "setup_p50_ms_median": median([x["setup_p50_ms"] for x in lat]),
                "setup_p99_ms_median": median([x["setup_p99_ms"] for x in lat]),
                "latency_rate": median([x["rate"] for x in lat]),
                "latency_cpu_percent_median": median([x["cpu_percent"] for x in lat]),
                "per_rate": {str(k): {"runs": len(v), "ok": sum(s["ok"] for s in v),
                                      "cpu_percent_median": median([s["cpu_percent"] for s in v]),
                                      "media_cpu_percent_median": median([s.get("media_cpu_percent") for s in v]),
                                      "rss_kib_median": median([s["rss_kib"] for s in v]),
                                      "failed_median": median([s["failed"] for s in v]),
                                      "retrans_median": median([s["retransmissions"] for s in v]),
                                      "udp_drops_median": median([s["sip_socket_drops"] for s in v])}
                             for k, v in sorted(per_rate.items())}}
    per_n: dict[int, list[dict]] = {}
    for r in runs:
        for s in r["steps"]:
            per_n.setdefault(s["n"], []).append(s)
    keys = ["lost", "mean_jitter_p50_ms", "mean_jitter_p99_ms", "max_jitter_p99_ms", "max_delta_p50_ms",
            "max_delta_p99_ms", "cpu_percent", "media_cpu_percent", "rss_per_call_kib", "peak_rss_kib", "pps_per_stream_p50"]
    return {"best_n": [r["best_n"] for r in runs],
            "per_n": {str(n): {"runs": len(v), "ok": sum(s["ok"] for s in v),
                               **{f"{k}_median": median([s.get(k) for s in v]) for k in keys}}
                      for n, v in sorted(per_n.items())}}


def print_table(mode: str, summary: dict) -> None:
    if mode == "rate":
        print("\nrate (calls/s) | runs ok | failed (median) | retrans | SIP sock drops | server CPU % | media CPU % "
              "| RSS KiB")
        for rate, row in summary["per_rate"].items():
            print(f"{rate:>14} | {row['ok']}/{row['runs']:<5} | {row['failed_median']!s:>15} | "
                  f"{row['retrans_median']!s:>7} | {row['udp_drops_median']!s:>14} | "
                  f"{row['cpu_percent_median']!s:>12} | {row['media_cpu_percent_median']!s:>11} | "
                  f"{row['rss_kib_median']}")
        print(f"highest rate with 0 failed calls: {summary['best_rates']} (median {summary['best_rate_median']}); "
              f"with 0 retransmissions and 0 SIP socket drops: {summary['best_rates_no_retrans']}")
        print(f"setup latency at {summary['latency_rate']}/s: p50 {summary['setup_p50_ms_median']} ms, "
              f"p99 {summary['setup_p99_ms_median']} ms (medians over runs)")
        return
    print("\n    N | ok | lost | mean jitter p50/p99 ms | max jitter p99 | max delta p50/p99 ms | CPU % | "
          "media CPU % | RSS/call KiB | pkt/s/stream")
    for n, row in summary["per_n"].items():
        print(f"{n:>5} | {row['ok']}/{row['runs']} | {row['lost_median']!s:>4} | "
              f"{row['mean_jitter_p50_ms_median']!s:>10} / {row['mean_jitter_p99_ms_median']!s:<9} | "
              f"{row['max_jitter_p99_ms_median']!s:>14} | {row['max_delta_p50_ms_median']!s:>8} / "
              f"{row['max_delta_p99_ms_median']!s:<9} | {row['cpu_percent_median']!s:>5} | "
              f"{row['media_cpu_percent_median']!s:>11} | {row['rss_per_call_kib_median']!s:>12} | {row['pps_per_stream_p50_median']}")
    print(f"highest N passing: {summary['best_n']}")


def code_version() -> str:
    """The commit of the tree our server runs from (read-only `git rev-parse`), "+dirty" when acd/ has
    uncommitted edits: the server imports the tree as it is when each run starts."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "acd"], cwd=REPO, capture_output=True,
                               text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["rate", "concurrency"])
    parser.add_argument("--target", help="host:port of the SIP server under test (default: start our own)")
    parser.add_argument("--number", help="dialled number (default: rate 1000, the shipped demo's front door "
                                         "(welcome, hours, DTMF menu); concurrency 9001, an endless hold loop)")
    parser.add_argument("--bench-flow", action="store_true",
                        help="rate: dial 9000, the bench-only flow (prompt, then hold music), not the demo IVR")
    parser.add_argument("--server-pid", type=int, help="pid of a --target server, for CPU and RSS")
    parser.add_argument("--rtp-ports", default="10000-60000",
                        help="source port range of a --target server's RTP, for the capture filter")
    parser.add_argument("--rates", default="50,100,150,200,300,400,500,600,700,800",
                        help="call rates to step through, comma-separated")
    parser.add_argument("--step-seconds", type=float, default=30.0, help="seconds of load per rate step")
    parser.add_argument("--latency-seconds", type=float, default=30.0, help="seconds of load for the latency run")
    parser.add_argument("--no-latency", action="store_true", help="skip the latency run at half the best rate")
    parser.add_argument("--latency-rate", type=float, default=None,
                        help="rate for the latency run (default: half the best clean rate)")
    parser.add_argument("--concurrency", default="100,250,500,1000", help="values of N, comma-separated")
    parser.add_argument("--hold-seconds", type=int, default=60, help="how long each concurrent call lasts")
    parser.add_argument("--capture-seconds", type=float, default=20.0, help="RTP capture window after ramp-up")
    parser.add_argument("--ramp-rate", type=float, default=100.0, help="calls/s while ramping up concurrency")
    parser.add_argument("--media-source", choices=["pcap", "rtpstream"], default="pcap",
                        help="how SIPp callers send their audio: play_pcap_audio (one thread per call, the "
                             "peer harness) or rtp_stream (a thread per -rtp_threadtasks calls)")
    parser.add_argument("--max-jitter-ms", type=float, default=5.0, help="fail a step above this mean-jitter p99")
    parser.add_argument("--runs", type=int, default=1, help="repeat the whole measurement (medians reported)")
    parser.add_argument("--server-log-level", default="INFO",
                        help="our server's --log-level (default INFO, what `acd serve` runs at)")
    parser.add_argument("--rtp-workers", default="auto",
                        help="our server's rtp: workers: (auto, the shipped default; 0: media in the call process)")
    parser.add_argument("--admission", choices=["off", "auto"], default="off",
                        help="our server's admission control (sip: admission:): off (default, to measure capacity) "
                             "or auto (the shipped defaults: calls past them are refused 503 and count as failed)")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--workdir", type=Path, help="keep SIPp logs etc. here (default: a temp dir, removed)")
    parser.add_argument("--keep", action="store_true", help="keep pcaps")
    args = parser.parse_args(argv)
    args.rates = [float(x) for x in args.rates.split(",") if x]
    args.concurrency = [int(x) for x in args.concurrency.split(",") if x]
    for tool in ("sipp", "tshark"):
        if shutil.which(tool) is None:
            parser.error(f"{tool} is not installed (scripts/setup installs it)")
    if args.target and not re.fullmatch(r"[^:]+:\d+", args.target):
        parser.error("--target must be host:port")

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="sip-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    runs = []
    started = time.time()
    try:
        for index in range(args.runs):
            version = None if args.target else code_version()
            print(f"{args.mode} run {index + 1}/{args.runs} against {args.target or 'our server at ' + version}",
                  flush=True)
            run = run_rate(args, workdir, index) if args.mode == "rate" else run_concurrency(args, workdir, index)
            run["code_version"] = version
            runs.append(run)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    summary = summarize(args.mode, runs)
    print_table(args.mode, summary)
    if args.out:
        report = {"mode": args.mode, "target": args.target or "own", "started": started,
                  "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                              "python": sys.version.split()[0]},
                  "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                  "summary": summary, "runs": runs}
        args.out.write_text(json.dumps(report, indent=2))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
