"""Questions and conversation memory.

The schema the SQLite log had before migrations were versioned (its PRAGMA user_version 3); such a
log is stamped with this revision.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "questions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),  # never reused: old buttons stay wrong
        sa.Column("asked_at", sa.Text, nullable=False),  # ISO 8601 UTC
        sa.Column("chat_hash", sa.Text, nullable=False),  # HMAC-SHA256(salt, chat id), hex
        sa.Column("chat_kind", sa.Text, nullable=False),
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("normalized_question", sa.Text, nullable=False),
        sa.Column("answered", sa.Integer, nullable=False),
        sa.Column("hits", sa.Text, nullable=False),  # JSON list of the first page's hit references
        sa.Column("vote", sa.Integer),
        sa.Column("voted_at", sa.Text),
        sa.Column("year", sa.Integer),
        sa.Column("understood_as", sa.Text),
        sqlite_autoincrement=True,
    )
    op.create_index("questions_vote", "questions", ["vote"])
    op.create_index("questions_chat", "questions", ["chat_hash"])
    op.create_table(
        "conversations",
        sa.Column("chat_hash", sa.Text, primary_key=True),
        sa.Column("thread", sa.Integer, primary_key=True),  # forum topic id, 0 outside topics
        sa.Column("updated_at", sa.Text, nullable=False),
        sa.Column("turns", sa.Text, nullable=False),  # JSON list of the last turns
        sa.Column("scope", sa.Text, nullable=False),  # JSON: the chat's /report choice
    )


def downgrade() -> None:
    op.drop_table("conversations")
    op.drop_index("questions_chat", "questions")
    op.drop_index("questions_vote", "questions")
    op.drop_table("questions")
