"""Pure media wire formats: RTP, G.711, RFC 4733 telephone-event, SDP, WAV files."""
