"""Routing decisions.

Revision ID: 0004_routing
Revises: 0003_idempotency
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_routing"
down_revision = "0003_idempotency"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "routing_decisions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("customer_emails", sa.JSON(), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("intent", sa.String(32), nullable=False),
        sa.Column("facts", sa.JSON(), nullable=False),
        sa.Column("queue", sa.String(64), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("rule", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_routing_decisions"),
    )
    op.create_index("ix_routing_decisions_at", "routing_decisions", ["at"])
    op.create_index("ix_routing_decisions_queue", "routing_decisions", ["queue"])
    op.create_index("ix_routing_decisions_rule", "routing_decisions", ["rule"])


def downgrade() -> None:
    op.drop_table("routing_decisions")
