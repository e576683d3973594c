"""loopdesk: Loop Returns and Loop Order Tracking for customer support."""

__version__ = "0.1.0"
