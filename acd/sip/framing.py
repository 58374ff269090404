"""Framing SIP messages out of a byte stream (TCP, TLS), RFC 3261 §18.3: Content-Length marks the end.

A stream peer that sends something no SIP message can start with (binary junk, a TLS ClientHello on
the TCP port, an HTTP request) gets no answer: there is no message to answer, and resynchronising a
stream after junk is guesswork. The framer raises and the shell closes the connection.

Every check looks at each received byte a bounded number of times, so a peer trickling a message
in one byte at a time costs linear, not quadratic, work.
"""

from __future__ import annotations

import re

from .errors import RemoteProtocolError
from .message import MAX_MESSAGE_SIZE

__all__ = ["StreamFramer", "MAX_START_LINE_BYTES", "MAX_METHOD_BYTES"]

_CONTENT_LENGTH = re.compile(rb"^(?:content-length|l)[ \t]*:[ \t]*(\d+)[ \t]*$", re.IGNORECASE | re.MULTILINE)

# RFC 3261 §25.1: token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
_TOKEN_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~")
# Request-Line = Method SP Request-URI SP SIP-Version CRLF (§7.1)
# Status-Line  = SIP-Version SP Status-Code SP Reason-Phrase CRLF (§7.2)
# Only the shape is checked here (a method token, a URI without spaces, "SIP/"); the parser checks the
# rest and answers 400 or 505 on the connection.
_START_LINE = re.compile(rb"[!%'*+\-.0-9A-Z_`a-z~]+ [^\x00-\x20\x7f]+ SIP/|SIP/[0-9]+\.[0-9]+ [0-9]{3}(?: |$)")
# In a start line: nothing but printable ASCII, HTAB and UTF-8 (a Reason-Phrase may carry UTF8-NONASCII).
_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
# RFC 3261's longest method is 9 bytes (SUBSCRIBE), extensions are short words too: a run of token
# bytes this long without a space is no method.
MAX_METHOD_BYTES = 32
# A start line longer than this is junk: real Request-URIs with every parameter stay under 1 KiB, and
# Kamailio and Asterisk refuse URIs past a few KiB.
MAX_START_LINE_BYTES = 8192


class StreamFramer:
    """Feed bytes in, take whole messages out. Keep-alive CRLFs between messages are skipped and
    counted in `keepalive_bytes` (RFC 5626 §4.4.1 pings are CRLFCRLF; a bare LF is tolerated)."""

    def __init__(self, max_message_size: int = MAX_MESSAGE_SIZE) -> None:
        self._buffer = bytearray()
        self.max_message_size = max_message_size
        self.keepalive_bytes = 0  # CR/LF bytes skipped between messages, since the framer was made
        self._start_line_done = False  # the current message's start line is complete and checked
        self._scanned = 0  # bytes of the current message already checked (start line, then NULs)
        self._head_searched = 0  # where the search for the end of the header section resumes
        self._total = -1  # the current message's length (headers and body), once known

    @property
    def pending(self) -> int:
        """Bytes of a message started but not complete yet (0 between messages)."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; returns every complete message now available.

        Raises RemoteProtocolError when the bytes cannot be SIP (status 400: junk, or no
        Content-Length, which is mandatory on streams) or a message grows past the size limit (513):
        the connection must then be closed.
        """
        self._buffer += data
        messages: list[bytes] = []
        while True:
            if not self._start_line_done and self._scanned == 0:
                before = len(self._buffer)
                stripped = self._buffer.lstrip(b"\r\n")  # RFC 5626 keep-alives and stray CRLFs
                if len(stripped) != before:
                    self.keepalive_bytes += before - len(stripped)
                    self._buffer = stripped
            if not self._buffer:
                return messages
            if not self._start_line_done and not self._check_start_line():
                return messages
            total = self._message_length()
            if total < 0:
                return messages
            if len(self._buffer) < total:
                return messages
            messages.append(bytes(self._buffer[:total]))
            del self._buffer[:total]
            self._start_line_done = False
            self._scanned = self._head_searched = 0
            self._total = -1

    def _check_start_line(self) -> bool:
        """True once the start line is complete and looks like SIP; False while it may still become
        one; raises as soon as it cannot."""
        buffer = self._buffer
        line_end = buffer.find(b"\r\n", max(0, self._scanned - 1))
        upto = line_end if line_end >= 0 else len(buffer)
        if line_end < 0 and buffer.endswith(b"\r"):
            upto -= 1  # the CRLF may be half here
        bad = _CONTROL.search(buffer, self._scanned, upto)
        if bad is not None:
            raise RemoteProtocolError(f"control or binary bytes where a SIP start line should be: "
                                      f"{bytes(buffer[:40])!r}")
        self._scanned = upto
        word = bytes(buffer[:MAX_METHOD_BYTES + 1]).split(b" ", 1)
        method = word[0]
        if not method and len(word) == 2:
            raise RemoteProtocolError("a SIP start line cannot begin with a space")
        if not (method.startswith(b"SIP/") or b"SIP/".startswith(method)):  # else maybe a status line
            if any(byte not in _TOKEN_BYTES for byte in method) or (len(word) == 1 and len(method) > MAX_METHOD_BYTES):
                raise RemoteProtocolError(f"not a SIP method: {method[:40]!r}")
        if line_end < 0:
            if upto > MAX_START_LINE_BYTES:
                raise RemoteProtocolError(f"start line longer than {MAX_START_LINE_BYTES} bytes")
            return False
        if _START_LINE.match(buffer, 0, line_end) is None:
            raise RemoteProtocolError(f"not a SIP request or status line: {bytes(buffer[:min(line_end, 80)])!r}")
        self._start_line_done = True
        return True

    def _message_length(self) -> int:
        """The current message's whole length, or -1 while its header section is incomplete."""
        if self._total >= 0:
            return self._total
        end = self._find_end_of_headers()
        if end < 0:
            if len(self._buffer) > self.max_message_size:
                raise RemoteProtocolError("stream headers exceed the message size limit", 513)
            return -1
        match = _CONTENT_LENGTH.search(bytes(self._buffer[:end]))
        if match is None:
            raise RemoteProtocolError("message on a stream transport has no Content-Length")
        total = end + 4 + int(match.group(1))
        if total > self.max_message_size:
            raise RemoteProtocolError(f"message of {total} bytes exceeds {self.max_message_size}", 513)
        self._total = total
        return total

    def _find_end_of_headers(self) -> int:
        """Where the header section ends (the CRLFCRLF), or -1; a NUL byte in it is junk."""
        buffer = self._buffer
        end = buffer.find(b"\r\n\r\n", max(self._head_searched - 3, 0))
        upto = end if end >= 0 else len(buffer)
        if buffer.find(b"\x00", self._scanned, upto) >= 0:
            raise RemoteProtocolError("NUL byte in a message header")
        self._scanned = max(self._scanned, upto)
        self._head_searched = len(buffer)
        return end
