"""The MariaDB (or MySQL) server of the MySQL row: fresh databases, what they hold, what the server is."""

from __future__ import annotations

from typing import Any

import pymysql
from sqlalchemy.engine import make_url

SERVER_URL = "mysql://root@127.0.0.1:3306/mysql"


def _connect(server_url: str, database: str | None = None) -> Any:
    u = make_url(server_url)
    return pymysql.connect(host=u.host or "127.0.0.1", port=u.port or 3306, user=u.username or "root",
                           password=u.password or "", database=database, charset="utf8mb4", autocommit=True)


def _run(server_url: str, sql: str, database: str | None = None, args: tuple = ()) -> tuple | None:
    conn = _connect(server_url, database)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args or None)
            return cur.fetchone()
    finally:
        conn.close()


def database_url(server_url: str, name: str) -> str:
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def fresh_database(server_url: str, name: str) -> str:
    """Drop and create database `name` (utf8mb4, as the wizard asks of a target); its URL."""
    drop_database(server_url, name)
    _run(server_url, f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    return database_url(server_url, name)


def drop_database(server_url: str, name: str) -> None:
    _run(server_url, f"DROP DATABASE IF EXISTS `{name}`")


def server_version(server_url: str) -> str:
    return _run(server_url, "SELECT VERSION()")[0]


def row_counts(server_url: str, name: str, tables: list[str]) -> dict[str, int]:
    """Rows per table in database `name`, or -1 for a table that is not there."""
    out = {}
    for t in tables:
        there = _run(server_url, "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s "
                                 "AND table_name = %s", args=(name, t))[0]
        out[t] = _run(server_url, f"SELECT count(*) FROM `{t}`", name)[0] if there else -1
    return out


def columns(server_url: str, name: str, table: str) -> list[str]:
    """The table's columns in their order in the table (the order LOAD DATA fills them without a column list)."""
    conn = _connect(server_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
                        "AND table_name = %s ORDER BY ordinal_position", (name, table))
            return [r[0] for r in cur.fetchall()]
    finally:
        conn.close()
