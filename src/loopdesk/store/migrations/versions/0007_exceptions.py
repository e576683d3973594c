"""The exceptions ledger: every return-window exception decision, and its addresses.

Revision ID: 0007_exceptions
Revises: 0006_conversations
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_exceptions"
down_revision = "0006_conversations"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "exceptions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("decided_at", _TS, nullable=False),
        sa.Column("customer_emails", sa.JSON(), nullable=False),
        sa.Column("order_name", sa.String(255), nullable=False),
        sa.Column("order_key", sa.String(255), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("criteria", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("vip", sa.Boolean(), nullable=False),
        sa.Column("delivered_at", _TS, nullable=True),
        sa.Column("allowlist_id", sa.String(64), nullable=True),
        sa.Column("conversation_id", sa.String(128), nullable=True),
        sa.Column("key_name", sa.String(128), nullable=False),
        sa.Column("grant_key", sa.String(255), nullable=True),
        sa.Column("settled_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_exceptions"),
        # NULLs never collide: only pending and granted rows hold a grant key.
        sa.UniqueConstraint("grant_key", name="uq_exceptions_grant_key"),
    )
    op.create_index("ix_exceptions_decided_at", "exceptions", ["decided_at"])
    op.create_index("ix_exceptions_order_key", "exceptions", ["order_key"])
    op.create_index("ix_exceptions_outcome", "exceptions", ["outcome"])
    op.create_table(
        "exception_emails",
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("exception_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("email", "exception_id", name="pk_exception_emails"),
    )
    op.create_index("ix_exception_emails_exception_id", "exception_emails", ["exception_id"])


def downgrade() -> None:
    op.drop_table("exception_emails")
    op.drop_table("exceptions")
