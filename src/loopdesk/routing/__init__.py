"""Routing: the merchant's rules over a customer's facts decide queue and priority.

`rules` parses, checks and compiles the rules file once (a bad file never reaches a
request); `decide` evaluates it over facts; `service` computes a customer's facts
through the customer lookup and records each decision. Proactive re-routing:
`reroute` compares a customer's standing outcome with the last one (after a webhook,
a refresh, a scan) and writes `routing.changed` to the outbox, `events` signs it,
`outbox` delivers it with backoff, `scan` finds what changes by time alone.
"""
