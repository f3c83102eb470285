"""The move off MySQL or MariaDB to PostgreSQL: the SQLite move's journey (wizard.move.run) with another source.

The same steps, journal, checkpoints and undo; what differs is the source's side: its checks and scan
(wizard.mysql.checks), its backup (mysqldump, wizard.backup picks it by the URL; its proof, a restore into a scratch database, runs
beside the copy and the verification, and the switch waits for it),
its fingerprint (CHECKSUM TABLE: a resume of a source written since is refused, as for a SQLite file),
its reader (wizard.mysql.reader), and the database's wizard lock (GET_LOCK) held for the run. The source is
only read, and stays the rollback: the rows the engine writes to the target after the move are carried back
into it (wizard.rollback.carry_mysql, proven unchanged since by the fingerprint). The move from SQLite onto
MySQL is wizard.mysql.move_onto.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from wizard.backup import BackupRecord, needs_proof
from wizard.move.preflight import PreflightReport
from wizard.move.run import PROOF_STEP, MoveResult, _Move
from wizard.mysql import source as mysql_source
from wizard.mysql.dump import prove_dump
from wizard.mysql.lock import database_lock
from wizard.mysql.reader import MySQLReader


class MoveOffMySQL(_Move):
    reader_class = MySQLReader
    proof_name = "restore into a scratch database"
    proof_failed = "the backup cannot be trusted"

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

    def _prove_backup(self, record: dict[str, Any]) -> asyncio.Future | None:
        """The dump's restore and comparison it deferred (wizard.mysql.dump.prove_dump), beside the copy and the
        verification: the server restores while they read. Awaited before the switch; cancelled (its scratch
        database dropped) when the run ends before."""
        backup = BackupRecord.from_dict(record)
        if PROOF_STEP in self.done or not needs_proof(backup):
            return None
        return asyncio.create_task(prove_dump(backup, self.options.source, self.emit, PROOF_STEP), name="backup proof")
