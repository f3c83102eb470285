"""baseline: the engine's 1.0.0 tables, as schema-1.0.0-sqlite.sql shows them

Revision ID: 0001
Revises:
Create Date: 2026-11-25

On PostgreSQL the autoincrement ids are BIGINT (SQLite's INTEGER is 64-bit),
DATETIME is timestamp without time zone, JSON is json, BOOLEAN is boolean.

On MySQL and MariaDB the ids are BIGINT AUTO_INCREMENT, VARCHAR has to have a
length (255: a uuid4 is 36, and a utf8mb4 key of 255 fits InnoDB's 3072 bytes),
TEXT is LONGTEXT (TEXT stops at 64 KiB, SQLite's text does not), DATETIME is
DATETIME(6) (plain DATETIME drops the microseconds), JSON is JSON (LONGTEXT with
a json_valid check on MariaDB), BOOLEAN is TINYINT(1); every table utf8mb4 with a
binary collation that does not pad (utf8mb4_nopad_bin on MariaDB, utf8mb4_0900_bin on
MySQL 8): text compares as on SQLite and PostgreSQL's "C", byte by byte, so 'Alice' and
'alice', 'bob' and 'bob ', 'rene' and 'rené' stay two usernames and two keys, as the
engine made them. A server's default (utf8mb4_general_ci) holds each pair equal and
its UNIQUE and PRIMARY KEY refuse the second.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# INTEGER on SQLite keeps the rowid alias the engine's ids rely on.
AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
VARCHAR = sa.String().with_variant(sa.String(255), "mysql", "mariadb")
TEXT = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def mysql_table() -> dict[str, str]:
    """The MySQL table options (the other dialects ignore them)."""
    collation = "utf8mb4_nopad_bin" if getattr(op.get_bind().dialect, "is_mariadb", False) else "utf8mb4_0900_bin"
    return {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": collation}


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", VARCHAR, nullable=False),
        sa.Column("username", VARCHAR, nullable=False),
        sa.Column("email", VARCHAR),
        sa.Column("hashed_password", VARCHAR),
        sa.Column("is_active", sa.Boolean()),
        sa.Column("is_admin", sa.Boolean()),
        sa.Column("created_at", DATETIME),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("username"),
        **mysql_table(),
    )
    op.create_table(
        "workflows",
        sa.Column("id", VARCHAR, nullable=False),
        sa.Column("name", VARCHAR, nullable=False),
        sa.Column("description", TEXT),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("owner_id", VARCHAR),
        sa.Column("is_public", sa.Boolean()),
        sa.Column("created_at", DATETIME),
        sa.Column("updated_at", DATETIME),
        sa.PrimaryKeyConstraint("id"),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"]),
        **mysql_table(),
    )
    op.create_index("ix_workflows_owner_id", "workflows", ["owner_id"])
    op.create_table(
        "executions",
        sa.Column("id", AUTO_ID, nullable=False, autoincrement=True),
        sa.Column("workflow_id", VARCHAR, nullable=False),
        sa.Column("status", VARCHAR, nullable=False),
        sa.Column("state", sa.JSON()),
        sa.Column("error", TEXT),
        sa.Column("started_at", DATETIME),
        sa.Column("completed_at", DATETIME),
        sa.PrimaryKeyConstraint("id"),
        sa.ForeignKeyConstraint(["workflow_id"], ["workflows.id"]),
        **mysql_table(),
    )
    op.create_index("ix_executions_workflow_id", "executions", ["workflow_id"])
    op.create_index("ix_executions_status", "executions", ["status"])
    op.create_table(
        "settings",
        sa.Column("id", AUTO_ID, nullable=False, autoincrement=True),
        sa.Column("user_id", VARCHAR, nullable=False),
        sa.Column("settings_data", sa.JSON(), nullable=False),
        sa.Column("created_at", DATETIME),
        sa.Column("updated_at", DATETIME),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id"),
        **mysql_table(),
    )


def downgrade() -> None:
    op.drop_table("settings")
    op.drop_index("ix_executions_status", table_name="executions")
    op.drop_index("ix_executions_workflow_id", table_name="executions")
    op.drop_table("executions")
    op.drop_index("ix_workflows_owner_id", table_name="workflows")
    op.drop_table("workflows")
    op.drop_table("users")
