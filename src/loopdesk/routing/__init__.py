"""Routing: the merchant's rules over a customer's facts decide queue and priority.

`rules` parses, checks and compiles the rules file once (a bad file never reaches a
request); `decide` evaluates it over facts; `service` computes a customer's facts
through the customer lookup and records each decision.
"""
