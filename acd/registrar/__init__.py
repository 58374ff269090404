"""The registrar: agents' softphones REGISTER (RFC 3261 §10) with extension and Digest password.

Pure parts only: the location table (`bindings`), RFC 3327 Path (`path`), the failed-authentication
limiter (`limiter`)
and the authentication log line format that fail2ban reads (`auth_log`).
Digest itself is in `acd.sip.digest`; persistence is in `acd.store.bindings_store`.
"""

from .bindings import Binding, BindingTable, RegisterOutcome, parse_contact_values
from .limiter import FailedAuthLimiter
from .path import AgentContact, parse_path_values, supports_path

__all__ = ["Binding", "BindingTable", "RegisterOutcome", "parse_contact_values", "FailedAuthLimiter", "AgentContact",
           "parse_path_values", "supports_path"]
