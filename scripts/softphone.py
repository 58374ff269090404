#!/usr/bin/env python3
"""A real SIP softphone (PJSUA2) for tests and for people trying the server.

    .venv/bin/python scripts/softphone.py call sip:1000@127.0.0.1:5060 \
        --from-user 5551234 --dtmf 1,2 --dtmf-delay 1 --record heard.wav --hangup-after 5

Everything is bound to 127.0.0.1. No sound card is used (PJSUA2 null audio device).
At the end ONE JSON object is printed on stdout (all PJSIP logging goes to stderr):

    {"status_codes": [100, 180, 200], "final_status": 200, "answered": true,
     "connected_seconds": 4.2, "hung_up_by": "local", "dtmf_sent": "12", ...}

Fields: status_codes = INVITE responses in order (from the transaction and onCallState; for a
call we cancelled it ends with PJSIP's own 487), final_status = first final code, hung_up_by =
"local" (we sent BYE/CANCEL, or PJSUA ended the call itself, e.g. 488 no common codec) |
"remote" (BYE received) | "none", record_format = what the WAV file holds (16-bit mono PCM at
--clock-rate, 8000 Hz by default), timed_out, error (null when all went as asked).

Exit status: 0 when the call was answered and then hung up (by either side), 2 when it was
never answered, 1 on errors (bad arguments, PJSUA2 failure, answered call still up at --timeout).

Structure: one function per subcommand (`cmd_call`); `register` / `answer` (an agent phone) can
be added later as further subparsers reusing `Phone`.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import signal
import sys
import time
import wave
import weakref

import pjsua2 as pj

LOCAL_HOST = "127.0.0.1"
POLL_MS = 10

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_NOT_ANSWERED = 2


def log(msg: str) -> None:
    print(f"softphone: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# stdout hygiene: PJSIP writes its console log to the C-level stdout. Keep the real stdout for the
# final JSON only, and point fd 1 at stderr for everything else.
# --------------------------------------------------------------------------------------------
class JsonOut:
    def __init__(self) -> None:
        sys.stdout.flush()
        self._fd = os.dup(1)
        os.dup2(2, 1)

    def emit(self, obj: dict) -> None:
        data = (json.dumps(obj) + "\n").encode()
        while data:
            n = os.write(self._fd, data)
            data = data[n:]
        os.close(self._fd)


# --------------------------------------------------------------------------------------------
# PJSUA2 objects
# --------------------------------------------------------------------------------------------
class Account(pj.Account):
    """No registration: a local identity used to place calls."""


class Call(pj.Call):
    """Records what happens; all actions are taken from the main loop, not from callbacks."""

    def __init__(self, acc: pj.Account) -> None:
        super().__init__(acc)
        self.status_codes: list[int] = []
        self.state = pj.PJSIP_INV_STATE_NULL
        self.connected_at: float | None = None
        self.disconnected_at: float | None = None
        self.disconnect_code = 0
        self.disconnect_reason = ""
        self.media_active = False
        self.media_dirty = False  # media state changed, main loop must (re)connect ports
        self.dtmf_received: list[str] = []
        self.bye_received = False  # the remote hung up (vs. we did, or PJSUA did on an error)

    def _note_code(self, code: int) -> None:
        if code and code >= 100 and (not self.status_codes or self.status_codes[-1] != code):
            self.status_codes.append(code)

    def onCallTsxState(self, prm: pj.OnCallTsxStateParam) -> None:
        # Every response to our INVITE (100, 18x, 2xx, 4xx...), including 100 Trying which does
        # not change the call state.
        try:
            e = prm.e
            if e.type != pj.PJSIP_EVENT_TSX_STATE:
                return
            tsx = e.body.tsxState.tsx
            rx = e.body.tsxState.type == pj.PJSIP_EVENT_RX_MSG
            if tsx.method == "INVITE" and tsx.role == pj.PJSIP_ROLE_UAC and rx:
                self._note_code(tsx.statusCode)
            elif tsx.method == "BYE" and tsx.role == pj.PJSIP_ROLE_UAS:
                self.bye_received = True
        except Exception as exc:  # never let an exception escape into C++
            log(f"onCallTsxState: {exc!r}")

    def onCallState(self, prm: pj.OnCallStateParam) -> None:
        try:
            ci = self.getInfo()
            self.state = ci.state
            log(f"call state {ci.stateText} ({ci.lastStatusCode} {ci.lastReason})")
            if ci.state in (pj.PJSIP_INV_STATE_EARLY, pj.PJSIP_INV_STATE_CONNECTING,
                            pj.PJSIP_INV_STATE_CONFIRMED) and self.connected_at is None:
                self._note_code(ci.lastStatusCode)
            if ci.state == pj.PJSIP_INV_STATE_CONFIRMED and self.connected_at is None:
                self.connected_at = time.monotonic()
            if ci.state == pj.PJSIP_INV_STATE_DISCONNECTED:
                self.disconnected_at = time.monotonic()
                self.disconnect_code = ci.lastStatusCode
                self.disconnect_reason = ci.lastReason
                if self.connected_at is None:
                    self._note_code(ci.lastStatusCode)
                self.media_active = False
        except Exception as exc:
            log(f"onCallState: {exc!r}")

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:
        try:
            ci = self.getInfo()
            active = False
            for i, mi in enumerate(ci.media):
                if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                    active = True
            self.media_active = active
            self.media_dirty = True
        except Exception as exc:
            log(f"onCallMediaState: {exc!r}")

    def onDtmfDigit(self, prm: pj.OnDtmfDigitParam) -> None:
        self.dtmf_received.append(prm.digit)


class Phone:
    """Owns the endpoint, the transport and the account; runs the polling loop (main thread only)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.ep: pj.Endpoint | None = None
        self.acc: Account | None = None
        self.transport_id = -1
        self.local_port = 0
        self.calls: list[Call] = []
        self._weak: list[weakref.ref] = []  # every Call/Account, to check none outlives the lib

    def track(self, obj):
        self._weak.append(weakref.ref(obj))
        return obj

    @property
    def stop_requested(self) -> str:
        return _STOP["signal"]

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        a = self.args
        self.ep = pj.Endpoint()
        self.ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.mainThreadOnly = True  # every callback runs inside libHandleEvents()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.maxCalls = 4
        cfg.uaConfig.userAgent = "acd-softphone (PJSUA2 %s)" % self.ep.libVersion().full
        cfg.logConfig.level = max(1, a.log_level)
        cfg.logConfig.consoleLevel = a.log_level
        cfg.logConfig.msgLogging = 1 if a.log_level >= 4 else 0
        med = cfg.medConfig
        med.clockRate = a.clock_rate
        med.sndClockRate = a.clock_rate
        med.channelCount = 1
        med.noVad = True  # keep sending RTP during silence (servers latch on it)
        med.ecTailLen = 0
        self.ep.libInit(cfg)

        tcfg = pj.TransportConfig()
        tcfg.port = a.local_port
        tcfg.boundAddress = LOCAL_HOST
        tcfg.publicAddress = LOCAL_HOST
        self.transport_id = self.ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
        self.local_port = self.ep.transportGetInfo(self.transport_id).localName.split(":")[-1]
        self.local_port = int(self.local_port)

        self.ep.libStart()
        self.ep.audDevManager().setNullDev()
        self._set_codecs(a.codec)

        acfg = pj.AccountConfig()
        user = a.from_user
        display = f'"{a.display_name}" ' if a.display_name else ""
        acfg.idUri = f"{display}<sip:{user}@{LOCAL_HOST}:{self.local_port}>"
        acfg.sipConfig.transportId = self.transport_id
        acfg.regConfig.registerOnAdd = False
        rtp = acfg.mediaConfig.transportConfig
        rtp.boundAddress = LOCAL_HOST
        rtp.publicAddress = LOCAL_HOST
        rtp.port = a.rtp_port
        rtp.portRange = 0 if a.rtp_port == 0 else 1000
        acfg.natConfig.iceEnabled = False
        acfg.natConfig.sdpNatRewriteUse = 0
        acfg.natConfig.sipStunUse = pj.PJSUA_STUN_USE_DISABLED
        acfg.natConfig.mediaStunUse = pj.PJSUA_STUN_USE_DISABLED
        acfg.natConfig.contactRewriteUse = 0
        acfg.natConfig.viaRewriteUse = 0
        acfg.natConfig.sipOutboundUse = 0  # no ";ob" in Contact, no RFC 5626 keep-alives
        self.acc = self.track(Account())
        self.acc.create(acfg)
        log(f"SIP on udp {LOCAL_HOST}:{self.local_port} as {acfg.idUri}")

    def _set_codecs(self, only: str | None) -> None:
        wanted = [only] if only else ["PCMU", "PCMA"]
        for ci in self.ep.codecEnum2():
            name = ci.codecId.split("/")[0]
            prio = 0
            if name in wanted and ci.codecId.endswith("/8000/1"):
                prio = 255 - wanted.index(name)
            self.ep.codecSetPriority(ci.codecId, prio)
        # telephone-event (RFC 4733) is added to the SDP by PJSUA itself, not a codec here.

    def poll(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            self.ep.libHandleEvents(max(1, min(POLL_MS, int(left * 1000))))

    def shutdown(self) -> None:
        """Order matters: media ports, calls, account, then the library."""
        if self.ep is None:
            return
        try:
            for i in range(len(self.calls)):
                if self.calls[i].isActive():
                    self.calls[i].hangup(pj.CallOpParam(True))
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline and \
                    any(self.calls[i].isActive() for i in range(len(self.calls))):
                self.ep.libHandleEvents(POLL_MS)
        except Exception as exc:
            log(f"shutdown hangup: {exc!r}")
        still_active = False
        for i in range(len(self.calls)):
            try:
                still_active = still_active or self.calls[i].isActive()
            except Exception:
                still_active = True
        self.release_media()
        # Python must delete the C++ Call objects now, before libDestroy (otherwise the Call
        # destructor runs later, against a destroyed library: "pjsua_call_set_user_data:
        # Assertion `call_id>=0 && ...' failed", abort at exit). So nobody may hold another
        # reference: no `for c in self.calls` loop variables, callers drop theirs first.
        self.calls.clear()
        gc.collect()
        if self.acc is not None:
            try:
                self.acc.shutdown()
            except Exception as exc:
                log(f"account shutdown: {exc!r}")
            self.acc = None
        # Without a live call there is nothing left to send: skip pjsua_destroy's fixed 1 s wait
        # for network shutdown. Otherwise let it hang up what remains (it blocks a few seconds).
        destroy_flags = 0 if still_active else pj.PJSUA_DESTROY_NO_NETWORK
        # Safety net: anything still alive here would be destroyed after libDestroy; disown it
        # so Python never runs its C++ destructor (a small leak at exit instead of an abort).
        gc.collect()
        for ref in self._weak:
            obj = ref()
            if obj is not None:
                log(f"warning: {type(obj).__name__} still referenced at shutdown; disowning it")
                obj.thisown = False
            del obj
        try:
            self.ep.libDestroy(destroy_flags)
        except Exception as exc:
            log(f"libDestroy: {exc!r}")
        self.ep = None

    def release_media(self) -> None:
        pass


# --------------------------------------------------------------------------------------------
# call
# --------------------------------------------------------------------------------------------
def parse_dtmf(spec: str | None) -> list[str]:
    if not spec:
        return []
    groups = [g.strip() for g in spec.split(",")]
    valid = set("0123456789*#ABCDabcd")
    for g in groups:
        if not g or not set(g) <= valid:
            raise ValueError(f"--dtmf {spec!r}: use digits 0-9 * # A-D, groups separated by commas")
    return [g.upper() for g in groups]


class CallPhone(Phone):
    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__(args)
        self.call: Call | None = None
        self.recorder: pj.AudioMediaRecorder | None = None
        self.player: pj.AudioMediaPlayer | None = None
        self.hangup_sent_at: float | None = None
        self.hung_up_by = "none"

    def ensure_media_ports(self) -> None:
        a = self.args
        if a.record and self.recorder is None:
            self.recorder = pj.AudioMediaRecorder()
            self.recorder.createRecorder(a.record)
        if a.play and self.player is None:
            self.player = pj.AudioMediaPlayer()
            self.player.createPlayer(a.play, 0 if a.play_loop else pj.PJMEDIA_FILE_NO_LOOP)

    def connect_media(self) -> None:
        c = self.call
        if c is None or not c.media_dirty:
            return
        c.media_dirty = False
        if not c.media_active:
            return
        am = c.getAudioMedia(-1)
        if self.recorder is not None:
            am.startTransmit(self.recorder)
        if self.player is not None:
            self.player.startTransmit(am)
        log("media active" + (f", recording to {self.args.record}" if self.recorder else "")
            + (f", playing {self.args.play}" if self.player else ""))

    def release_media(self) -> None:
        # Destroying the recorder finalises the WAV header; do it before libDestroy.
        self.recorder = None
        self.player = None


def wav_format(path: str) -> dict:
    try:
        with wave.open(path, "rb") as w:
            return {"container": "wav", "encoding": "pcm_s16le" if w.getsampwidth() == 2
                    else f"pcm_{8 * w.getsampwidth()}bit",
                    "sample_rate": w.getframerate(), "channels": w.getnchannels(),
                    "sample_width": w.getsampwidth(), "frames": w.getnframes(),
                    "seconds": round(w.getnframes() / float(w.getframerate() or 1), 3)}
    except Exception as exc:
        return {"error": f"cannot read {path}: {exc}"}


def cmd_call(args: argparse.Namespace, out: JsonOut) -> int:
    result: dict = {
        "uri": args.uri, "local_port": None, "status_codes": [], "final_status": None,
        "answered": False, "connected_seconds": 0.0, "hung_up_by": "none", "dtmf_sent": "",
        "record_path": os.path.abspath(args.record) if args.record else None,
        "record_format": None, "disconnect_reason": "", "disconnect_status": None,
        "timed_out": False, "error": None,
    }
    try:
        dtmf_groups = parse_dtmf(args.dtmf)
    except ValueError as exc:
        result["error"] = str(exc)
        out.emit(result)
        return EXIT_ERROR
    if args.play and not os.path.isfile(args.play):
        result["error"] = f"--play {args.play}: no such file"
        out.emit(result)
        return EXIT_ERROR

    phone = CallPhone(args)
    code = EXIT_ERROR
    dtmf_sent = ""
    started = time.monotonic()
    deadline = started + args.timeout
    try:
        phone.start()
        result["local_port"] = phone.local_port
        phone.ensure_media_ports()
        call = phone.track(Call(phone.acc))
        phone.call = call
        phone.calls.append(call)
        prm = pj.CallOpParam(True)
        if args.header:
            for h in args.header:
                name, _, value = h.partition(":")
                sh = pj.SipHeader()
                sh.hName = name.strip()
                sh.hValue = value.strip()
                prm.txOption.headers.append(sh)
        call.makeCall(args.uri, prm)

        next_dtmf_at: float | None = None
        dtmf_errors: list[str] = []
        dtmf_index = 0
        while True:
            now = time.monotonic()
            if call.disconnected_at is not None:
                break
            if phone.stop_requested or now >= deadline:
                if not phone.stop_requested:
                    result["timed_out"] = True
                    log(f"timeout after {args.timeout}s, hanging up")
                else:
                    log(f"{phone.stop_requested}, hanging up")
                if phone.hangup_sent_at is None:
                    phone.hangup_sent_at = now
                    phone.hung_up_by = "local"
                    try:
                        call.hangup(pj.CallOpParam(True))
                    except pj.Error as exc:
                        log(f"hangup: {exc.info()}")
                # give the BYE/CANCEL a moment to complete, then leave
                end = time.monotonic() + 3
                while call.disconnected_at is None and time.monotonic() < end:
                    phone.ep.libHandleEvents(POLL_MS)
                break
            phone.connect_media()
            if call.connected_at is not None and phone.hangup_sent_at is None:
                up = now - call.connected_at
                if dtmf_index < len(dtmf_groups):
                    if next_dtmf_at is None:
                        next_dtmf_at = call.connected_at + args.dtmf_delay
                    if now >= next_dtmf_at and (call.media_active or args.dtmf_method == "info"):
                        digits = dtmf_groups[dtmf_index]
                        try:
                            send_dtmf(call, digits, args)
                            log(f"sent DTMF {digits!r} ({args.dtmf_method}) at +{up:.2f}s")
                            dtmf_sent += digits
                        except pj.Error as exc:
                            dtmf_errors.append(f"DTMF {digits!r}: {exc.reason or exc.info()}")
                            log(dtmf_errors[-1])
                        dtmf_index += 1
                        next_dtmf_at = now + args.dtmf_delay
                if args.hangup_after is not None and up >= args.hangup_after:
                    log(f"hanging up after {up:.2f}s")
                    phone.hangup_sent_at = now
                    phone.hung_up_by = "local"
                    try:
                        call.hangup(pj.CallOpParam(True))
                    except pj.Error as exc:  # e.g. the remote BYE crossed ours
                        log(f"hangup: {exc.info()}")
            phone.ep.libHandleEvents(POLL_MS)

        if call.bye_received and phone.hangup_sent_at is None:
            phone.hung_up_by = "remote"
        elif call.disconnected_at is not None and phone.hangup_sent_at is None:
            # PJSUA ended the call itself (e.g. 488 no common codec) or it was never answered
            phone.hung_up_by = "local" if call.connected_at is not None else "none"
        answered = call.connected_at is not None
        result["status_codes"] = list(call.status_codes)
        finals = [c for c in call.status_codes if c >= 200]
        result["final_status"] = finals[0] if finals else None
        result["answered"] = answered
        if answered:
            end = call.disconnected_at or time.monotonic()
            result["connected_seconds"] = round(end - call.connected_at, 3)
        result["hung_up_by"] = phone.hung_up_by
        result["dtmf_sent"] = dtmf_sent
        result["dtmf_received"] = "".join(call.dtmf_received)
        result["disconnect_reason"] = call.disconnect_reason
        result["disconnect_status"] = call.disconnect_code or None
        if not answered:
            code = EXIT_NOT_ANSWERED
        elif result["timed_out"] or call.disconnected_at is None or phone.stop_requested:
            code = EXIT_ERROR
        else:
            code = EXIT_OK
        if dtmf_errors:
            result["error"] = "; ".join(dtmf_errors)
            code = EXIT_ERROR if code == EXIT_OK else code
        elif dtmf_index < len(dtmf_groups) and answered:
            result["error"] = f"call ended before all DTMF was sent ({dtmf_sent!r} of {args.dtmf!r})"
            code = EXIT_ERROR if code == EXIT_OK else code
    except pj.Error as exc:
        result["error"] = f"pjsua2: {exc.info()}"
        log(result["error"])
        code = EXIT_ERROR
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
        log(result["error"])
        code = EXIT_ERROR
    finally:
        call = None  # noqa: F841 - the only references must be gone before libDestroy
        phone.call = None
        phone.shutdown()
    if args.record:
        result["record_format"] = wav_format(args.record)
    result["elapsed_seconds"] = round(time.monotonic() - started, 3)
    out.emit(result)
    return code


def send_dtmf(call: Call, digits: str, args: argparse.Namespace) -> None:
    if args.dtmf_method == "rfc4733":
        call.dialDtmf(digits)
    else:
        p = pj.CallSendDtmfParam()
        p.method = pj.PJSUA_DTMF_METHOD_SIP_INFO
        p.duration = args.dtmf_duration
        for d in digits:  # one INFO per digit (application/dtmf-relay)
            p.digits = d
            call.sendDtmf(p)


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="softphone.py", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)  # options every subcommand takes
    common.add_argument("--log-level", type=int, default=1,
                        help="PJSIP console log level on stderr (0-6, 4+ also logs SIP messages)")

    c = sub.add_parser("call", parents=[common],
                       help="place one call and report what happened as JSON")
    c.add_argument("uri", help="e.g. sip:1000@127.0.0.1:5060")
    c.add_argument("--local-port", type=int, default=0, help="local SIP UDP port (0 = ephemeral)")
    c.add_argument("--rtp-port", type=int, default=0,
                   help="first local RTP port (0 = ephemeral, the default)")
    c.add_argument("--from-user", default="softphone", help="caller ID user part (From/Contact)")
    c.add_argument("--display-name", default="", help="From display name")
    c.add_argument("--header", action="append", metavar="'Name: value'",
                   help="extra header on the INVITE (repeatable)")
    c.add_argument("--dtmf", help="digits to send after answer; '1,2' sends 1 then 2, --dtmf-delay apart")
    c.add_argument("--dtmf-delay", type=float, default=1.0,
                   help="seconds after answer before the first DTMF group, and between groups")
    c.add_argument("--dtmf-method", choices=["rfc4733", "info"], default="rfc4733")
    c.add_argument("--dtmf-duration", type=int, default=160, help="INFO Duration in ms")
    c.add_argument("--record", help="record audio heard from the remote to this WAV file")
    c.add_argument("--play", help="send this WAV file (16-bit mono PCM) instead of silence")
    c.add_argument("--play-loop", action="store_true", help="loop --play instead of playing once")
    c.add_argument("--hangup-after", type=float, help="send BYE this many seconds after answer "
                   "(default: wait for the remote BYE)")
    c.add_argument("--timeout", type=float, default=30.0,
                   help="hard overall limit in seconds; on expiry hang up and exit non-zero")
    c.add_argument("--codec", choices=["PCMU", "PCMA"],
                   help="offer only this codec (+ telephone-event); default offers PCMU then PCMA")
    c.add_argument("--clock-rate", type=int, default=8000, choices=[8000, 16000],
                   help="conference bridge rate = recorder WAV sample rate (default 8000)")
    c.set_defaults(func=cmd_call)
    return ap


_STOP = {"signal": ""}  # set by SIGTERM/SIGINT, acted upon by the polling loop


def _on_signal(signum, frame) -> None:  # noqa: ARG001
    _STOP["signal"] = signal.Signals(signum).name


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = JsonOut()
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    return args.func(args, out)


if __name__ == "__main__":
    sys.exit(main())
