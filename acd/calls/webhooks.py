"""CrmWebhooks: the `Webhooks` port over the CRM client; agents' own feature-code calls are not sent."""

from __future__ import annotations

from typing import Any

from .ports import ConfigSource

__all__ = ["CrmWebhooks"]


class CrmWebhooks:
    """Posts call events to the CRM's webhook (fire and forget); does nothing without a CRM. The
    client is read from `config` at each event, so a reload that changes the CRM applies at once."""

    def __init__(self, config: ConfigSource, reactor) -> None:
        self.config = config
        self.reactor = reactor

    def call_event(self, event_type: str, *, call_id: str, context: Any, internal: bool = False,
                   **fields: Any) -> None:
        """One event: the call's id, caller, dialled number and customer id, plus `fields`; none for
        `internal` calls (agents' feature codes)."""
        crm = self.config.crm
        if crm is None or internal:
            return
        customer = context.get("customer") if context is not None else None
        crm.post_event({"type": event_type, "call_id": call_id, "at": self.reactor.seconds(),
                             "caller": context.get("caller_id") if context is not None else None,
                             "dialled": context.get("dialled") if context is not None else None,
                             "customer_id": customer.get("id") if isinstance(customer, dict) else None, **fields})
