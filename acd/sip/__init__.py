"""Sans-IO SIP (RFC 3261): messages, transactions, dialogs. Bytes and time in, events and bytes out."""
