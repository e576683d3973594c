"""Webhook events: room for what a reliable apply needs.

Revision ID: 0002_webhooks
Revises: 0001_initial
"""

from __future__ import annotations

revision = "0002_webhooks"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
