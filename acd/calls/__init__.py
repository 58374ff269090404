"""The imperative shell: Twisted transports, one CallSession per call, timers from the reactor."""
