"""Webhook update claims and per-install values.

Claims: no update answered twice across replicas. Install values: the chat-id salt of a PostgreSQL
store, which every replica must share.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "updates",
        sa.Column("update_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("owner", sa.Text, nullable=False),  # random id of the claiming process
        sa.Column("lease_until", sa.Float, nullable=False),  # unix time
        sa.Column("received_at", sa.Text, nullable=False),  # ISO 8601 UTC
        sa.Column("answered_at", sa.Text),
    )
    op.create_index("updates_received", "updates", ["received_at"])
    op.create_table(
        "install",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("install")
    op.drop_index("updates_received", "updates")
    op.drop_table("updates")
