"""Framing SIP messages from a TCP byte stream (RFC 3261 §18.3)."""

from __future__ import annotations

import pytest

from acd.sip.errors import RemoteProtocolError
from acd.sip.framing import StreamFramer

MESSAGE = (b"OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5;branch=z9hG4bK1\r\n"
           b"Call-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 4\r\n\r\nbody")


def test_two_messages_and_keepalives_in_one_chunk():
    """CRLF keep-alives between messages are skipped; both messages come out whole."""
    assert StreamFramer().feed(b"\r\n\r\n" + MESSAGE + b"\r\n" + MESSAGE) == [MESSAGE, MESSAGE]


@pytest.mark.parametrize("split", range(1, len(MESSAGE)))
def test_message_split_at_every_byte(split):
    """However TCP cuts the stream, the message comes out once, whole."""
    framer = StreamFramer()
    assert framer.feed(MESSAGE[:split]) == []
    assert framer.feed(MESSAGE[split:]) == [MESSAGE]


def test_compact_content_length_is_understood():
    """`l:` is Content-Length's compact form."""
    message = MESSAGE.replace(b"Content-Length: 4", b"l: 4")
    assert StreamFramer().feed(message) == [message]


def test_missing_content_length_is_a_protocol_error():
    """On a stream, Content-Length is mandatory: without it the connection must be closed."""
    with pytest.raises(RemoteProtocolError):
        StreamFramer().feed(MESSAGE.replace(b"Content-Length: 4\r\n", b""))


def test_oversized_message_is_refused_with_513():
    """A declared body beyond the size limit is refused before buffering it."""
    with pytest.raises(RemoteProtocolError) as error:
        StreamFramer(max_message_size=100).feed(MESSAGE.replace(b"Content-Length: 4", b"Content-Length: 5000"))
    assert error.value.status == 513
