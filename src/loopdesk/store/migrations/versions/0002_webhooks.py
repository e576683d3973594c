"""Webhook events: room for what a reliable apply needs.

Events count their apply attempts and are found by return (a label event waits for its
return); a stored return remembers where its version came from and the trigger's rank.

Revision ID: 0002_webhooks
Revises: 0001_initial
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_webhooks"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "webhook_events",
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_index("ix_webhook_events_return_id", "webhook_events", ["return_id"])
    op.add_column("returns", sa.Column("version_source", sa.String(16), nullable=True))
    op.add_column("returns", sa.Column("version_rank", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("returns") as batch:
        batch.drop_column("version_rank")
        batch.drop_column("version_source")
    op.drop_index("ix_webhook_events_return_id", table_name="webhook_events")
    with op.batch_alter_table("webhook_events") as batch:
        batch.drop_column("attempts")
