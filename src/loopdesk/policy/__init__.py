"""The merchant's policy and the decisions made under it.

`file` reads and checks the policy file once at start-up (`load_policy -> Policy`);
`exceptions` decides a return-window exception from the order's delivery, the
customer and the ledger (pure: `exception_decision`); `grant` runs it end to end
(`ExceptionDesk.request`): fetch the order, decide, record in the ledger, allowlist.
"""
