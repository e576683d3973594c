"""Idempotency keys claimed before an action runs.

Revision ID: 0003_idempotency
Revises: 0002_webhooks
"""

from __future__ import annotations

revision = "0003_idempotency"
down_revision = "0002_webhooks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
