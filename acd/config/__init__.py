"""Loading `conf/`, `dialplans/` and `ivr_flows/` into frozen dataclasses, reporting file:line errors."""
