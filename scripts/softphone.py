#!/usr/bin/env python3
"""A real SIP softphone (PJSUA2) for tests and for people trying the server.

    .venv/bin/python scripts/softphone.py call sip:1000@127.0.0.1:5060 \
        --from-user 5551234 --dtmf 1,2 --dtmf-delay 1 --record heard.wav --hangup-after 5

Everything is bound to 127.0.0.1. No sound card is used (PJSUA2 null audio device). Media is plain
RTP unless --srtp optional|mandatory (SDES-SRTP, keys in the SDP; secure signalling not demanded).
At the end ONE JSON object is printed on stdout (all PJSIP logging goes to stderr):

    {"status_codes": [100, 180, 200], "final_status": 200, "answered": true,
     "connected_seconds": 4.2, "hung_up_by": "local", "dtmf_sent": "12", ...}

Fields: status_codes = INVITE responses in order (from the transaction and onCallState; for a
call we cancelled it ends with PJSIP's own 487), final_status = first final code, hung_up_by =
"local" (we sent BYE/CANCEL, or PJSUA ended the call itself, e.g. 488 no common codec) |
"remote" (BYE received) | "none", record_format = what the WAV file holds (16-bit mono PCM at
--clock-rate, 8000 Hz by default), timed_out, error (null when all went as asked).

Blind transfer (REFER received): PJSUA accepts it (202) and places a call to the Refer-To target;
we give it a new Call object and follow that call from then on (recording, DTMF still pending,
--hangup-after, waiting for its BYE). Then "transferred_to" = the Refer-To URI (null when no
REFER came) and "transfer_call" = {uri, status_codes, final_status, answered, connected_seconds,
hung_up_by, disconnect_status, disconnect_reason, dtmf_received, ended} of the new call; the top
level fields still describe the call we placed (hung_up_by "remote" = the transferor's BYE).

Exit status: 0 when the call (the transferred one, after a REFER) was answered and then hung up (by
either side), 2 when it was never answered, 1 on errors (bad arguments, PJSUA2 failure, answered
call still up at --timeout).

    .venv/bin/python scripts/softphone.py agent --registrar sip:127.0.0.1:5060 --user 1001 \
        --password secret --answer-after 1 --record heard.wav --calls 2 --timeout 60

`agent` registers (when --registrar is given; otherwise it only listens on --local-port), writes
"softphone: REGISTERED <code> <reason>" (or "REGISTRATION FAILED <code> <reason>") to stderr, then
takes incoming calls: 180, then 200 after --answer-after seconds (or --no-answer: ring until the
caller gives up; --reject CODE: decline). A call arriving while another is in progress gets 486
("busy": true). After --calls calls ended (0: none, just register) it unregisters and prints:

    {"registered": true, "register_status": 200, "register_expires": 300, "unregister_status": 200,
     "calls": [{"number": 1, "from": "\"Bob\" <sip:5551234@host>", "from_user": "5551234",
                "headers": {"X-ACD-Queue": "sales", ...}, "answered": true, "status_sent": 200,
                "ring_seconds": 1.0, "connected_seconds": 4.2, "hung_up_by": "remote",
                "record_path": "/abs/heard.wav", "record_format": {...}, ...}], ...}

"headers" holds every X-* header of the INVITE (repeated ones joined with ", "). With --record,
call n > 1 is recorded to "<name>-n.wav" (or put "{n}" in the path). Exit status: 0 when
registered (or no --registrar) and --calls calls ended, 3 when the registration failed (or got no
answer), 1 otherwise (timeout before --calls calls ended, DTMF errors, PJSUA2 failure).
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
# --transport: the SIP transport the phone listens on and sends with. With tls, give the server's
# URIs ";transport=tls" (sip:1000@127.0.0.1:5061;transport=tls), as for --registrar.
TRANSPORTS = {"udp": pj.PJSIP_TRANSPORT_UDP, "tcp": pj.PJSIP_TRANSPORT_TCP, "tls": pj.PJSIP_TRANSPORT_TLS}
SRTP_USE = {"off": pj.PJMEDIA_SRTP_DISABLED, "optional": pj.PJMEDIA_SRTP_OPTIONAL,
            "mandatory": pj.PJMEDIA_SRTP_MANDATORY}

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

    def __init__(self, acc: pj.Account, call_id: int = pj.PJSUA_INVALID_ID,
                 phone: "Phone | None" = None) -> None:
        super().__init__(acc, call_id)
        self._acc = acc
        self._phone = weakref.ref(phone) if phone is not None else None
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
        self.local_hangup_at: float | None = None  # when we sent BYE/CANCEL/a final reply
        # blind transfer received (REFER): PJSUA places a new call, reported on this Call object
        self.transfer_to: str | None = None
        self.transfer_call: Call | None = None
        self.transfer_notify: list[int] = []  # not filled for the transferee; kept for symmetry
        # agent mode (incoming calls): filled by AgentPhone
        self.incoming: dict | None = None

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

    def onCallTransferRequest(self, prm: pj.OnCallTransferRequestParam) -> None:
        # The remote sent REFER (blind transfer). PJSUA accepts it (202) and places a new call to
        # prm.dstUri. PJSUA2 must be given a NEW Call object for it: reusing this one ("application
        # reuses Call instance in call transfer") makes two PJSUA calls share one object and the
        # process crashes a moment later. The phone keeps a reference (phone.calls) so Python
        # does not free it while PJSUA uses it.
        try:
            phone = self._phone() if self._phone is not None else None
            if phone is None:
                log(f"REFER to {prm.dstUri} declined: no phone to own the new call")
                prm.statusCode = pj.PJSIP_SC_DECLINE
                return
            new_call = phone.new_call(self._acc)
            self.transfer_to = prm.dstUri
            self.transfer_call = new_call
            prm.newCall = new_call
            log(f"REFER received: transferring to {prm.dstUri}")
        except Exception as exc:
            log(f"onCallTransferRequest: {exc!r}; declining the transfer")
            try:
                prm.statusCode = pj.PJSIP_SC_DECLINE
            except Exception:
                pass

    def hung_up_by(self) -> str:
        if self.local_hangup_at is not None:
            return "local"
        if self.bye_received:
            return "remote"
        if self.disconnected_at is not None and self.connected_at is not None:
            return "local"  # PJSUA ended the call itself (e.g. 488 no common codec)
        return "none"

    def report(self) -> dict:
        """The per-call fields of the JSON report."""
        finals = [c for c in self.status_codes if c >= 200]
        answered = self.connected_at is not None
        seconds = 0.0
        if answered:
            seconds = round((self.disconnected_at or time.monotonic()) - self.connected_at, 3)
        return {"status_codes": list(self.status_codes),
                "final_status": finals[0] if finals else None, "answered": answered,
                "connected_seconds": seconds, "hung_up_by": self.hung_up_by(),
                "dtmf_received": "".join(self.dtmf_received),
                "disconnect_reason": self.disconnect_reason,
                "disconnect_status": self.disconnect_code or None,
                "ended": self.disconnected_at is not None}


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

    def new_call(self, acc: pj.Account, call_id: int = pj.PJSUA_INVALID_ID) -> Call:
        """A Call owned by this phone (kept in self.calls until shutdown)."""
        call = self.track(Call(acc, call_id, phone=self))
        self.calls.append(call)
        return call

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
        if a.transport == "tls":  # as a client: the server's certificate is checked only with --tls-ca
            tcfg.tlsConfig.CaListFile = a.tls_ca or ""
            tcfg.tlsConfig.verifyServer = bool(a.tls_ca)
        self.transport_id = self.ep.transportCreate(TRANSPORTS[a.transport], tcfg)
        self.local_port = self.ep.transportGetInfo(self.transport_id).localName.split(":")[-1]
        self.local_port = int(self.local_port)

        self.ep.libStart()
        self.ep.audDevManager().setNullDev()
        self._set_codecs(a.codec)

        acfg = pj.AccountConfig()
        acfg.sipConfig.transportId = self.transport_id
        acfg.regConfig.registerOnAdd = False
        self.configure_account(acfg)
        # SDES-SRTP (RFC 4568); keys travel in the SDP, so secure signalling is not demanded here.
        acfg.mediaConfig.srtpUse = SRTP_USE[a.srtp]
        acfg.mediaConfig.srtpSecureSignaling = 0
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
        self.acc = self.track(self.make_account())
        self.acc.create(acfg)
        log(f"SIP on {a.transport} {LOCAL_HOST}:{self.local_port} as {acfg.idUri}")

    def configure_account(self, acfg: pj.AccountConfig) -> None:
        """Identity (and registration) of the account; `call` uses a local, unregistered one."""
        a = self.args
        display = f'"{a.display_name}" ' if a.display_name else ""
        acfg.idUri = f"{display}<sip:{a.from_user}@{LOCAL_HOST}:{self.local_port}>"

    def make_account(self) -> Account:
        return Account()

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
        self.call: Call | None = None  # the call we follow (the transferred one after a REFER)
        self.recorder: pj.AudioMediaRecorder | None = None
        self.player: pj.AudioMediaPlayer | None = None

    def ensure_media_ports(self) -> None:
        a = self.args
        if a.record and self.recorder is None:
            self.recorder = pj.AudioMediaRecorder()
            self.recorder.createRecorder(a.record)
        if a.play and self.player is None:
            self.player = pj.AudioMediaPlayer()
            self.player.createPlayer(a.play, 0 if a.play_loop else pj.PJMEDIA_FILE_NO_LOOP)

    def connect_media(self) -> None:
        # Every call whose media came up (the first call, and the transferred one after a
        # REFER) feeds the one recorder and hears the one player.
        for i in range(len(self.calls)):
            c = self.calls[i]
            if not c.media_dirty:
                continue
            c.media_dirty = False
            if not c.media_active:
                continue
            am = c.getAudioMedia(-1)
            if self.recorder is not None:
                am.startTransmit(self.recorder)
            if self.player is not None:
                self.player.startTransmit(am)
            log(f"media active (call {c.getId()})"
                + (f", recording to {self.args.record}" if self.recorder else "")
                + (f", playing {self.args.play}" if self.player else ""))
        c = None  # noqa: F841 - no reference may outlive phone.calls

    def release_media(self) -> None:
        # Destroying the recorder finalises the WAV header; do it before libDestroy.
        self.recorder = None
        self.player = None


def hangup(call: Call, why: str = "") -> None:
    if call.local_hangup_at is None:
        call.local_hangup_at = time.monotonic()
    try:
        call.hangup(pj.CallOpParam(True))
        if why:
            log(why)
    except pj.Error as exc:  # e.g. the remote BYE crossed ours
        log(f"hangup: {exc.info()}")


class DtmfSender:
    """Sends --dtmf groups on the followed call, --dtmf-delay after it connects and apart."""

    def __init__(self, args: argparse.Namespace, groups: list[str]) -> None:
        self.args = args
        self.groups = groups
        self.index = 0
        self.next_at: float | None = None
        self.sent = ""
        self.errors: list[str] = []
        self.call_id: int | None = None

    @property
    def pending(self) -> bool:
        return self.index < len(self.groups)

    def step(self, call: Call, now: float) -> None:
        if not self.pending or call.connected_at is None:
            return
        if self.call_id != call.getId():  # a new call to follow (transfer): restart the delay
            self.call_id = call.getId()
            self.next_at = None
        if self.next_at is None:
            self.next_at = call.connected_at + self.args.dtmf_delay
        if now < self.next_at or not (call.media_active or self.args.dtmf_method == "info"):
            return
        digits = self.groups[self.index]
        try:
            send_dtmf(call, digits, self.args)
            log(f"sent DTMF {digits!r} ({self.args.dtmf_method}) at "
                f"+{now - call.connected_at:.2f}s")
            self.sent += digits
        except pj.Error as exc:
            self.errors.append(f"DTMF {digits!r}: {exc.reason or exc.info()}")
            log(self.errors[-1])
        self.index += 1
        self.next_at = now + self.args.dtmf_delay


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
        "transferred_to": None, "transfer_call": None,
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
    dtmf = DtmfSender(args, dtmf_groups)
    started = time.monotonic()
    deadline = started + args.timeout
    try:
        phone.start()
        result["local_port"] = phone.local_port
        phone.ensure_media_ports()
        first = phone.new_call(phone.acc)
        phone.call = first
        prm = pj.CallOpParam(True)
        if args.header:
            for h in args.header:
                name, _, value = h.partition(":")
                sh = pj.SipHeader()
                sh.hName = name.strip()
                sh.hValue = value.strip()
                prm.txOption.headers.append(sh)
        first.makeCall(args.uri, prm)

        transfers: list[str] = []
        while True:
            now = time.monotonic()
            # After a REFER follow the new call: it is "the" call from now on.
            while phone.call.transfer_call is not None:
                transfers.append(phone.call.transfer_to)
                phone.call = phone.call.transfer_call
                log(f"following the transferred call to {transfers[-1]}")
            call = phone.call
            if call.disconnected_at is not None:
                break
            if phone.stop_requested or now >= deadline:
                if not phone.stop_requested:
                    result["timed_out"] = True
                    log(f"timeout after {args.timeout}s, hanging up")
                else:
                    log(f"{phone.stop_requested}, hanging up")
                if call.local_hangup_at is None:
                    hangup(call)
                # give the BYE/CANCEL a moment to complete, then leave
                end = time.monotonic() + 3
                while call.disconnected_at is None and time.monotonic() < end:
                    phone.ep.libHandleEvents(POLL_MS)
                break
            phone.connect_media()
            if call.connected_at is not None and call.local_hangup_at is None:
                dtmf.step(call, now)
                up = now - call.connected_at
                if args.hangup_after is not None and up >= args.hangup_after:
                    hangup(call, f"hanging up after {up:.2f}s")
            phone.ep.libHandleEvents(POLL_MS)

        # top level: the call we placed; transfer_call: the one a REFER made us place
        rep = first.report()
        for key in ("status_codes", "final_status", "answered", "connected_seconds",
                    "hung_up_by", "disconnect_reason", "disconnect_status"):
            result[key] = rep[key]
        result["dtmf_received"] = rep["dtmf_received"]
        final = phone.call
        if final is not first:
            result["transferred_to"] = transfers[-1]
            result["transfer_call"] = dict(final.report(), uri=transfers[-1])
            if len(transfers) > 1:
                result["transfers"] = transfers
        result["dtmf_sent"] = dtmf.sent
        answered = final.connected_at is not None
        if not answered:
            code = EXIT_NOT_ANSWERED
        elif result["timed_out"] or final.disconnected_at is None or phone.stop_requested:
            code = EXIT_ERROR
        else:
            code = EXIT_OK
        if dtmf.errors:
            result["error"] = "; ".join(dtmf.errors)
            code = EXIT_ERROR if code == EXIT_OK else code
        elif dtmf.pending and answered:
            result["error"] = (f"call ended before all DTMF was sent "
                               f"({dtmf.sent!r} of {args.dtmf!r})")
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
        # the only references must be gone before libDestroy
        call = first = final = None  # noqa: F841
        phone.call = None
        phone.shutdown()
    if args.record:
        result["record_format"] = wav_format(args.record)
    result["elapsed_seconds"] = round(time.monotonic() - started, 3)
    out.emit(result)
    return code


# --------------------------------------------------------------------------------------------
# agent: register, then answer (or reject / let ring) incoming calls
# --------------------------------------------------------------------------------------------
EXIT_REGISTER_FAILED = 3

_COMPACT = {"f": "From", "t": "To", "i": "Call-ID", "m": "Contact", "v": "Via", "c": "Content-Type",
            "l": "Content-Length", "k": "Supported", "s": "Subject"}


def parse_sip_headers(whole_msg: str) -> tuple[str, list[tuple[str, str]]]:
    """(start line, [(name, value), ...]) of a SIP message; folded lines joined, compact forms
    expanded, order and repetitions kept."""
    head = whole_msg.replace("\r\n", "\n").split("\n\n", 1)[0]
    lines = head.split("\n")
    start = lines[0].strip() if lines else ""
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line.strip():
            break
        if line[0] in " \t" and headers:  # continuation (folding)
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}")
            continue
        name, sep, value = line.partition(":")
        if not sep:
            continue
        name = name.strip()
        headers.append((_COMPACT.get(name.lower(), name) if len(name) == 1 else name,
                        value.strip()))
    return start, headers


def header_value(headers: list[tuple[str, str]], name: str) -> str | None:
    for n, v in headers:
        if n.lower() == name.lower():
            return v
    return None


def without_tag(value: str | None) -> str | None:
    """A From/To value without its ;tag= parameter."""
    if value is None:
        return None
    head, sep, params = value.partition(">")
    kept = [p for p in params.split(";") if p.strip() and not p.strip().lower().startswith("tag=")]
    return head + sep + "".join(";" + p for p in kept)


def sip_user(uri_text: str | None) -> str | None:
    """'"Bob" <sip:5551234@host>;tag=x' -> '5551234'."""
    if not uri_text:
        return None
    text = uri_text
    if "<" in text:
        text = text.split("<", 1)[1].split(">", 1)[0]
    text = text.split(";", 1)[0]
    if ":" in text:
        text = text.split(":", 1)[1]
    return text.split("@", 1)[0] if "@" in text else None


class AgentAccount(Account):
    """Registers (when --registrar is given) and hands incoming calls to the AgentPhone."""

    def __init__(self, phone: "AgentPhone") -> None:
        super().__init__()
        self._phone = weakref.ref(phone)

    def onRegState(self, prm: pj.OnRegStateParam) -> None:
        try:
            phone = self._phone()
            if phone is not None:
                phone.reg_events.append((int(prm.code), str(prm.reason), int(prm.expiration)))
            log(f"registration: {prm.code} {prm.reason} (expires {prm.expiration})")
        except Exception as exc:
            log(f"onRegState: {exc!r}")

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:
        try:
            phone = self._phone()
            if phone is None:
                return
            call = phone.new_call(self, prm.callId)
            start, headers = parse_sip_headers(prm.rdata.wholeMsg)
            x_headers: dict[str, str] = {}
            for name, value in headers:
                if name.lower().startswith("x-"):
                    x_headers[name] = f"{x_headers[name]}, {value}" if name in x_headers else value
            frm = header_value(headers, "From")
            call.incoming = {
                "number": len([1 for i in range(len(phone.calls)) if phone.calls[i].incoming]) + 1,
                "arrived_at": time.monotonic(), "request_uri": start.split(" ")[1]
                if start.count(" ") >= 2 else start,
                "from": without_tag(frm), "from_user": sip_user(frm),
                "to": without_tag(header_value(headers, "To")),
                "call_id": header_value(headers, "Call-ID"), "source": prm.rdata.srcAddress,
                "headers": x_headers, "handled": False, "ringing_sent": False,
                "answer_sent_at": None, "final_sent": None, "busy": False,
                "recorder": None, "player": None, "record_path": None, "done": False,
            }
            log(f"incoming call #{call.incoming['number']} from {without_tag(frm)} "
                f"headers {x_headers}")
        except Exception as exc:
            log(f"onIncomingCall: {exc!r}")


class AgentPhone(Phone):
    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__(args)
        self.reg_events: list[tuple[int, str, int]] = []

    def configure_account(self, acfg: pj.AccountConfig) -> None:
        a = self.args
        display = f'"{a.display_name}" ' if a.display_name else ""
        if a.registrar:
            host = a.registrar.split(":", 1)[1] if ":" in a.registrar else a.registrar
            host = host.split(";", 1)[0].split("@")[-1]
            acfg.idUri = f"{display}<sip:{a.user}@{host}>"
            acfg.regConfig.registrarUri = a.registrar
            acfg.regConfig.registerOnAdd = True
            acfg.regConfig.timeoutSec = a.expires
            acfg.regConfig.retryIntervalSec = 0  # a failure is final: report it, do not retry
            acfg.regConfig.unregWaitMsec = 1000
            if a.password is not None:
                cred = pj.AuthCredInfo("digest", "*", a.auth_user or a.user, 0, a.password)
                acfg.sipConfig.authCreds.append(cred)
        else:
            acfg.idUri = f"{display}<sip:{a.user}@{LOCAL_HOST}:{self.local_port}>"

    def make_account(self) -> Account:
        return AgentAccount(self)

    def record_path_for(self, n: int) -> str | None:
        path = self.args.record
        if not path:
            return None
        if "{n}" in path:
            return path.replace("{n}", str(n))
        if n == 1:
            return path
        root, ext = os.path.splitext(path)
        return f"{root}-{n}{ext}"

    def connect_media(self, call: Call) -> None:
        inc = call.incoming
        if not call.media_dirty:
            return
        call.media_dirty = False
        if not call.media_active:
            return
        am = call.getAudioMedia(-1)
        if self.args.record and inc["recorder"] is None:
            inc["record_path"] = self.record_path_for(inc["number"])
            inc["recorder"] = pj.AudioMediaRecorder()
            inc["recorder"].createRecorder(inc["record_path"])
        if self.args.play and inc["player"] is None:
            inc["player"] = pj.AudioMediaPlayer()
            inc["player"].createPlayer(self.args.play,
                                       0 if self.args.play_loop else pj.PJMEDIA_FILE_NO_LOOP)
        if inc["recorder"] is not None:
            am.startTransmit(inc["recorder"])
        if inc["player"] is not None:
            inc["player"].startTransmit(am)
        log(f"call #{inc['number']}: media active"
            + (f", recording to {inc['record_path']}" if inc["recorder"] else "")
            + (f", playing {self.args.play}" if inc["player"] else ""))

    def release_call_media(self, call: Call) -> None:
        inc = call.incoming
        inc["recorder"] = None  # finalises the WAV header
        inc["player"] = None

    def release_media(self) -> None:
        for i in range(len(self.calls)):
            if self.calls[i].incoming is not None:
                self.release_call_media(self.calls[i])


def answer(call: Call, code: int, what: str) -> bool:
    prm = pj.CallOpParam(True)
    prm.statusCode = code
    try:
        call.answer(prm)
        return True
    except pj.Error as exc:
        log(f"{what} ({code}): {exc.info()}")
        return False


def cmd_agent(args: argparse.Namespace, out: JsonOut) -> int:
    result: dict = {
        "registrar": args.registrar, "user": args.user, "local_port": None,
        "registered": False, "register_status": None, "register_reason": None,
        "register_expires": None, "unregister_status": None, "calls": [],
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
    if args.reject is not None and not 400 <= args.reject <= 699:
        result["error"] = f"--reject {args.reject}: use a final error code 400-699 (486, 603...)"
        out.emit(result)
        return EXIT_ERROR

    phone = AgentPhone(args)
    code = EXIT_ERROR
    started = time.monotonic()
    deadline = started + args.timeout
    dtmf_by_call: dict[int, DtmfSender] = {}
    reg_final: tuple[int, str, int] | None = None
    login_call = None
    result["login_status"] = None
    try:
        phone.start()
        result["local_port"] = phone.local_port
        if not args.registrar:
            log(f"no --registrar: waiting for calls on {LOCAL_HOST}:{phone.local_port}")

        while True:
            now = time.monotonic()
            if args.registrar and reg_final is None:
                finals = [e for e in phone.reg_events if e[0] >= 200 or e[0] == 0]
                if finals:
                    reg_final = finals[0]
                    ok = 200 <= reg_final[0] < 300
                    result["registered"] = ok
                    result["register_status"] = reg_final[0] or None
                    result["register_reason"] = reg_final[1]
                    result["register_expires"] = reg_final[2] if ok else None
                    log(f"REGISTERED {reg_final[0]} {reg_final[1]}" if ok else
                        f"REGISTRATION FAILED {reg_final[0]} {reg_final[1]}")
                    if not ok:
                        break
            if args.login_code and result["registered"] and login_call is None:
                target = f"sip:{args.login_code}@{args.registrar.split(':', 1)[1]}"
                login_call = phone.new_call(phone.acc)
                login_call.makeCall(target, pj.CallOpParam(True))
                log(f"dialling {target} to log in")
            if login_call is not None and result["login_status"] is None and login_call.disconnected_at is not None:
                result["login_status"] = "answered" if login_call.connected_at is not None else "failed"
                log(f"login call ended: {login_call.disconnect_code} {login_call.disconnect_reason}")
                if login_call.connected_at is None:
                    result["error"] = f"login code {args.login_code} refused ({login_call.disconnect_code})"
                    break
            incoming = [i for i in range(len(phone.calls)) if phone.calls[i].incoming]
            ended = sum(1 for i in incoming if phone.calls[i].incoming["done"])
            registered_enough = not args.registrar or reg_final is not None
            if registered_enough and ended >= args.calls:
                break
            if phone.stop_requested or now >= deadline:
                if not phone.stop_requested:
                    result["timed_out"] = True
                    log(f"timeout after {args.timeout}s")
                else:
                    log(f"{phone.stop_requested}, stopping")
                for i in incoming:
                    c = phone.calls[i]
                    if c.disconnected_at is None and c.isActive():
                        if c.connected_at is None and c.incoming["final_sent"] is None:
                            c.incoming["final_sent"] = 480
                            answer(c, 480, "reject at timeout")
                            c.local_hangup_at = now
                        else:
                            hangup(c)
                end = time.monotonic() + 3
                while time.monotonic() < end and any(
                        phone.calls[i].disconnected_at is None for i in incoming):
                    phone.ep.libHandleEvents(POLL_MS)
                c = None
                break
            for i in incoming:
                c = phone.calls[i]
                inc = c.incoming
                if inc["done"]:
                    continue
                if not inc["handled"]:
                    inc["handled"] = True
                    busy = any(phone.calls[j].incoming and not phone.calls[j].incoming["done"]
                               and phone.calls[j].incoming["handled"] and j != i
                               for j in incoming)
                    if busy:
                        inc["busy"] = True
                        inc["final_sent"] = 486
                        log(f"call #{inc['number']}: busy with another call, 486")
                        answer(c, 486, "busy")
                    elif args.reject is not None:
                        inc["final_sent"] = args.reject
                        log(f"call #{inc['number']}: rejecting with {args.reject}")
                        answer(c, args.reject, "reject")
                    else:
                        if answer(c, 180, "ringing"):
                            inc["ringing_sent"] = True
                if (inc["final_sent"] is None and not args.no_answer and c.disconnected_at is None
                        and now >= inc["arrived_at"] + args.answer_after):
                    inc["final_sent"] = 200
                    inc["answer_sent_at"] = now
                    log(f"call #{inc['number']}: answering")
                    answer(c, 200, "answer")
                phone.connect_media(c)
                if c.connected_at is not None and c.local_hangup_at is None \
                        and c.disconnected_at is None:
                    sender = dtmf_by_call.setdefault(inc["number"], DtmfSender(args, dtmf_groups))
                    sender.step(c, now)
                    up = now - c.connected_at
                    if args.hangup_after is not None and up >= args.hangup_after:
                        hangup(c, f"call #{inc['number']}: hanging up after {up:.2f}s")
                if c.disconnected_at is not None:
                    inc["done"] = True
                    phone.release_call_media(c)
                    log(f"call #{inc['number']} ended: {c.disconnect_code} {c.disconnect_reason}")
            c = None
            phone.ep.libHandleEvents(POLL_MS)

        login_call = None  # no Call reference may outlive the library (see Phone.shutdown)
        # unregister (the registrar must not keep offering calls to a phone that is gone)
        if result["registered"]:
            n_events = len(phone.reg_events)
            try:
                phone.acc.setRegistration(False)
                end = time.monotonic() + 2
                while len(phone.reg_events) == n_events and time.monotonic() < end:
                    phone.ep.libHandleEvents(POLL_MS)
                if len(phone.reg_events) > n_events:
                    result["unregister_status"] = phone.reg_events[n_events][0] or None
            except pj.Error as exc:
                log(f"unregister: {exc.info()}")

        calls_out = []
        for i in range(len(phone.calls)):
            c = phone.calls[i]
            inc = c.incoming
            if inc is None:
                continue
            rep = c.report()
            sender = dtmf_by_call.get(inc["number"])
            calls_out.append({
                "number": inc["number"], "from": inc["from"], "from_user": inc["from_user"],
                "to": inc["to"], "request_uri": inc["request_uri"], "call_id": inc["call_id"],
                "headers": inc["headers"], "answered": rep["answered"],
                "status_sent": inc["final_sent"], "busy": inc["busy"],
                "ring_seconds": round(((inc["answer_sent_at"] or c.disconnected_at or
                                        time.monotonic()) - inc["arrived_at"]), 3),
                "connected_seconds": rep["connected_seconds"], "hung_up_by": rep["hung_up_by"],
                "dtmf_sent": sender.sent if sender else "", "dtmf_received": rep["dtmf_received"],
                "disconnect_status": rep["disconnect_status"],
                "disconnect_reason": rep["disconnect_reason"], "ended": rep["ended"],
                "record_path": os.path.abspath(inc["record_path"]) if inc["record_path"] else None,
                "record_format": None,
            })
            if sender and (sender.errors or (sender.pending and rep["answered"])):
                calls_out[-1]["error"] = "; ".join(sender.errors) or \
                    f"call ended before all DTMF was sent ({sender.sent!r} of {args.dtmf!r})"
        c = inc = None
        result["calls"] = calls_out
        if args.registrar and not result["registered"]:
            code = EXIT_REGISTER_FAILED
            if result["register_status"] is None and result["error"] is None:
                result["error"] = "no answer from the registrar"
            elif result["error"] is None:
                result["error"] = (f"registration failed: {result['register_status']} "
                                   f"{result['register_reason']}")
        elif result["timed_out"] or phone.stop_requested or \
                sum(1 for co in calls_out if co["ended"]) < args.calls:
            code = EXIT_ERROR
        elif any("error" in co for co in calls_out):
            code = EXIT_ERROR
            result["error"] = "; ".join(co["error"] for co in calls_out if "error" in co)
        else:
            code = EXIT_OK
    except pj.Error as exc:
        result["error"] = f"pjsua2: {exc.info()}"
        log(result["error"])
        code = EXIT_ERROR
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
        log(result["error"])
        code = EXIT_ERROR
    finally:
        c = None  # noqa: F841 - the only references must be gone before libDestroy
        phone.shutdown()
    for co in result["calls"]:
        if co["record_path"] and os.path.exists(co["record_path"]):
            co["record_format"] = wav_format(co["record_path"])
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
    common.add_argument("--local-port", type=int, default=0,
                        help="local SIP port (0 = ephemeral)")
    common.add_argument("--transport", choices=sorted(TRANSPORTS), default="udp",
                        help="SIP transport (tls: add ;transport=tls to the server's URIs)")
    common.add_argument("--tls-ca", help="with --transport tls: verify the server's certificate against "
                        "this PEM file (default: no verification)")
    common.add_argument("--rtp-port", type=int, default=0,
                        help="first local RTP port (0 = ephemeral, the default)")
    common.add_argument("--display-name", default="", help="From display name")
    common.add_argument("--codec", choices=["PCMU", "PCMA"],
                        help="offer only this codec (+ telephone-event); default PCMU then PCMA")
    common.add_argument("--srtp", choices=sorted(SRTP_USE), default="off",
                        help="SDES-SRTP: off (plain RTP/AVP), optional (RTP/AVP offer with a=crypto, SRTP "
                             "when the answer has one) or mandatory (RTP/SAVP only)")
    common.add_argument("--clock-rate", type=int, default=8000, choices=[8000, 16000],
                        help="conference bridge rate = recorder WAV sample rate (default 8000)")
    media = argparse.ArgumentParser(add_help=False)  # what happens once a call is up
    media.add_argument("--dtmf",
                       help="digits to send after answer; '1,2' sends 1 then 2, --dtmf-delay apart")
    media.add_argument("--dtmf-delay", type=float, default=1.0,
                       help="seconds after answer before the first DTMF group, and between groups")
    media.add_argument("--dtmf-method", choices=["rfc4733", "info"], default="rfc4733")
    media.add_argument("--dtmf-duration", type=int, default=160, help="INFO Duration in ms")
    media.add_argument("--record", help="record audio heard from the remote to this WAV file")
    media.add_argument("--play", help="send this WAV file (16-bit mono PCM) instead of silence")
    media.add_argument("--play-loop", action="store_true", help="loop --play instead of once")
    media.add_argument("--hangup-after", type=float, help="send BYE this many seconds after "
                       "answer (default: wait for the remote BYE)")

    c = sub.add_parser("call", parents=[common, media],
                       help="place one call and report what happened as JSON")
    c.add_argument("uri", help="e.g. sip:1000@127.0.0.1:5060")
    c.add_argument("--from-user", default="softphone", help="caller ID user part (From/Contact)")
    c.add_argument("--header", action="append", metavar="'Name: value'",
                   help="extra header on the INVITE (repeatable)")
    c.add_argument("--timeout", type=float, default=30.0,
                   help="hard overall limit in seconds; on expiry hang up and exit non-zero")
    c.set_defaults(func=cmd_call)

    g = sub.add_parser("agent", parents=[common, media],
                       help="register (optionally), take incoming calls, report them as JSON")
    g.add_argument("--registrar", help="e.g. sip:127.0.0.1:5060 (none: just listen on "
                   "--local-port)")
    g.add_argument("--user", default="agent", help="user part of the AOR (sip:USER@registrar)")
    g.add_argument("--auth-user", help="digest user name (default: --user)")
    g.add_argument("--password", help="digest password (no credentials when omitted)")
    g.add_argument("--expires", type=int, default=300, help="registration expiry, seconds")
    how = g.add_mutually_exclusive_group()
    how.add_argument("--answer-after", type=float, default=0.0,
                     help="ring (180) this many seconds, then answer (0 = at once)")
    how.add_argument("--no-answer", action="store_true",
                     help="only ring (180) until the caller gives up")
    how.add_argument("--reject", type=int, metavar="CODE",
                     help="decline every call with this final code (486 busy, 603 decline)")
    g.add_argument("--login-code", default=None,
                   help="after registering, dial this feature code (e.g. *45) with the account's credentials "
                        "and wait for it to end before taking calls")
    g.add_argument("--calls", type=int, default=1,
                   help="exit after this many calls ended (0 = register, unregister, exit)")
    g.add_argument("--timeout", type=float, default=30.0,
                   help="hard overall limit in seconds; on expiry hang up and exit non-zero")
    g.set_defaults(func=cmd_agent)
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
