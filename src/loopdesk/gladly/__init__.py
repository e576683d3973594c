"""Gladly bridges: the Lookup Adaptor, the App Platform app, re-routing."""
