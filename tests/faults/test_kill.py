"""kill -9 of a real `wizard migrate` (and of `wizard rollback`) at exact points, then the recovery an
operator runs; every test ends by counting, row by row, what the source has that the target does not.

Each kill lands at a named function call (kill_at.py), and each test first checks that it landed where
it says (a temp file there, a checkpoint at that count, an index missing), so a kill point that drifts
fails the test instead of quietly testing something else.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from fault_support import rows_lost, source_counts, wizard, wizard_killed_at
from move_helpers import checksums, fetch, sha256, tables_in
from wizard import sample
from wizard.journal import FINISHED, INTERRUPTED, ROLLED_BACK, RUNNING, load_run

pytestmark = pytest.mark.slow  # real processes and large sources: `pytest -m slow` runs them

CHUNK = 10_000  # wizard.move.copy.CHUNK_ROWS: what `wizard migrate` commits at a time
USERS, WORKFLOWS, EXECUTIONS = 11_000, 200, 25_000  # users: 2 chunks, executions: 3
DIRTY_EXECUTIONS = 30_000  # + 10 dirty rows with ids from 900001: 4 chunks, the last one holds the quarantined
OPENAI_KEY = "sk-kill-test-0123456789abcdef"
TMP = "wizard-tmp"  # what every temporary name the wizard writes contains


# --- sources, built once -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clean_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sample.build(tmp_path_factory.mktemp("clean") / "engine.db", executions=EXECUTIONS, workflows=WORKFLOWS,
                        users=USERS)


@pytest.fixture(scope="module")
def dirty_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sample.build_dirty(tmp_path_factory.mktemp("dirty") / "engine.db", executions=DIRTY_EXECUTIONS)


@pytest.fixture(scope="module")
def small_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """For the .env and rollback faults, where the rows' number does not matter."""
    return sample.build(tmp_path_factory.mktemp("small") / "engine.db", executions=2_000, workflows=20, users=5)


def _new_database(server: str, name: str) -> str:
    fetch(server, f'CREATE DATABASE "{name}"')
    return make_url(server).set(drivername="postgresql", database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def dirty_reference(dirty_db: Path, pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """What an uninterrupted move of dirty_db gives: every table's checksum, the sequences, the quarantine."""
    name = f"wizard_test_{uuid.uuid4().hex[:12]}"
    url = _new_database(pg_server, name)
    try:
        state = tmp_path_factory.mktemp("ref-state")
        done = wizard(*_migrate(dirty_db, url, state, "--on-orphans", "quarantine"))
        assert done.returncode == 0, done.stderr[-3000:]
        return {"sums": checksums(url), "seq": _next_values(url), "quarantine": _quarantine(load_run(state).folder)}
    finally:
        fetch(pg_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- helpers ---------------------------------------------------------------------------------------


def _migrate(source: Path, url: str, state: Path, *extra: str) -> list[str]:
    return ["migrate", "--source", f"sqlite:///{source}", "--target", url, "--state-dir", str(state), "--yes", *extra]


def _no_traceback(*procs) -> None:
    for p in procs:
        assert "Traceback" not in p.stderr, p.stderr[-3000:]


def _strays(folder: Path) -> list[str]:
    """Temporary files the wizard left anywhere under `folder`."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob(f"*{TMP}*"))


def _checkpoint(url: str, table: str) -> tuple[int, int, bool] | None:
    rows = fetch(url, "SELECT rows_copied, quarantine_bytes, done FROM wizard_copy_checkpoint WHERE table_name = $1",
                 table)
    return tuple(rows[0]) if rows else None


def _target_count(url: str, table: str) -> int:
    return fetch(url, f'SELECT count(*) FROM "{table}"')[0][0]


def _next_values(url: str) -> dict[str, int]:
    """nextval of every sequence in the target (it takes one: call it last)."""
    names = [r[0] for r in fetch(url, "SELECT sequencename FROM pg_sequences WHERE schemaname = 'public' ORDER BY 1")]
    return {n: fetch(url, "SELECT nextval($1)", f"public.{n}")[0][0] for n in names}


def _quarantine(run_folder: Path) -> dict[str, list[str]]:
    return {p.name: sorted(p.read_text().splitlines()) for p in sorted((run_folder / "quarantine").glob("*.jsonl"))}


def _kinds(state: Path) -> list[str]:
    return [r["kind"] for r in load_run(state).records()]


def _after_kill(state: Path) -> str:
    """The journal of a killed run: no last record, its process gone."""
    run = load_run(state)
    assert run.state() == RUNNING  # what the records alone say: started, never finished
    summary = run.summary()
    assert summary["state"] == INTERRUPTED, summary  # `wizard status`: its process is gone
    return summary["state"]


def _resumed(source: Path, url: str, state: Path, *extra: str):
    resumed = wizard(*_migrate(source, url, state, *extra, "--resume"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    run = load_run(state)
    assert run.state() == FINISHED
    assert _kinds(state).count("run_resumed") == 1
    return resumed


def _source_rows_lost(path: Path, counts: dict[str, int]) -> int:
    """After a rollback there is no target to compare: the rows the source had before and has no longer."""
    now = source_counts(path)
    return sum(max(0, n - now.get(t, 0)) for t, n in counts.items())


def _report_copied(state: Path) -> dict[str, int]:
    report = json.loads((load_run(state).folder / "report.json").read_text())
    return {t["table"]: t["copied"] for t in report["tables"]}


# --- 1. the backup -------------------------------------------------------------------------------


@pytest.mark.parametrize("spec, where", [
    ("wizard.backup:_copy_bytes:1", "with its read lock held and the temporary copy made, before the first page"),
    ("wizard.backup:_check_sqlite_copy:1", "every page copied, the copy not yet proven (integrity_check)"),
], ids=["before-first-page", "before-integrity-check"])
def test_kill_during_the_backup_then_resume(spec: str, where: str, clean_db: Path, pg_url: str, tmp_path: Path,
                                            survived) -> None:
    before = sha256(clean_db)
    state = tmp_path / "state"
    killed = wizard_killed_at(spec, *_migrate(clean_db, pg_url, state))
    journal = _after_kill(state)
    folder = load_run(state).folder
    left = _strays(folder)
    assert left == [f".{clean_db.name}.backup.{TMP}"]  # the kill landed mid-backup: the temporary copy is there
    assert not (folder / f"{clean_db.name}.backup").exists()
    assert "backup" not in {r["step"] for r in load_run(state).finished_steps()}

    resumed = _resumed(clean_db, pg_url, state)
    _no_traceback(killed, resumed)
    assert _strays(folder) == []
    backup = [r for r in load_run(state).finished_steps() if r["step"] == "backup"][-1]["backup"]
    assert Path(backup["path"]) == folder / f"{clean_db.name}.backup"
    assert sha256(Path(backup["path"])) == backup["sha256"]  # the backup the journal proves is the one on disk
    lost = rows_lost(clean_db, pg_url, folder)
    assert lost == 0
    assert sha256(clean_db) == before
    survived(fault=f"kill -9 during the backup of the source, {where}",
             did=f"exit {killed.returncode}, {', '.join(left)} left in the run folder; journal: {journal} (backup "
                 f"started, not finished); `wizard migrate --resume` exit {resumed.returncode}: took the backup again "
                 f"over the temporary name ({len(_strays(folder))} temporary files left), then the whole move; "
                 f"verify: equal; source sha256 unchanged",
             rows_lost=lost)


# --- 2. the first table --------------------------------------------------------------------------


def test_kill_in_the_first_table_after_its_first_chunk_then_resume(clean_db: Path, pg_url: str, tmp_path: Path,
                                                                   survived) -> None:
    before = sha256(clean_db)
    counts = source_counts(clean_db)
    state = tmp_path / "state"
    # --jobs 1: users is copied first, alone; the 2nd checkpoint write is inside its 2nd chunk's transaction.
    killed = wizard_killed_at("wizard.move.copy:_save:2", *_migrate(clean_db, pg_url, state, "--jobs", "1"))
    journal = _after_kill(state)
    assert _checkpoint(pg_url, "users") == (CHUNK, 0, False)
    assert _target_count(pg_url, "users") == CHUNK  # the 2nd chunk's rows went with its transaction
    assert [_target_count(pg_url, t) for t in ("workflows", "executions")] == [0, 0]

    resumed = _resumed(clean_db, pg_url, state)
    _no_traceback(killed, resumed)
    for table, n in counts.items():
        assert fetch(pg_url, f'SELECT count(*), count(DISTINCT id) FROM "{table}"')[0][:] == (n, n), table
    assert _report_copied(state) == counts  # every row counted once, the killed run's chunk included
    lost = rows_lost(clean_db, pg_url, load_run(state).folder)
    assert lost == 0
    assert sha256(clean_db) == before
    survived(fault="kill -9 in the first table copied (users), its 2nd chunk in flight after the 1st committed",
             did=f"exit {killed.returncode}; journal: {journal}; checkpoint: users {CHUNK:,} rows, as in the target; "
                 f"`wizard migrate --resume` exit {resumed.returncode} carried on after the checkpoint; "
                 f"users {counts['users']:,} rows, {counts['users']:,} distinct ids; verify: equal",
             rows_lost=lost)


# --- 3. the biggest table ------------------------------------------------------------------------


@pytest.mark.parametrize("save, committed, where", [
    (12, CHUNK, "in the middle of the biggest table (executions): its 2nd of 4 chunks in flight"),
    (14, 3 * CHUNK, "in the last chunk of executions, after its quarantine lines were written and fsynced, "
                    "before its commit"),
], ids=["middle", "last-chunk-with-quarantine"])
def test_kill_in_executions_then_resume_equals_an_uninterrupted_move(save: int, committed: int, where: str,
                                                                     dirty_db: Path, dirty_reference: dict,
                                                                     pg_url: str, tmp_path: Path, survived) -> None:
    before = sha256(dirty_db)
    state = tmp_path / "state"
    # --jobs 1, tables in this order: users, settings, plugin_kv, plugin_pair, workflows (2 checkpoint
    # writes each: a chunk, done), then executions: writes 11 to 14 are its chunks.
    killed = wizard_killed_at(f"wizard.move.copy:_save:{save}",
                              *_migrate(dirty_db, pg_url, state, "--jobs", "1", "--on-orphans", "quarantine"))
    journal = _after_kill(state)
    folder = load_run(state).folder
    copied, held_bytes, done = _checkpoint(pg_url, "executions")
    assert (copied, done) == (committed, False)
    assert _target_count(pg_url, "executions") == committed
    side = folder / "quarantine" / "executions.jsonl"
    written = side.stat().st_size if side.exists() else 0
    if save == 14:
        assert written > held_bytes == 0  # lines of the chunk that never committed are on disk
    resumed = _resumed(dirty_db, pg_url, state)
    _no_traceback(killed, resumed)
    assert checksums(pg_url) == dirty_reference["sums"]
    assert _quarantine(folder) == dirty_reference["quarantine"]  # each quarantined row once, none lost
    lost = rows_lost(dirty_db, pg_url, folder)
    assert lost == 0
    assert _next_values(pg_url) == dirty_reference["seq"]
    assert sha256(dirty_db) == before
    held = sum(len(v) for v in dirty_reference["quarantine"].values())
    survived(fault=f"kill -9 {where}",
             did=f"exit {killed.returncode}; journal: {journal}; checkpoint: executions {committed:,} rows"
                 + (f", quarantine file {written} bytes past the checkpoint's {held_bytes}" if save == 14 else "")
                 + f"; `wizard migrate --resume` exit {resumed.returncode}"
                 + (" cut the quarantine file back and" if save == 14 else "")
                 + f" carried on from the checkpoint; every table's checksum, the quarantine ({held} rows) and the "
                   f"sequences equal an uninterrupted move's; verify: equal",
             rows_lost=lost)


# --- 4. the indexes ------------------------------------------------------------------------------

DEFERRED_INDEXES = {"ix_executions_status", "ix_executions_workflow_id", "ix_workflows_owner_id"}
DEFERRED_FKS = {"executions_workflow_id_fkey", "workflows_owner_id_fkey"}


def _indexes(url: str) -> set[str]:
    return {r[0] for r in fetch(url, "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")}


def _foreign_keys(url: str) -> set[str]:
    return {r[0] for r in fetch(url, "SELECT conname FROM pg_constraint WHERE contype = 'f'")}


def test_kill_while_indexes_are_built_then_resume(clean_db: Path, pg_url: str, tmp_path: Path, survived) -> None:
    before = sha256(clean_db)
    state = tmp_path / "state"
    # Two builders (--jobs 2): the 1st index is being built on one connection when the 2nd starts.
    killed = wizard_killed_at("wizard.move.target_schema:_run_ddl:2", *_migrate(clean_db, pg_url, state))
    journal = _after_kill(state)
    missing = sorted((DEFERRED_INDEXES - _indexes(pg_url)) | (DEFERRED_FKS - _foreign_keys(pg_url)))
    assert len(missing) >= 4, missing  # at most the first index got built
    built = 5 - len(missing)
    assert "copy" in {r["step"] for r in load_run(state).finished_steps()}

    resumed = _resumed(clean_db, pg_url, state)
    _no_traceback(killed, resumed)
    assert DEFERRED_INDEXES <= _indexes(pg_url)
    assert _foreign_keys(pg_url) == DEFERRED_FKS
    lost = rows_lost(clean_db, pg_url, load_run(state).folder)  # its verify fails on a missing index
    assert lost == 0
    assert sha256(clean_db) == before
    survived(fault="kill -9 while the secondary indexes are built: the 1st in flight, the 2nd starting",
             did=f"exit {killed.returncode}; journal: {journal}; {built} of 5 indexes and foreign keys built, "
                 f"{len(missing)} missing; `wizard migrate --resume` exit {resumed.returncode} built those (the copy "
                 f"not redone); "
                 f"verify: equal, schema as its revision (every index and foreign key there)",
             rows_lost=lost)


# --- 5. the .env switch --------------------------------------------------------------------------


def _env_before(source: Path, key: bool) -> bytes:
    return (f"# the engine's settings\nDATABASE_URL=sqlite+aiosqlite:///{source}\n"
            + (f"OPENAI_API_KEY={OPENAI_KEY}\r\n" if key else "") + "LOG_LEVEL=info\nexport WORKERS=4").encode()


def _env_switched(before: bytes, source: Path, url: str) -> bytes:
    target = url.replace("postgresql://", "postgresql+asyncpg://", 1)
    old = f"DATABASE_URL=sqlite+aiosqlite:///{source}\n".encode()
    assert old in before
    return before.replace(old, f'DATABASE_URL="{target}"\n'.encode())


def _env_moved(switched: bytes) -> bytes:
    """The switched .env after the settings step: the key's line, with its line ending, gone."""
    line = f"OPENAI_API_KEY={OPENAI_KEY}\r\n".encode()
    assert line in switched
    return switched.replace(line, b"")


def _an_env(tmp_path: Path, source: Path, key: bool) -> Path:
    folder = tmp_path / "engine"  # the .env alone in its folder: any temporary file left beside it shows
    folder.mkdir()
    env = folder / ".env"
    env.write_bytes(_env_before(source, key))
    return env


ENV_KILLS = [
    # Calls of os.chmod in a move: the backup's temporary file, then write_atomically's for the switch.
    ("os:chmod:2", "between the temporary file written and the rename"),
    # Calls of fsync_path in wizard.envfile: .env's backup, verify.md, verify.json, the .env the switch is about to
    # write kept in the run folder (env.switched), then the switch's rename.
    ("wizard.envfile:fsync_path:7", "after the rename, before the journal recorded the switch"),
]


@pytest.mark.parametrize("spec, where, recovery", [
    (*ENV_KILLS[0], "resume"), (*ENV_KILLS[0], "rollback"),
    # After the rename a resume only switches again (the same code as above): the rollback is the one to prove.
    (*ENV_KILLS[1], "rollback"),
], ids=["before-rename-resume", "before-rename-rollback", "after-rename-rollback"])
def test_kill_while_env_is_rewritten(spec: str, where: str, recovery: str, small_db: Path, pg_url: str,
                                     tmp_path: Path, survived) -> None:
    before_sha = sha256(small_db)
    counts = source_counts(small_db)
    # No OPENAI_API_KEY here: the settings step would then change the target's settings row, which a later
    # `wizard verify --run` (rows_lost) reports as a difference even after an uninterrupted move.
    env = _an_env(tmp_path, small_db, key=False)
    before = env.read_bytes()
    switched = _env_switched(before, small_db, pg_url)
    state = tmp_path / "state"
    killed = wizard_killed_at(spec, *_migrate(small_db, pg_url, state, "--env-file", str(env)))
    journal = _after_kill(state)
    now = env.read_bytes()
    assert now in (before, switched)  # never half-written
    left = _strays(env.parent)
    if spec.startswith("os:chmod"):
        assert now == before and left == [f".{env.name}.{TMP}"]
        assert (env.parent / left[0]).read_bytes() == switched  # the kill landed between write and rename
    else:
        assert now == switched and left == []
    records = load_run(state).records()
    assert [r.get("step") for r in records if r["kind"] == "step_started"][-1] == "switch"
    assert "switch" not in {r["step"] for r in load_run(state).finished_steps()}
    was = "byte-identical to before" if now == before else "the fully switched file"

    if recovery == "resume":
        after = _resumed(small_db, pg_url, state, "--env-file", str(env))
        assert env.read_bytes() == switched
        assert [r["step"] for r in load_run(state).finished_steps()].count("switch") == 1
        lost = rows_lost(small_db, pg_url, load_run(state).folder)
        outcome = "`.env` the fully switched file; verify: equal"
    else:
        run_id = load_run(state).id
        after = wizard("rollback", "--run", run_id, "--yes", "--state-dir", str(state), cwd=tmp_path)
        assert after.returncode == 0, after.stderr[-3000:]
        assert load_run(state).state() == ROLLED_BACK
        assert env.read_bytes() == before
        assert tables_in(pg_url) == []
        lost = _source_rows_lost(small_db, counts)
        said = " ".join(after.stdout.split())  # rich wraps lines at 80 columns on a pipe
        restored = "restored" in said and "byte for byte" in said
        outcome = (f"{'restored `.env` from its backup' if restored else 'did not restore `.env`'} (the switch's "
                   f"undo, journalled when it began) and dropped the target's tables; `.env` byte-identical")
    _no_traceback(killed, after)
    assert _strays(env.parent) == []
    assert lost == 0
    assert sha256(small_db) == before_sha
    survived(fault=f"kill -9 while `.env` is rewritten (`--env-file`), {where}",
             did=f"exit {killed.returncode}, `.env` {was}, {len(left)} temporary file(s) beside it; journal: {journal}; "
                 f"`wizard {'migrate --resume' if recovery == 'resume' else 'rollback'}` exit {after.returncode}: "
                 f"{outcome}; no temporary file left",
             rows_lost=lost)


# --- 6. rollback itself --------------------------------------------------------------------------


@pytest.mark.parametrize("spec, where", [
    # Calls in a rollback process: restore_env's write_atomically is the first os.replace, its folder fsync the
    # first fsync_path of wizard.envfile; then the target's tables are dropped.
    ("os:replace:1", "while it restores `.env`: the temporary file written, not yet renamed"),
    ("wizard.envfile:fsync_path:1", "after `.env` was restored, before the journal said so"),
    ("wizard.rollback.undo_move:drop_tables:1", "after `.env` was restored, before the target's tables were dropped"),
], ids=["env-before-rename", "env-after-rename", "before-drop"])
def test_kill_during_rollback_of_a_move_then_rollback_again(spec: str, where: str, small_db: Path, pg_url: str,
                                                            tmp_path: Path, survived) -> None:
    before_sha = sha256(small_db)
    counts = source_counts(small_db)
    env = _an_env(tmp_path, small_db, key=True)
    before = env.read_bytes()
    state = tmp_path / "state"
    moved = wizard(*_migrate(small_db, pg_url, state, "--env-file", str(env)))
    assert moved.returncode == 0, moved.stderr[-3000:]
    after_move = env.read_bytes()
    assert after_move == _env_moved(_env_switched(before, small_db, pg_url))
    made = tables_in(pg_url)
    run_id = load_run(state).id
    rollback = ["rollback", "--run", run_id, "--yes", "--state-dir", str(state)]

    killed = wizard_killed_at(spec, *rollback)
    now = env.read_bytes()
    left = _strays(env.parent)
    if spec.startswith("os:replace"):
        assert now == after_move and left == [f".{env.name}.{TMP}"]
        assert (env.parent / left[0]).read_bytes() == before
    else:
        assert now == before and left == []
    assert tables_in(pg_url) == made  # the drop had not begun
    assert load_run(state).state() == FINISHED  # not rolled back
    done_before = _kinds(state).count("undo_done")

    again = wizard(*rollback, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    _no_traceback(moved, killed, again)
    assert load_run(state).state() == ROLLED_BACK
    assert env.read_bytes() == before
    assert _strays(env.parent) == []
    assert tables_in(pg_url) == []
    assert sha256(small_db) == before_sha
    lost = _source_rows_lost(small_db, counts)
    verified = again.stdout.count("verified")
    survived(fault=f"kill -9 during `wizard rollback` of a finished move with `--env-file`, {where}",
             did=f"exit {killed.returncode}, `.env` {'still switched' if now == after_move else 'restored'}, "
                 f"{len(left)} temporary file(s) beside it, {done_before} of 2 undo steps journalled done; "
                 f"`wizard rollback` again exit {again.returncode}: {verified} step(s) done and verified; `.env` "
                 f"byte-identical, the target's tables dropped, no temporary file left; the source never written",
             rows_lost=lost)


@pytest.mark.parametrize("spec, where", [
    # sha256_file in a rollback process: the backup checked first, then the restored copy beside the file.
    ("wizard.backup:sha256_file:2", "the backup's copy written beside the file, not yet renamed over it"),
    # fsync_path in wizard.backup's publish: the copy, then its folder after the rename.
    ("wizard.backup:fsync_path:2", "the restored file renamed into place, before the journal said so"),
], ids=["before-rename", "after-rename"])
def test_kill_during_rollback_of_an_upgrade_then_rollback_again(spec: str, where: str, small_db: Path,
                                                                tmp_path: Path, survived) -> None:
    folder = tmp_path / "engine"
    folder.mkdir()
    db = folder / "engine.db"
    shutil.copyfile(small_db, db)
    original = sha256(db)
    counts = source_counts(db)
    state = tmp_path / "state"
    upgraded = wizard("upgrade", "--db", f"sqlite:///{db}", "--yes", "--state-dir", str(state))
    assert upgraded.returncode == 0, upgraded.stderr[-3000:]
    assert sha256(db) != original
    run_id = load_run(state).id
    rollback = ["rollback", "--run", run_id, "--yes", "--state-dir", str(state)]

    killed = wizard_killed_at(spec, *rollback)
    left = _strays(folder)
    restored_at_kill = sha256(db) == original
    if spec.endswith("sha256_file:2"):
        assert not restored_at_kill and left == [f".{db.name}.{TMP}"]
    else:
        assert restored_at_kill and left == []
    assert load_run(state).state() == FINISHED  # not rolled back

    again = wizard(*rollback, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    _no_traceback(upgraded, killed, again)
    assert load_run(state).state() == ROLLED_BACK
    assert sha256(db) == original
    assert sorted(p.name for p in folder.iterdir()) == [db.name]  # no temporary copy, no -wal, -shm or -journal
    lost = _source_rows_lost(db, counts)
    survived(fault=f"kill -9 during `wizard rollback` of a `wizard upgrade` of a SQLite file, while the backup is "
                   f"restored: {where}",
             did=f"exit {killed.returncode}, the file {'already' if restored_at_kill else 'not yet'} restored, "
                 f"{len(left)} temporary file(s) beside it; `wizard rollback` again exit {again.returncode}: restored "
                 f"it again, sha256 equal to the original, no temporary file left",
             rows_lost=lost)
