"""Draft returns made through loopdesk, with Loop's last answer for each.

Revision ID: 0009_drafts
Revises: 0008_gladly
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_drafts"
down_revision = "0008_gladly"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "drafts",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("order_name", sa.String(255), nullable=False),
        sa.Column("key_name", sa.String(128), nullable=False),
        sa.Column("conversation_id", sa.String(128), nullable=True),
        sa.Column("state", sa.String(64), nullable=True),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("return_id", sa.String(64), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_drafts"),
    )
    op.create_index("ix_drafts_conversation_id", "drafts", ["conversation_id"])
    op.create_index("ix_drafts_updated_at", "drafts", ["updated_at"])


def downgrade() -> None:
    op.drop_table("drafts")
