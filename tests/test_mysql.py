"""MySQL and MariaDB: the engine's schema history on a real server, `wizard plan`, `wizard backup`."""

from __future__ import annotations

import asyncio
from pathlib import Path

from engine_data import build_1_0_0, read
from test_cli_errors import wizard
from wizard import commands, schema
from wizard.db import connect, write_transaction
from wizard.urls import parse_url

COUNTS = {"users": 5, "workflows": 20, "executions": 300, "settings": 1}  # conftest's engine_db


async def _upgrade(url: str, to: str, stamp: str | None = None) -> None:
    async with connect(parse_url(url)) as conn:
        async with write_transaction(conn):
            await schema.upgrade(conn, to, stamp=stamp)


def test_plan_recognises_a_1_0_0_database(mysql_url: str, engine_db: Path) -> None:
    build_1_0_0(mysql_url, engine_db)
    report = asyncio.run(commands.plan(parse_url(mysql_url)))
    info = report.source
    assert info.engine.split()[0] in ("MariaDB", "MySQL") and info.engine.split()[1][0].isdigit()
    assert info.size and info.size > 0
    assert info.tables == COUNTS
    assert info.revision == "0001" and info.schema == "1.0.0, no revision recorded: its tables match revision 0001"
    assert [(p.id, p.record_only) for p in report.pending] == [("0001", True), ("0002", False), ("0003", False),
                                                               ("0004", False)]


def test_the_history_runs_on_mysql_and_plan_reads_its_revision(mysql_url: str, engine_db: Path) -> None:
    build_1_0_0(mysql_url, engine_db)
    asyncio.run(_upgrade(mysql_url, "head", stamp="0001"))
    report = asyncio.run(commands.plan(parse_url(mysql_url)))
    assert report.source.schema == "at revision 0004" and report.pending == []
    assert report.source.tables == {**COUNTS, "alembic_version": 1}
    # 0004's data revision went through every execution; 0001's DATETIME(6) kept the microseconds.
    (arrays,) = read(mysql_url, "SELECT count(*) FROM executions WHERE JSON_TYPE(JSON_EXTRACT(state, '$.nodes')) "
                                "= 'ARRAY'")[0]
    assert arrays == COUNTS["executions"]
    assert read(mysql_url, "SELECT count(*) FROM executions WHERE MICROSECOND(started_at) > 0")[0][0] > 0


def test_wizard_plan_takes_a_mysql_url(mysql_url: str, engine_db: Path) -> None:
    build_1_0_0(mysql_url, engine_db)
    for spelling in ("mysql://", "mysql+asyncmy://", "mariadb://"):
        url = mysql_url.replace("mysql://", spelling, 1)
        done = wizard("plan", "--source", url, cwd=engine_db.parent)
        assert done.returncode == 0, done.stderr
        assert "1.0.0, no revision recorded" in " ".join(done.stdout.split())
