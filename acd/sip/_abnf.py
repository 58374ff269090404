"""RFC 3261 §25 grammar fragments as regular expressions.

Each fragment sits under the ABNF line it implements. Where deployed equipment breaks the grammar we
accept the common deviation and say so at the fragment.
"""

from __future__ import annotations

import re

# token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")   (§25.1)
TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]+"

# Method = INVITEm / ACKm / OPTIONSm / BYEm / CANCELm / REGISTERm / extension-method   (§25.1)
# extension-method = token
METHOD = TOKEN

# Request-Line = Method SP Request-URI SP SIP-Version CRLF                                (§25.1)
# SIP-Version = "SIP" "/" 1*DIGIT "." 1*DIGIT
# §7.1: "The SIP-Version string is case-insensitive"; DIGIT is ASCII only (RFC 5234 B.1).
REQUEST_LINE = re.compile(rf"^({METHOD}) (\S+) (?i:SIP)/([0-9]+\.[0-9]+)$")

# Status-Line = SIP-Version SP Status-Code SP Reason-Phrase CRLF                          (§25.1)
# Status-Code = 3DIGIT. Real phones send an empty reason phrase without the SP: accepted.
STATUS_LINE = re.compile(r"^(?i:SIP)/([0-9]+\.[0-9]+) ([0-9]{3})(?: (.*))?$")

# message-header = field-name HCOLON field-value; HCOLON = *( SP / HTAB ) ":" SWS          (§25.1, §7.3.1)
HEADER_NAME = re.compile(rf"^({TOKEN})[ \t]*:[ \t]*(.*)$")
# field-name = token (with `fullmatch`: what message.parse_message checks before the colon)
TOKEN_ONLY = re.compile(TOKEN)

# via-parm = sent-protocol LWS sent-by *( SEMI via-params )                               (§25.1)
# sent-protocol = protocol-name SLASH protocol-version SLASH transport
# sent-by = host [ COLON port ]; host may be an IPv6reference "[...]"
# protocol-name = "SIP" / token: an ABNF literal, so case-insensitive (RFC 5234 §2.3).
VIA = re.compile(
    rf"^(?i:SIP)\s*/\s*([0-9]+\.[0-9]+)\s*/\s*({TOKEN})\s+"
    r"(\[[0-9A-Fa-f:.]+\]|[^\s;:]+)(?:\s*:\s*([0-9]+))?\s*((?:;.*)?)$"
)

# CSeq = "CSeq" HCOLON 1*DIGIT LWS Method                                                 (§25.1)
CSEQ = re.compile(rf"^([0-9]+)\s+({METHOD})$")

# SIP-URI = "sip:" [ userinfo ] hostport uri-parameters [ headers ]                        (§25.1)
# userinfo = ( user / telephone-subscriber ) [ ":" password ] "@"; user-unreserved includes ";"
# and "?", and "@" appears nowhere else in a SIP-URI, so userinfo is everything up to the "@"
# (RFC 4475 §3.1.1.10 "semiuri": sip:user;par=u%40example.net@example.com).
SIP_URI = re.compile(
    r"^(sips?|tel):(?:([^@]*)@)?(\[[0-9A-Fa-f:.]+\]|[^:;?]*)(?::([0-9]+))?((?:;[^?]*)?)(\?.*)?$",
    re.IGNORECASE,
)
