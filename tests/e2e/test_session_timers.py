"""RFC 4028 session timers over real UDP against `acd serve`: a caller that negotiates a short
session interval and then vanishes without BYE is hung up by the server (BYE), and the call's
record says "session expired"; an interval below the minimum is refused 422 with Min-SE."""

from __future__ import annotations

import re
import sqlite3
import time

from .harness import LOOPBACK, free_port, rtp_base, start_server, wait_until
from .test_robustness import SDP, RawSipClient, _status, _to_tag

# RFC 4028 says 90 s at the least; the config allows 2 s so that the test lasts seconds.
SHORT_TIMERS = "  session_timer: {default_seconds: 3, min_seconds: 2}\n"


def _invite(client: RawSipClient, call_id: str, session_expires: str) -> bytes:
    """An INVITE asking for a session timer: Supported: timer, Min-SE 2, `session_expires`."""
    request = client.request("INVITE", call_id, branch=f"z9hG4bK{call_id}", body=SDP)
    extra = f"Supported: timer\r\nSession-Expires: {session_expires}\r\nMin-SE: 2\r\n".encode()
    return request.replace(b"Max-Forwards: 70\r\n", b"Max-Forwards: 70\r\n" + extra)


def _end_reason(root, call_id: str) -> str | None:
    with sqlite3.connect(root / "data" / "records.db") as db:
        row = db.execute("select end_reason from calls where call_id = ?", (call_id,)).fetchone()
    return row[0] if row else None


def test_a_caller_that_vanishes_is_hung_up_when_its_session_expires(tmp_path):
    server = start_server(tmp_path, sip_port=free_port(), rtp_base=rtp_base(), sip_extra=SHORT_TIMERS)
    client = RawSipClient(server.sip_port)
    try:
        client.send(_invite(client, "st-short", "1"))
        refused = client.receive_until(lambda got: any(_status(m) == 422 for m in got), "422 for 1 s")[-1]
        assert b"\r\nMin-SE: 2\r\n" in refused
        client.send(client.request("ACK", "st-short", branch="z9hG4bKst-short", to_tag=_to_tag(refused)))

        call_id = "st-vanish"
        client.send(_invite(client, call_id, "3;refresher=uac"))
        ok = client.receive_until(lambda got: any(_status(m) == 200 for m in got), "200 OK")[-1]
        assert re.search(rb"\r\nSession-Expires: 3;refresher=uac\r\n", ok) and b"\r\nRequire: timer\r\n" in ok
        answered = time.monotonic()
        client.send(client.request("ACK", call_id, branch="z9hG4bKack-st", to_tag=_to_tag(ok)))
        # The caller is gone: no refresh, no BYE. Expiry at 3 - min(32, 3/3) = 2 s after the 200.
        bye = client.receive_until(lambda got: any(m.startswith(b"BYE ") for m in got), "our BYE", timeout=8)[-1]
        assert time.monotonic() - answered >= 1.9
        assert f"Call-ID: {call_id}\r\n".encode() in bye
        head = bye.split(b"\r\n\r\n", 1)[0].decode()
        response = "\r\n".join(["SIP/2.0 200 OK", *(line for line in head.split("\r\n")[1:]
                                                    if line.split(":")[0] in ("Via", "From", "To", "Call-ID", "CSeq")),
                                "Content-Length: 0", "", ""])
        client.sock.sendto(response.encode(), (LOOPBACK, server.sip_port))
        server.wait_for_log(rf"call={call_id} session expired \(RFC 4028\): no refresh within 3 s; sending BYE")
        server.wait_for_log(rf"call={call_id} ended reason='session expired: no refresh within 3 s'")
        wait_until(lambda: _end_reason(tmp_path, call_id) is not None, 5, "the call's record to be closed",
                   server=server)
        assert _end_reason(tmp_path, call_id) == "session expired: no refresh within 3 s"
    finally:
        client.close()
        server.stop()
