"""kill -9 of a real `wizard` on MySQL/MariaDB: an upgrade between two revisions (each commits on its own there),
then `wizard rollback`: the database exactly as it was before the run; a move onto MySQL and a move off it, each
mid-copy, then `--resume`: every row once, the source unchanged."""

from __future__ import annotations

import contextlib
import json
import subprocess
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from engine_data import build_1_0_0, read, write
from fault_support import source_counts, wizard, wizard_killed_at
from move_helpers import fetch, sha256
from mysql_server import admin
from wizard import sample
from wizard.schema import head
from wizard.urls import parse_url

pytestmark = pytest.mark.slow  # real processes: `pytest -m slow` runs them

ENGINE = ("users", "workflows", "executions", "settings")


def _state(url: str) -> tuple[list[tuple], dict[str, int]]:
    return read(url, "SHOW TABLES"), {t: read(url, f"CHECKSUM TABLE {t}")[0][1] for t in ENGINE}


def test_kill_between_two_revisions_then_rollback(mysql_url: str, engine_db: Path, survived) -> None:
    build_1_0_0(mysql_url, engine_db)
    before = _state(mysql_url)
    folder = engine_db.parent
    # schema.upgrade's third call: the baseline and 0002 are committed, 0003 has begun (journaled, not run).
    state_dir = str(folder / ".wizard")
    wizard_killed_at("wizard.schema:upgrade:3", "upgrade", "--db", mysql_url, "--yes", "--state-dir", state_dir)
    assert read(mysql_url, "SELECT version_num FROM alembic_version") == [("0002",)]
    assert read(mysql_url, "SHOW COLUMNS FROM workflows LIKE 'tags'") != []  # 0002 really is in
    (run,) = (folder / ".wizard" / "runs").iterdir()
    steps = [r["step"] for r in map(json.loads, (run / "journal.jsonl").read_text().splitlines())
             if r["kind"] == "step_finished"]
    assert "revision 0002" in steps and "revision 0003" not in steps
    back = wizard("rollback", "--last", "--yes", "--state-dir", state_dir)
    assert back.returncode == 0, back.stderr
    assert _state(mysql_url) == before
    survived(fault="kill -9 of `wizard upgrade` on MariaDB between two revisions (baseline and 0002 committed, "
                   "0003 begun), then `wizard rollback`",
             did="the journal had each committed revision as a step of its own; the rollback restored the proven "
                 "mysqldump: 1.0.0 again, no alembic_version, every table's CHECKSUM as before the run", rows_lost=0)


def test_kill_mid_copy_into_mysql_then_resume_equals_the_source(mysql_url: str, tmp_path: Path, survived) -> None:
    """kill -9 of `wizard migrate` into MariaDB inside the 2nd chunk of executions (its LOAD DATA done, its
    checkpoint not yet written, nothing committed), then `--resume`: every row once, verified."""
    source = sample.build(tmp_path / "engine.db", executions=25_000, workflows=20, users=5)
    before, counts = sha256(source), source_counts(source)
    state = str(tmp_path / "state")
    args = ("migrate", "--source", f"sqlite:///{source}", "--target", mysql_url, "--yes", "--state-dir", state,
            "--jobs", "1")
    # _save's calls with --jobs 1: users, settings, workflows (a chunk, done: 2 each), then executions: its 1st chunk
    # is the 7th, the 8th its 2nd.
    wizard_killed_at("wizard.mysql.copy:_save:8", *args)
    copied = read(mysql_url, "SELECT rows_copied, done FROM wizard_copy_checkpoint WHERE table_name = 'executions'")
    assert copied == [(10_000, 0)]
    assert read(mysql_url, "SELECT COUNT(*) FROM executions") == [(10_000,)]  # the 2nd chunk went with its commit
    resumed = wizard(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    for table, n in counts.items():
        assert read(mysql_url, f"SELECT COUNT(*), COUNT(DISTINCT id) FROM {table}") == [(n, n)], table
    assert sha256(source) == before
    survived(fault="kill -9 of `wizard migrate` into MariaDB in the 2nd chunk of executions (LOAD DATA done, "
                   "checkpoint not written), then `wizard migrate --resume`",
             did="the checkpoint said 10,000 executions, as in the table; the resume carried on after it: every "
                 "table's rows once (count = distinct ids = the source's), the row-level verification equal, the "
                 "source's sha256 unchanged", rows_lost=0)


def test_kill_mid_copy_of_a_move_off_mysql_then_resume(mysql_url: str, pg_url: str, engine_db: Path,
                                                       survived) -> None:
    build_1_0_0(mysql_url, engine_db)
    columns = ", ".join(f'"{r[0]}"' for r in read(mysql_url, "SHOW COLUMNS FROM executions") if r[0] != "id")
    for _ in range(6):  # 300 executions -> 19,200: two chunks of 10,000
        write(mysql_url, f"INSERT INTO executions ({columns}) SELECT {columns} FROM executions")
    before = _state(mysql_url)
    state = str(engine_db.parent / ".wizard")
    move = ["migrate", "--source", mysql_url, "--target", pg_url, "--state-dir", state, "--yes", "--jobs", "1"]
    # Checkpoint writes with --jobs 1: users, settings, workflows (a chunk, done: 2 each), then executions:
    # its first chunk is the 7th, the 8th its second chunk, COPYed and not committed.
    killed = wizard_killed_at("wizard.move.copy:_save:8", *move)
    assert fetch(pg_url, "SELECT rows_copied, done FROM wizard_copy_checkpoint WHERE table_name = 'executions'") \
        == [(10_000, False)]
    assert fetch(pg_url, "SELECT count(*) FROM executions")[0][0] == 10_000
    resumed = wizard(*move, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Traceback" not in killed.stderr + resumed.stderr
    assert fetch(pg_url, "SELECT count(*), count(DISTINCT id) FROM executions")[0] == (19_200, 19_200)
    (report,) = (engine_db.parent / ".wizard" / "runs").glob("*/verify.md")
    assert _state(mysql_url) == before  # the source was never written
    survived(fault="kill -9 of `wizard migrate` off MariaDB in the middle of executions (its 2nd of 2 chunks "
                   "COPYed, not committed), then `wizard migrate --resume`",
             did="the checkpoint held executions at 10,000 rows; the resume carried on after its key: 19,200 "
                 f"rows, each once; the row-level verification against the source: equal ({report.name}); the "
                 "source's CHECKSUMs as before", rows_lost=0)


# --- SQLite -> MySQL: the backup, the schema, the .env switch -------------------------------------------------

ENV_LINE = "DATABASE_URL=sqlite+aiosqlite:///{}\n"


@pytest.fixture(scope="module")
def small_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sample.build(tmp_path_factory.mktemp("small") / "engine.db", executions=600, workflows=20, users=5)


def _onto(source: Path, url: str, state: Path, *extra: str) -> list[str]:
    return ["migrate", "--source", f"sqlite:///{source}", "--target", url, "--state-dir", str(state), "--yes", *extra]


def _every_row_once(source: Path, url: str) -> None:
    """Each table's rows once (count = distinct ids = the source's), and `wizard verify` equal row by row."""
    for table, n in source_counts(source).items():
        assert read(url, f"SELECT COUNT(*), COUNT(DISTINCT id) FROM {table}") == [(n, n)], table
    verified = wizard("verify", "--source", f"sqlite:///{source}", "--target", url, "--json")
    assert verified.returncode == 0, verified.stdout[-2000:] + verified.stderr[-2000:]
    assert json.loads(verified.stdout.splitlines()[-1])["ok"]


def _journal_steps(state: Path) -> tuple[list[str], list[str]]:
    """The steps the killed run's journal began and finished."""
    (journal,) = state.glob("runs/*/journal.jsonl")
    records = [json.loads(line) for line in journal.read_text().splitlines()]
    return ([r["step"] for r in records if r["kind"] == "step_started"],
            [r["step"] for r in records if r["kind"] == "step_finished"])


def _resume_or_roll_back(recovery: str, args: list[str], state: Path) -> subprocess.CompletedProcess:
    done = wizard(*args, "--resume") if recovery == "resume" else \
        wizard("rollback", "--last", "--yes", "--state-dir", str(state))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    return done


def test_kill_in_the_backup_of_a_move_onto_mysql_then_resume(small_source: Path, mysql_url: str, tmp_path: Path,
                                                             survived) -> None:
    """(A rollback has nothing to undo here: it says so and exits 3; the resume is the way on.)"""
    before = sha256(small_source)
    state = tmp_path / "state"
    args = _onto(small_source, mysql_url, state)
    killed = wizard_killed_at("wizard.backup:_copy_bytes:1", *args)  # the temporary copy made, no page in it yet
    began, finished = _journal_steps(state)
    assert "backup" in began and "backup" not in finished and "schema" not in began
    (run,) = (state / "runs").iterdir()
    assert [p.name for p in run.glob("*wizard-tmp*")] == [f".{small_source.name}.backup.wizard-tmp"]
    assert read(mysql_url, "SHOW TABLES") == []  # nothing written to the target yet
    _resume_or_roll_back("resume", args, state)
    assert list(run.glob("*wizard-tmp*")) == []
    _every_row_once(small_source, mysql_url)
    assert sha256(small_source) == before
    assert "Traceback" not in killed.stderr
    survived(fault="kill -9 of `wizard migrate` onto MariaDB in the backup of the SQLite source (temporary copy "
                   "made, no page copied), then `wizard migrate --resume`",
             did="the journal had the backup begun, not finished, the target untouched; the resume took the backup "
                 "again over the temporary name (none left) and moved: every row once, verified; the source's "
                 "sha256 unchanged", rows_lost=0)


@pytest.mark.parametrize("recovery", ["resume", "rollback"])
def test_kill_in_the_schema_step_of_a_move_onto_mysql(recovery: str, small_source: Path, mysql_url: str,
                                                      tmp_path: Path, survived) -> None:
    before = sha256(small_source)
    state = tmp_path / "state"
    args = _onto(small_source, mysql_url, state)
    # wizard.mysql.target.app_tables's calls: the checks, the schema step's look for a finished schema, create()'s
    # drop of leftovers, then its list of what it made: every table is there (MySQL committed each CREATE), the
    # bookkeeping row names the run but not yet the tables that say the schema is whole.
    wizard_killed_at("wizard.mysql.target:app_tables:4", *args)
    began, finished = _journal_steps(state)
    assert "schema" in began and "schema" not in finished
    left = sorted(r[0] for r in read(mysql_url, "SHOW TABLES"))
    assert {"users", "workflows", "executions", "settings", "alembic_version", "wizard_move"} <= set(left)
    assert read(mysql_url, 'SELECT "tables" FROM wizard_move') == [(None,)]  # the run's row, no tables in it yet
    _resume_or_roll_back(recovery, args, state)
    if recovery == "resume":
        _every_row_once(small_source, mysql_url)
        outcome = ("`wizard migrate --resume` knew the tables as its run's (the bookkeeping row, written first, names "
                   "it), found the schema not whole, dropped them and made it again, then moved: every row once, "
                   "verified")
    else:
        assert read(mysql_url, "SHOW TABLES") == []
        outcome = "`wizard rollback` dropped every table (the schema step's undo, journaled before its first CREATE)"
    assert sha256(small_source) == before
    survived(fault=f"kill -9 of `wizard migrate` onto MariaDB in the schema step (every CREATE committed, the "
                   f"bookkeeping row not yet saying the schema is whole), then "
                   f"`wizard {'migrate --resume' if recovery == 'resume' else 'rollback'}`",
             did=f"{len(left)} tables left, the schema step begun and not finished in the journal; {outcome}; the "
                 "source's sha256 unchanged", rows_lost=0)


@pytest.mark.parametrize("spec, where, recovery", [
    # os.chmod's calls in the move: the backup's temporary file, then the switch's write_atomically.
    ("os:chmod:2", "between the temporary file written and the rename", "resume"),
    ("os:chmod:2", "between the temporary file written and the rename", "rollback"),
    # wizard.envfile.fsync_path's calls: .env's backup, verify.md and verify.json, ..., then the switch's rename.
    ("wizard.envfile:fsync_path:7", "after the rename, before the journal recorded the switch", "rollback"),
], ids=["before-rename-resume", "before-rename-rollback", "after-rename-rollback"])
def test_kill_in_the_env_switch_of_a_move_onto_mysql(spec: str, where: str, recovery: str, small_source: Path,
                                                     mysql_url: str, tmp_path: Path, survived) -> None:
    folder = tmp_path / "engine"  # .env alone in its folder: a temporary file left beside it shows
    folder.mkdir()
    env = folder / ".env"
    env.write_bytes(f"# the engine\n{ENV_LINE.format(small_source)}LOG_LEVEL=info\n".encode())
    before = env.read_bytes()
    # Written here, not by the wizard's own rule: the URL in SQLAlchemy's async spelling, quoted.
    switched = before.replace(ENV_LINE.format(small_source).encode(),
                              f'DATABASE_URL="{parse_url(mysql_url).async_str()}"\n'.encode())
    state = tmp_path / "state"
    args = _onto(small_source, mysql_url, state, "--env-file", str(env))
    wizard_killed_at(spec, *args)
    began, finished = _journal_steps(state)
    assert began[-1] == "switch" and "switch" not in finished
    now = env.read_bytes()
    assert now in (before, switched)  # never half-written
    strays = sorted(p.name for p in folder.iterdir() if p.name != ".env")
    if spec.startswith("os:chmod"):
        assert now == before and len(strays) == 1 and (folder / strays[0]).read_bytes() == switched
    else:
        assert now == switched and strays == []
    _resume_or_roll_back(recovery, args, state)
    if recovery == "resume":
        assert env.read_bytes() == switched
        _every_row_once(small_source, mysql_url)
        outcome = "`wizard migrate --resume` switched it whole: `.env` the fully switched file; every row once, verified"
    else:
        assert env.read_bytes() == before
        assert read(mysql_url, "SHOW TABLES") == []
        outcome = "`wizard rollback` restored `.env` byte for byte (the switch's undo, journaled when it began) and " \
                  "dropped the target's tables"
    assert [p.name for p in folder.iterdir()] == [".env"]
    survived(fault=f"kill -9 of `wizard migrate` onto MariaDB while `.env` is rewritten, {where}",
             did=f"`.env` {'byte-identical to before' if now == before else 'the fully switched file'}, "
                 f"{len(strays)} temporary file(s) beside it; {outcome}; no temporary file left", rows_lost=0)


# --- MySQL -> PostgreSQL: the backup ------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["dump", "proof"])
def test_kill_in_the_backup_of_a_move_off_mysql_then_resume(where: str, mysql_url: str, pg_url: str,
                                                            engine_db: Path, survived) -> None:
    build_1_0_0(mysql_url, engine_db)
    before = _state(mysql_url)
    state = engine_db.parent / ".wizard"
    move = ["migrate", "--source", mysql_url, "--target", pg_url, "--state-dir", str(state), "--yes"]
    # dump: mysqldump about to write its temporary file. proof: the dump published, the backup step finished, and
    # its proof (a restore into a scratch database, beside the copy) about to restore into the scratch database.
    wizard_killed_at("wizard.mysql.dump:_dump:1" if where == "dump" else "wizard.mysql.dump:load:1", *move)
    began, finished = _journal_steps(state)
    (run,) = (state / "runs").iterdir()
    scratch = "SHOW DATABASES LIKE 'wizard\\_proof\\_" + run.name.replace("-", "\\_") + "\\_%'"
    if where == "dump":
        assert "backup" in began and "backup" not in finished
        assert len(list(run.glob("*wizard-tmp*"))) == 1
        assert read(mysql_url, scratch) == []
    else:
        assert "backup" in finished and "backup_check" not in finished and "switch" not in began
        assert list(run.glob("*wizard-tmp*")) == []
        assert len(read(mysql_url, scratch)) == 1  # named after the run: the kill left it on the server
    resumed = wizard(*move, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert list(run.glob("*wizard-tmp*")) == []
    assert read(mysql_url, scratch) == []  # the resume dropped it before its own proof
    if where == "proof":
        said = [line for line in resumed.stderr.splitlines() if "scratch database(s) left" in line]
        assert len(said) == 1 and f"run {run.name}" in said[0], resumed.stderr[-2000:]
        assert "backup_check" in _journal_steps(state)[1]
    for table in ENGINE:
        n = read(mysql_url, f"SELECT COUNT(*) FROM {table}")[0][0]
        assert fetch(pg_url, f"SELECT count(*), count(DISTINCT id) FROM {table}")[0] == (n, n), table
    assert _state(mysql_url) == before  # the source was never written
    if where == "dump":
        survived(fault="kill -9 of `wizard migrate` off MariaDB in its backup (mysqldump about to write its "
                       "temporary file), then `wizard migrate --resume`",
                 did="the journal had the backup begun, not finished; the resume dumped again (no temporary file "
                     "left) and proved it beside the copy, then moved: every table's rows once in PostgreSQL; the "
                     "source's CHECKSUMs as before", rows_lost=0)
    else:
        survived(fault="kill -9 of `wizard migrate` off MariaDB in the proof of its dump (a restore into a scratch "
                       "database, running beside the copy), then `wizard migrate --resume`",
                 did="the journal had the backup finished, its proof not; the server kept the proof's scratch "
                     "database (named after the run); the resume dropped it and said so in one line, proved the "
                     "dump again, then moved: every table's rows once in PostgreSQL; the source's CHECKSUMs as "
                     "before", rows_lost=0)


def test_kill_between_two_revisions_of_a_moves_upgrade_onto_mysql_then_resume(small_source: Path, mysql_url: str,
                                                                              tmp_path: Path, survived) -> None:
    state = tmp_path / "state"
    args = _onto(small_source, mysql_url, state, "--to", "head")
    # schema.upgrade's calls: the schema step (to the source's revision, 0001), the verification's reference schema,
    # then one per revision of --to: the 4th is 0003's, 0002 committed before it.
    wizard_killed_at("wizard.schema:upgrade:4", *args)
    began, finished = _journal_steps(state)
    assert began[-1] == "upgrade" and "verify" in finished and "upgrade" not in finished
    assert read(mysql_url, "SELECT version_num FROM alembic_version") == [("0002",)]
    _resume_or_roll_back("resume", args, state)
    assert read(mysql_url, "SELECT version_num FROM alembic_version") == [(head(),)]
    for table, n in source_counts(small_source).items():
        assert read(mysql_url, f"SELECT COUNT(*), COUNT(DISTINCT id) FROM {table}") == [(n, n)], table
    survived(fault="kill -9 of `wizard migrate --to head` onto MariaDB between two revisions of the upgrade after the "
                   "copy (0002 committed, 0003 not begun), then `wizard migrate --resume`",
             did="the journal had the copy verified and the upgrade begun; the resume found the tables matching "
                 f"0002, the revision recorded, and applied the rest one at a time: {head()}, every row once",
             rows_lost=0)


def test_kill_in_the_env_switch_of_a_move_off_mysql_then_rollback(mysql_url: str, pg_url: str, engine_db: Path,
                                                                  survived) -> None:
    build_1_0_0(mysql_url, engine_db)
    before_source = _state(mysql_url)
    folder = engine_db.parent / "engine"  # .env alone in its folder: a temporary file left beside it shows
    folder.mkdir()
    env = folder / ".env"
    env.write_bytes(f"# the engine\nDATABASE_URL={mysql_url}\nLOG_LEVEL=info\n".encode())
    before = env.read_bytes()
    switched = before.replace(f"DATABASE_URL={mysql_url}\n".encode(),
                              f'DATABASE_URL="{pg_url.replace("postgresql://", "postgresql+asyncpg://", 1)}"\n'.encode())
    state = engine_db.parent / ".wizard"
    move = ["migrate", "--source", mysql_url, "--target", pg_url, "--state-dir", str(state), "--yes",
            "--env-file", str(env)]
    # os.chmod's calls in the move off MySQL: the dump's temporary file, then the switch's write_atomically.
    wizard_killed_at("os:chmod:2", *move)
    began, finished = _journal_steps(state)
    assert began[-1] == "switch" and "switch" not in finished
    strays = sorted(p.name for p in folder.iterdir() if p.name != ".env")
    assert env.read_bytes() == before and len(strays) == 1 and (folder / strays[0]).read_bytes() == switched
    back = wizard("rollback", "--last", "--yes", "--state-dir", str(state))
    assert back.returncode == 0, back.stderr[-3000:]
    assert env.read_bytes() == before and [p.name for p in folder.iterdir()] == [".env"]
    assert fetch(pg_url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'") == []
    assert _state(mysql_url) == before_source  # the source was never written
    survived(fault="kill -9 of `wizard migrate` off MariaDB while `.env` is rewritten, between the temporary file "
                   "written and the rename, then `wizard rollback`",
             did="`.env` byte-identical to before, the switched file beside it under a temporary name; the rollback "
                 "removed it, kept `.env` as it was and dropped the PostgreSQL tables; the source's CHECKSUMs as "
                 "before", rows_lost=0)


# --- the scratch databases a kill -9 leaves on the server (wizard_proof_<run>_<hex>) -----------------------------


@contextlib.contextmanager
def _lookalikes(server_url: str, state: Path) -> Iterator[list[str]]:
    """Two databases named as a scratch database is but no run of the test's state directory made: one with no run
    in its name, one naming a run that is not there; dropped after, with any its runs left (a failing test's)."""
    names = ["wizard_proof_myfix_" + uuid.uuid4().hex[:12], "wizard_proof_20990101_000000_abcdef_" + uuid.uuid4().hex[:12]]
    for name in names:
        admin(server_url, f"CREATE DATABASE `{name}`")
    try:
        yield names
    finally:
        for run in (state / "runs").glob("*"):
            names += [name for (name,) in _scratch_of(server_url, run)]
        for name in names:
            admin(server_url, f"DROP DATABASE IF EXISTS `{name}`")


def _scratch_of(url: str, run: Path) -> list[tuple]:
    return read(url, "SHOW DATABASES LIKE 'wizard\\_proof\\_" + run.name.replace("-", "\\_") + "\\_%'")


def test_kill_in_the_verifications_scratch_database_then_rollback_drops_it(small_source: Path, mysql_url: str,
                                                                          tmp_path: Path, survived) -> None:
    state = tmp_path / "state"
    args = _onto(small_source, mysql_url, state)
    with _lookalikes(mysql_url, state) as lookalikes:
        # schema.upgrade's calls: the schema step, then the verification's expected schema, built in a scratch
        # database made just before: killed there, the scratch database stays on the server.
        wizard_killed_at("wizard.schema:upgrade:2", *args)
        began, finished = _journal_steps(state)
        assert began[-1] == "verify" and "verify" not in finished
        (run,) = (state / "runs").iterdir()
        (left,) = _scratch_of(mysql_url, run)
        back = _resume_or_roll_back("rollback", args, state)
        assert _scratch_of(mysql_url, run) == []
        said = [line for line in back.stderr.splitlines() if left[0] in line]
        assert len(said) == 1 and f"run {run.name}" in said[0], back.stderr[-2000:]
        assert read(mysql_url, "SHOW TABLES") == []
        for name in lookalikes:  # not the wizard's to drop
            assert read(mysql_url, f"SHOW DATABASES LIKE '{name}'") == [(name,)]
    survived(fault="kill -9 of `wizard migrate` onto MariaDB while the verification builds its expected schema in a "
                   "scratch database, then `wizard rollback`",
             did="the scratch database, named after the run, was left on the server; the rollback dropped it and said "
                 "so in one line, then dropped the target's tables; two databases named alike that no run of the "
                 "state directory made (no run id, an unknown run id) were left as they were", rows_lost=0)


def test_kill_in_the_proof_of_a_mysql_backup_then_the_next_run_drops_its_scratch_database(
        mysql_url: str, engine_db: Path, survived) -> None:
    build_1_0_0(mysql_url, engine_db)
    state = engine_db.parent / ".wizard"
    with _lookalikes(mysql_url, state) as lookalikes:
        # The dump written; its proof's scratch database made, the restore into it not yet run.
        wizard_killed_at("wizard.mysql.dump:load:1", "backup", "--source", mysql_url, "--state-dir", str(state))
        (killed,) = (state / "runs").iterdir()
        (left,) = _scratch_of(mysql_url, killed)
        again = wizard("backup", "--source", mysql_url, "--state-dir", str(state))  # a run of its own
        assert again.returncode == 0, again.stderr[-3000:]
        assert len(list((state / "runs").iterdir())) == 2
        assert _scratch_of(mysql_url, killed) == []
        said = [line for line in again.stderr.splitlines() if left[0] in line]
        assert len(said) == 1 and f"run {killed.name}" in said[0], again.stderr[-2000:]
        for name in lookalikes:
            assert read(mysql_url, f"SHOW DATABASES LIKE '{name}'") == [(name,)]
    survived(fault="kill -9 of `wizard backup` of MariaDB in the proof of its dump (the scratch database made, "
                   "nothing restored into it), then another `wizard backup` with the same state directory",
             did="the new run found the scratch database named after the killed run (its journal in the state "
                 "directory, its process gone), dropped it and said so in one line, then took and proved its own "
                 "backup; two databases named alike that no run of the state directory made were left as they were",
             rows_lost=0)


@pytest.mark.parametrize("recovery", ["resume", "rollback"])
def test_kill_inside_a_revision_of_a_moves_upgrade_onto_mysql(recovery: str, small_source: Path, mysql_url: str,
                                                              tmp_path: Path, survived) -> None:
    state = tmp_path / "state"
    args = _onto(small_source, mysql_url, state, "--to", "head")
    # alembic's op.execute: called by 0002 only, first where the checks build each revision's expected shape in
    # memory, then where the verification reads the history's MySQL types (offline, wizard.schema.mysql_types),
    # then in --to's upgrade after 0002's ALTER TABLE (committed by MySQL as it ran), before its UPDATE that
    # gives every workflow tags = '[]': half a revision on the server, alembic_version still 0001.
    wizard_killed_at("alembic.op:execute:3", *args)
    began, finished = _journal_steps(state)
    assert began[-1] == "upgrade" and "upgrade" not in finished
    assert read(mysql_url, "SELECT version_num FROM alembic_version") == [("0001",)]
    assert read(mysql_url, "SHOW COLUMNS FROM workflows LIKE 'tags'") != []
    assert read(mysql_url, "SELECT COUNT(*) FROM workflows WHERE tags IS NULL") == [(20,)]
    done = _resume_or_roll_back(recovery, args, state)
    if recovery == "resume":
        assert read(mysql_url, "SELECT version_num FROM alembic_version") == [(head(),)]
        assert read(mysql_url, "SELECT COUNT(*) FROM workflows WHERE tags IS NULL OR tags <> '[]'") == [(0,)]
        for table, n in source_counts(small_source).items():
            assert read(mysql_url, f"SELECT COUNT(*), COUNT(DISTINCT id) FROM {table}") == [(n, n)], table
        assert "revision 0002 was cut in the middle" in done.stderr
        outcome = (f"`wizard migrate --resume` said it found revision 0002 cut in the middle, undid it, applied "
                   f"0002 again and the rest: {head()}, every workflow's tags [], every row once")
    else:
        assert read(mysql_url, "SHOW TABLES") == []
        outcome = "`wizard rollback` dropped every table: the target empty, as before the run"
    assert "Traceback" not in done.stderr
    survived(fault="kill -9 of `wizard migrate --to head` onto MariaDB inside revision 0002 (its ALTER TABLE "
                   "committed by MySQL, its UPDATE not run, alembic_version still 0001), then "
                   f"`wizard {'migrate --resume' if recovery == 'resume' else 'rollback'}`",
             did=outcome, rows_lost=0)


def test_kill_inside_a_revision_of_an_upgrade_on_mysql_then_rollback(mysql_url: str, engine_db: Path,
                                                                     survived) -> None:
    build_1_0_0(mysql_url, engine_db)
    before = _state(mysql_url)
    state = str(engine_db.parent / ".wizard")
    # op.execute: the checks' in-memory shapes first, then 0002 on the server after its committed ALTER TABLE.
    wizard_killed_at("alembic.op:execute:2", "upgrade", "--db", mysql_url, "--yes", "--state-dir", state)
    assert read(mysql_url, "SELECT version_num FROM alembic_version") == [("0001",)]
    assert read(mysql_url, "SHOW COLUMNS FROM workflows LIKE 'tags'") != []  # half of 0002 is in
    back = wizard("rollback", "--last", "--yes", "--state-dir", state)
    assert back.returncode == 0, back.stderr[-3000:]
    assert _state(mysql_url) == before
    survived(fault="kill -9 of `wizard upgrade` on MariaDB inside revision 0002 (its ALTER TABLE committed by MySQL, "
                   "its UPDATE not run, alembic_version at the baseline), then `wizard rollback`",
             did="the revision's undo was journaled before it began; the rollback restored the proven mysqldump: "
                 "1.0.0 again, no alembic_version, no tags column, every table's CHECKSUM as before the run",
             rows_lost=0)
