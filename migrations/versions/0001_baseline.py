"""baseline: the engine's 1.0.0 tables, as schema-1.0.0-sqlite.sql shows them

Revision ID: 0001
Revises:
Create Date: 2026-11-25

On PostgreSQL the autoincrement ids are BIGINT (SQLite's INTEGER is 64-bit),
DATETIME is timestamp without time zone, JSON is json, BOOLEAN is boolean.
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# INTEGER on SQLite keeps the rowid alias the engine's ids rely on.
AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("username", sa.String(), nullable=False),
        sa.Column("email", sa.String()),
        sa.Column("hashed_password", sa.String()),
        sa.Column("is_active", sa.Boolean()),
        sa.Column("is_admin", sa.Boolean()),
        sa.Column("created_at", sa.DateTime()),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("username"),
    )
    op.create_table(
        "workflows",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("owner_id", sa.String()),
        sa.Column("is_public", sa.Boolean()),
        sa.Column("created_at", sa.DateTime()),
        sa.Column("updated_at", sa.DateTime()),
        sa.PrimaryKeyConstraint("id"),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"]),
    )
    op.create_index("ix_workflows_owner_id", "workflows", ["owner_id"])
    op.create_table(
        "executions",
        sa.Column("id", AUTO_ID, nullable=False, autoincrement=True),
        sa.Column("workflow_id", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("state", sa.JSON()),
        sa.Column("error", sa.Text()),
        sa.Column("started_at", sa.DateTime()),
        sa.Column("completed_at", sa.DateTime()),
        sa.PrimaryKeyConstraint("id"),
        sa.ForeignKeyConstraint(["workflow_id"], ["workflows.id"]),
    )
    op.create_index("ix_executions_workflow_id", "executions", ["workflow_id"])
    op.create_index("ix_executions_status", "executions", ["status"])
    op.create_table(
        "settings",
        sa.Column("id", AUTO_ID, nullable=False, autoincrement=True),
        sa.Column("user_id", sa.String(), nullable=False),
        sa.Column("settings_data", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime()),
        sa.Column("updated_at", sa.DateTime()),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id"),
    )


def downgrade() -> None:
    op.drop_table("settings")
    op.drop_index("ix_executions_status", table_name="executions")
    op.drop_index("ix_executions_workflow_id", table_name="executions")
    op.drop_table("executions")
    op.drop_index("ix_workflows_owner_id", table_name="workflows")
    op.drop_table("workflows")
    op.drop_table("users")
