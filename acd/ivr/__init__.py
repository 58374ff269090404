"""The IVR: flows as data and a pure interpreter (events in, actions out, time passed in)."""
