"""Gladly re-routing: its webhook events, and the conversations it has heard of.

Revision ID: 0008_gladly
Revises: 0007_exceptions
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_gladly"
down_revision = "0007_exceptions"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "gladly_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(128), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("conversation_id", sa.String(128), nullable=True),
        sa.Column("received_at", _TS, nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", _TS, nullable=False),
        sa.Column("applied_at", _TS, nullable=True),
        sa.Column("result", sa.String(32), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_gladly_events"),
        sa.UniqueConstraint("event_id", name="uq_gladly_events_event_id"),
    )
    op.create_index("ix_gladly_events_status", "gladly_events", ["status"])
    op.create_index("ix_gladly_events_next_attempt_at", "gladly_events", ["next_attempt_at"])
    op.create_table(
        "gladly_conversations",
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("gladly_customer_id", sa.String(128), nullable=False),
        sa.Column("emails", sa.JSON(), nullable=False),
        sa.Column("customer", sa.String(64), nullable=False),
        sa.Column("inbox_id", sa.String(128), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("outcome_at", _TS, nullable=True),
        sa.Column("lease_until", _TS, nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_gladly_conversations"),
    )
    op.create_index("ix_gladly_conversations_customer", "gladly_conversations", ["customer"])
    op.create_index("ix_gladly_conversations_status", "gladly_conversations", ["status"])


def downgrade() -> None:
    op.drop_table("gladly_conversations")
    op.drop_table("gladly_events")
