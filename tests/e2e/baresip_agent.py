"""baresip (Debian's 1.0.0) as an agent's softphone: a second SIP stack besides PJSUA2.

    phone = BaresipAgent(workdir, account="<sip:1001@10.200.0.1:5060>;auth_pass=...",
                         listen="10.200.0.2:5060", play=tone_wav, command_prefix=net.exec_in(net.peer_ns))
    phone.wait_for_output(r"\\{0/UDP/v4\\} 200 OK")     # registered
    phone.command("dial *45")
    ...
    phone.stop()

It runs headless from a config directory of its own (`-f`): no sound card. The microphone is
`aufile` (a WAV played once, 8 kHz mono 16-bit); the speaker is `aubridge`, a software device
that nothing reads; what it receives is written by the `sndfile` filter to
`<workdir>/sound/dump-<time>-dec.wav` (what it sent: `-enc.wav`). In 1.0.0 `aufile` is a source
only, and ALSA's `null` device as the player spins a core (it never blocks), hence `aubridge`.
Commands are the menu module's long commands (`/dial N`, `/accept`, `/hangup`, `/quit`), typed
on stdin through the `stdio` module; stdout (with stderr) is collected for `wait_for_output`.
The process is bounded by baresip's own `-t` and killed by pid, with its process group, on stop.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

MODULES_DIR = Path("/usr/lib/baresip/modules")
ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*m")
CONFIG = """\
sip_listen\t\t{listen}
audio_player\t\taubridge,nobody-listens
audio_alert\t\taubridge,nobody-listens
audio_source\t\taufile,{play}
ausrc_srate\t\t8000
auplay_srate\t\t8000
ausrc_channels\t\t1
auplay_channels\t\t1
snd_path\t\t{sound_dir}
module_path\t\t{modules}
module\t\t\tstdio.so
module\t\t\tg711.so
module\t\t\taufile.so
module\t\t\taubridge.so
module\t\t\tsndfile.so
module_app\t\taccount.so
module_app\t\tmenu.so
"""


def baresip_installed() -> bool:
    """True when Debian's baresip-core (binary and modules) is there."""
    return shutil.which("baresip") is not None and (MODULES_DIR / "aubridge.so").exists()


class BaresipAgent:
    """A running baresip with one account; see the module docstring."""

    def __init__(self, workdir: Path, *, account: str, listen: str, play: Path,
                 command_prefix: tuple[str, ...] = (), lifetime_seconds: int = 60, sip_trace: bool = True) -> None:
        """`account`: one line of baresip's accounts file (`<sip:user@host:port>;auth_pass=...`);
        `listen`: the SIP address:port it binds; `play`: the 8 kHz mono WAV it sends as its voice;
        `lifetime_seconds`: baresip quits by itself after this long (`-t`), whatever happens;
        `sip_trace`: every SIP message sent and received is in the output too (`-s`)."""
        self.log_path = workdir / "baresip.log"
        self.sound_dir = workdir / "sound"
        self.sound_dir.mkdir(parents=True, exist_ok=True)
        config_dir = workdir / "config"
        config_dir.mkdir(exist_ok=True)
        (config_dir / "config").write_text(CONFIG.format(listen=listen, play=play, sound_dir=self.sound_dir,
                                                         modules=MODULES_DIR))
        (config_dir / "accounts").write_text(account + "\n")
        (config_dir / "contacts").write_text("")
        self._output = bytearray()
        self._lock = threading.Lock()
        self.process = subprocess.Popen([*command_prefix, "baresip", "-4", "-f", str(config_dir),
                                         "-t", str(int(lifetime_seconds)), *(["-s"] if sip_trace else [])],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for chunk in iter(lambda: self.process.stdout.read1(4096), b""):
            with self._lock:
                self._output += chunk

    @property
    def output(self) -> str:
        """Everything baresip printed so far, colour codes removed."""
        with self._lock:
            return ANSI_COLOUR.sub("", self._output.decode(errors="replace"))

    def command(self, text: str) -> None:
        """Type a long command, e.g. "dial *45", "accept", "hangup"."""
        self.process.stdin.write(f"/{text}\n".encode())
        self.process.stdin.flush()

    def wait_for_output(self, pattern: str, timeout: float = 10.0, count: int = 1) -> re.Match:
        """Wait until the output matches `pattern` `count` times; returns the last match. Fails
        with the output's tail when it does not come in time or baresip exits."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            exited = self.process.poll() is not None
            matches = list(regex.finditer(self.output))
            if len(matches) >= count:
                return matches[count - 1]
            if exited or time.monotonic() > deadline:
                state = f"exited {self.process.returncode}" if exited else f"not after {timeout}s"
                tail = "\n".join(self.output.splitlines()[-40:])
                raise AssertionError(f"baresip output has no /{pattern}/ x{count} ({state}):\n{tail}")
            time.sleep(0.05)

    def received_audio(self) -> list[Path]:
        """The WAV files of what each call received, oldest first."""
        return sorted(self.sound_dir.glob("dump-*-dec.wav"))

    def stop(self) -> None:
        """Quit (unregistering), then kill its process group if it lingers; its output is left
        in `log_path`."""
        if self.process.poll() is None:
            try:
                self.command("quit")
                self.process.wait(timeout=5)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                pass
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(timeout=5)
        self._reader.join(timeout=5)
        self.log_path.write_text(self.output)
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:
                pass
