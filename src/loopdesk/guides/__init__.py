"""Self-service guides: what a customer's message asks for, and the answer to it.

`classifier` holds the intent classifier, its labelled data (`intents.jsonl`), its
training and its held-out report.
"""
