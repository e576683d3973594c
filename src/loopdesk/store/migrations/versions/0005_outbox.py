"""Routing events: each customer's last outcome and the outbox of `routing.changed`.

Revision ID: 0005_outbox
Revises: 0004_routing
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_outbox"
down_revision = "0004_routing"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "routing_outcomes",
        sa.Column("customer", sa.String(64), nullable=False),
        sa.Column("emails", sa.JSON(), nullable=False),
        sa.Column("queue", sa.String(64), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(128), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("facts", sa.JSON(), nullable=False),
        sa.Column("decided_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("customer", name="pk_routing_outcomes"),
    )
    op.create_table(
        "routing_outcome_emails",
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("customer", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("email", "customer", name="pk_routing_outcome_emails"),
    )
    op.create_index("ix_routing_outcome_emails_customer", "routing_outcome_emails", ["customer"])
    op.create_table(
        "routing_outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", _TS, nullable=False),
        sa.Column("delivered_at", _TS, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_routing_outbox"),
        sa.UniqueConstraint("event_id", "url", name="uq_routing_outbox_event"),
    )
    op.create_index("ix_routing_outbox_status", "routing_outbox", ["status"])
    op.create_index("ix_routing_outbox_next_attempt_at", "routing_outbox", ["next_attempt_at"])


def downgrade() -> None:
    op.drop_table("routing_outbox")
    op.drop_table("routing_outcome_emails")
    op.drop_table("routing_outcomes")
