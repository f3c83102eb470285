"""The move off MySQL or MariaDB to PostgreSQL: the SQLite move's journey (wizard.move.run) with another source.

The same steps, journal, checkpoints and undo; what differs is the source's side: its checks and scan
(wizard.mysql.checks), its backup (mysqldump, proven by a restore: wizard.backup picks it by the URL),
its fingerprint (CHECKSUM TABLE: a resume of a source written since is refused, as for a SQLite file),
its reader (wizard.mysql.reader), and the database's wizard lock (GET_LOCK) held for the run. The source is
only read. Not done: the move's end state for a rollback's carry-back (wizard.rollback.carry_back writes a
SQLite file only): a rollback of a move off MySQL restores .env and drops the target's tables, and rows the
engine wrote to the target since are not carried back into MySQL. The move from SQLite onto MySQL is
wizard.mysql.move_onto.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from wizard.move.preflight import PreflightReport
from wizard.move.run import MoveResult, _Move
from wizard.mysql import source as mysql_source
from wizard.mysql.lock import database_lock
from wizard.mysql.reader import MySQLReader


class MoveOffMySQL(_Move):
    reader_class = MySQLReader

    async def go(self, lock_conn: asyncpg.Connection) -> MoveResult:
        async with database_lock(self.options.source):
            return await super().go(lock_conn)

    async def _fingerprint(self) -> dict[str, Any]:
        tables, _, _ = await mysql_source.read_source(self.options.source)
        return await mysql_source.fingerprint(self.options.source, tables)

    def _copy_source(self) -> Any:
        return self.options.source

    async def _checks_and_backup(self) -> tuple[PreflightReport, dict[str, Any]]:
        """One after the other: mysqldump and the scan would read the same server at once."""
        report = await self._preflight()
        self._stop_point("backup")
        return report, await self._backup()

    def _end_state_undo(self, backup: dict[str, Any], target: Any) -> dict[str, Any]:
        """Every row's key and digest as the move leaves the target, kept by the undo "save_since": a rollback
        measures what the engine wrote since (carrying it back is SQLite's only, wizard.rollback.carry_back)."""
        return {"action": "save_since", "db": self.options.target.masked()}
