"""Idempotency keys claimed before an action runs.

The audit log keeps the key of each call for the trail but no longer deduplicates by
it: a refused call and its successful retry are two calls to Loop, both audited.

Revision ID: 0003_idempotency
Revises: 0002_webhooks
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_idempotency"
down_revision = "0002_webhooks"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key_name", sa.String(128), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("finished_at", _TS, nullable=True),
        sa.Column("response", sa.JSON(), nullable=True),
        sa.Column("audit_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_idempotency_keys"),
        sa.UniqueConstraint("key_name", "idempotency_key", name="uq_idempotency_keys_key"),
    )
    op.create_index("ix_idempotency_keys_started_at", "idempotency_keys", ["started_at"])
    # SQLite cannot drop a constraint in place: batch mode copies the table.
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_constraint("uq_audit_log_idempotency", type_="unique")


def downgrade() -> None:
    # Fails when one key was audited twice: keep those rows' trail or clear them first.
    with op.batch_alter_table("audit_log") as batch:
        batch.create_unique_constraint("uq_audit_log_idempotency", ["key_name", "idempotency_key"])
    op.drop_table("idempotency_keys")
