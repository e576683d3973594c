"""`loopdesk.loop`: the only package that talks to Loop Returns and Loop Order Tracking."""

from loopdesk.loop.http import InvalidLoopBody, UpstreamHTTP, UpstreamResponse
from loopdesk.loop.redact import redact_email, redact_text
from loopdesk.loop.returns import LoopReturnsClient, ReturnAction
from loopdesk.loop.stats import UpstreamStats
from loopdesk.loop.tracking import OrderTrackingClient

__all__ = [
    "InvalidLoopBody",
    "LoopReturnsClient",
    "OrderTrackingClient",
    "ReturnAction",
    "UpstreamHTTP",
    "UpstreamResponse",
    "UpstreamStats",
    "redact_email",
    "redact_text",
]
