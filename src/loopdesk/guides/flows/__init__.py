"""The guide's flows: each takes a `Turn` and answers a `Step` (a reply, and a reason
when it hands over). They act only through the turn's services, which are the same
audited paths the HTTP API uses."""
