"""Framing SIP messages out of a byte stream (TCP), RFC 3261 §18.3: Content-Length marks the end."""

from __future__ import annotations

import re

from .errors import RemoteProtocolError
from .message import MAX_MESSAGE_SIZE

__all__ = ["StreamFramer"]

_CONTENT_LENGTH = re.compile(rb"^(?:content-length|l)[ \t]*:[ \t]*(\d+)[ \t]*$", re.IGNORECASE | re.MULTILINE)


class StreamFramer:
    """Feed bytes in, take whole messages out. Keep-alive CRLFs between messages are skipped."""

    def __init__(self, max_message_size: int = MAX_MESSAGE_SIZE) -> None:
        self._buffer = bytearray()
        self.max_message_size = max_message_size

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; returns every complete message now available.

        Raises RemoteProtocolError when a message has no Content-Length (mandatory on streams)
        or grows past the size limit: the connection must then be closed.
        """
        self._buffer += data
        messages: list[bytes] = []
        while True:
            while self._buffer[:2] == b"\r\n":  # RFC 5626 keep-alives and stray CRLFs
                del self._buffer[:2]
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > self.max_message_size:
                    raise RemoteProtocolError("stream headers exceed the message size limit", 513)
                return messages
            head = bytes(self._buffer[:end])
            match = _CONTENT_LENGTH.search(head)
            if match is None:
                raise RemoteProtocolError("message on a stream transport has no Content-Length")
            total = end + 4 + int(match.group(1))
            if total > self.max_message_size:
                raise RemoteProtocolError(f"message of {total} bytes exceeds {self.max_message_size}", 513)
            if len(self._buffer) < total:
                return messages
            messages.append(bytes(self._buffer[:total]))
            del self._buffer[:total]
