"""The pre-flight checks of a move off MySQL or MariaDB: the source's side (wizard.move.preflight asks the target).

Only read: the source answers, is the engine's database at a revision this wizard knows, holds no table
the history does not know, who else is connected, and the data scan (wizard.mysql.source).
"""

from __future__ import annotations

from typing import Any

from wizard.errors import WizardError
from wizard.events import Emit
from wizard.move.preflight import FAIL, PASS, WARN, Check, PreflightReport, _add_scan, no_schema_to_match
from wizard.mysql import source as mysql_source
from wizard.mysql.info import other_sessions
from wizard.mysql.lock import lock_name
from wizard import schema
from wizard.move.normalize import kind_of, takes
from wizard.schema import history
from wizard.urls import DbUrl


async def check_source(db: DbUrl, report: PreflightReport, add: Any, emit: Emit) -> None:
    try:
        tables, state, others = await mysql_source.read_source(db)
    except WizardError as exc:
        add(Check("source", FAIL, exc.message))
        return
    add(Check("source", PASS, f"{db.masked()} answers; it is read in READ ONLY transactions"))
    revision = state.effective
    if state.empty:
        add(Check("revision", FAIL, f"database {db.database} holds none of the engine's tables: point --source at "
                                    "the engine's database"))
        return
    if revision not in [r.id for r in history()] or state.differences:
        add(Check("revision", FAIL, no_schema_to_match(state)))
        return
    report.source_revision = revision
    add(Check("revision", PASS, state.describe()))
    if others:
        add(Check("tables", FAIL, f"table(s) the engine's history does not know: {', '.join(others)}: a move off "
                                  "MySQL carries the engine's tables only; move those apart first"))
        return
    declared = {(t, c): kind_of(v) for t, columns in schema.mysql_types(revision).items() for c, v in columns.items()}
    differ = [f"{t.name}.{c.name} is {c.declared} in the source, where the engine's history makes a "
              f"{declared[t.name, c.name]}" for t in tables for c in t.columns
              if (t.name, c.name) in declared and not takes(declared[t.name, c.name], c.kind)]
    if differ:
        add(Check("types", FAIL, f"{'; '.join(differ)}: the move cannot carry such a column as it is; ALTER it to "
                                 f"the history's type, in a copy of the database if need be"))
        return
    sessions = await other_sessions(db, lock_name(db))  # the move holds the database's wizard lock
    if sessions:
        add(Check("source in use", WARN, f"database {db.database} is used by {', '.join(sessions)}: stop the engine "
                                         "before the move, or what it writes after the copy will not be in the target"))
    _add_scan(report, (tables, [], await mysql_source.scan(db, tables, emit)), add)
