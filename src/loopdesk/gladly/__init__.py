"""Gladly: the bridges between loopdesk and Gladly."""
