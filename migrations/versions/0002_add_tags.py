"""add tags: workflows.tags JSON, nullable; existing rows get []

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlite3

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workflows") as batch:
        batch.add_column(sa.Column("tags", sa.JSON(), nullable=True))
    op.execute("UPDATE workflows SET tags = '[]' WHERE tags IS NULL")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite" or sqlite3.sqlite_version_info >= (3, 35, 0):
        # SQLite drops a column in place since 3.35. Batch mode would copy the table and rename the copy, which
        # drops the triggers on it and fails on a view that names it (the operator's, beside the engine's).
        op.drop_column("workflows", "tags")
        return
    with op.batch_alter_table("workflows") as batch:
        batch.drop_column("tags")
