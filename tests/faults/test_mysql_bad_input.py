"""Bad input on MySQL/MariaDB through the real `wizard`: a wrong password, a database that does not exist.

As tests/faults/test_bad_input.py does for PostgreSQL: exit 2, one line that says what to do, no traceback,
and nothing changed (every file of the working folder, and the tables and rows of the database). And the
right password, one an option file must quote, takes a backup that shows it nowhere.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy.engine import make_url

from engine_data import build_1_0_0, read
from fault_support import wizard, wizard_killed_at
from move_helpers import fetch
from mysql_server import admin
from test_bad_input import error_line, files, run_all, silent_server
from wizard.mysql.scratch import SCRATCH
from wizard.urls import parse_url

pytestmark = pytest.mark.slow  # a wizard process per case on a MariaDB server: `pytest -m slow` runs them

DATABASE = "wizard_faults_mysql"  # a fixed name: it shows in the message README records
NOTHING = "nothing (the folder's files, the database's tables and rows checked)"
USER, PASSWORD = "wizard_faults_pw", "r#ght \"pw\\"  # a comment sign, a quote, a blank and a backslash


def _state(folder: Path, url: str) -> tuple[dict[str, str], list[tuple], list[tuple]]:
    return (files(folder), read(url, "SHOW TABLES"),
            read(url, "CHECKSUM TABLE users, workflows, executions, settings"))  # every row's digest, per table


@pytest.fixture
def engine_mysql(mysql_server: str, engine_db: Path) -> Iterator[str]:
    """A 1.0.0 engine database under a fixed name, and a user of its own who logs in with PASSWORD."""
    admin(mysql_server, f"DROP DATABASE IF EXISTS {DATABASE}")
    admin(mysql_server, f"CREATE DATABASE {DATABASE} CHARACTER SET utf8mb4")
    admin(mysql_server, f"DROP USER IF EXISTS '{USER}'@'%'")
    admin(mysql_server, f"CREATE USER '{USER}'@'%' IDENTIFIED BY '{PASSWORD.replace(chr(92), chr(92) * 2)}'")
    admin(mysql_server, f"GRANT ALL ON {DATABASE}.* TO '{USER}'@'%'")
    admin(mysql_server, f"GRANT ALL ON `{SCRATCH}%`.* TO '{USER}'@'%'")  # the backup's proof
    url = make_url(mysql_server).set(database=DATABASE).render_as_string(hide_password=False)
    try:
        yield build_1_0_0(url, engine_db)
    finally:
        admin(mysql_server, f"DROP USER IF EXISTS '{USER}'@'%'")
        admin(mysql_server, f"DROP DATABASE IF EXISTS {DATABASE}")


def commands_on(url: str) -> list[list[str]]:
    """Every command that takes a MySQL database: plan, backup, upgrade, verify (against the folder's engine.db:
    one database as both sides is refused before either is reached)."""
    return [["plan", "--source", url], ["backup", "--source", url], ["upgrade", "--db", url, "--yes"],
            ["verify", "--source", "sqlite:///engine.db", "--target", url]]


def expect(folder: Path, watch: str, commands: list[list[str]], says: str) -> str:
    """Each command exits 2 with `says` alone on stderr, and nothing changed; the line, for README."""
    before = _state(folder, watch)
    for command, (result, _) in zip(commands, run_all(folder, *commands)):  # a hang fails run_all's timeout
        said = error_line(result, 2)
        assert said == says, f"`wizard {' '.join(command)}` said:\n{said}\nexpected:\n{says}"
    assert _state(folder, watch) == before  # not even a state directory: no run began
    return says


def test_a_wrong_password_on_mysql(engine_mysql: str, engine_db: Path, survived) -> None:
    as_user = make_url(engine_mysql).set(username=USER)
    right = as_user.set(password=PASSWORD).render_as_string(hide_password=False)
    ((ok, _),) = run_all(engine_db.parent, ["plan", "--source", right])  # the server checks: the right one gets in
    assert ok.returncode == 0 and "1.0.0, no revision recorded" in ok.stdout, ok.stderr
    wrong = as_user.set(password="wrong-password").render_as_string(hide_password=False)
    says = f"{parse_url(wrong).masked()}: the password was refused: check the user and password in the URL"
    said = expect(engine_db.parent, engine_mysql, commands_on(wrong), says)
    survived(input="MySQL/MariaDB: a wrong password (plan, backup, upgrade)", exit_code=2, message=said,
             changed=NOTHING)


def test_a_mysql_database_that_does_not_exist(engine_mysql: str, engine_db: Path, survived) -> None:
    missing = make_url(engine_mysql).set(database="wizard_no_such_db").render_as_string(hide_password=False)
    says = (f"{parse_url(missing).masked()}: database 'wizard_no_such_db' does not exist: create it "
            "(CREATE DATABASE wizard_no_such_db) or fix the URL")
    said = expect(engine_db.parent, engine_mysql, commands_on(missing), says)
    survived(input="MySQL/MariaDB: a database that does not exist (plan, backup, upgrade)", exit_code=2, message=said,
             changed=NOTHING)


@pytest.mark.parametrize("case", ["closed port", "unknown user"])
def test_a_mysql_server_that_is_not_there_or_a_user_it_does_not_know(engine_mysql: str, engine_db: Path, survived,
                                                                     case: str) -> None:
    if case == "closed port":
        url = make_url(engine_mysql).set(host="127.0.0.1", port=1).render_as_string(hide_password=False)
        says = f"{url}: no server answers there: check host and port, and that MySQL or MariaDB is running"
    else:
        url = make_url(engine_mysql).set(username="wizard_no_such_user").render_as_string(hide_password=False)
        says = (f"{url}: user 'wizard_no_such_user' was refused without a password: give its password in the URL "
                "or MYSQL_PWD, or check the user")
    said = expect(engine_db.parent, engine_mysql, commands_on(url), says)
    survived(input=f"MySQL/MariaDB: {'a closed local port' if case == 'closed port' else 'a user it does not know'}"
                   " (plan, backup, upgrade)", exit_code=2, message=said,
             changed=NOTHING)


@pytest.mark.slow  # over 12 s: run by `pytest -m slow`
def test_a_mysql_host_that_does_not_answer_times_out_in_seconds(engine_mysql: str, engine_db: Path,
                                                                 survived) -> None:
    with silent_server(3306) as (host, port):
        url = f"mysql://root@{host}:{port}/engine"
        says = f"{url}: the server did not answer in 10 s: check host, port and firewall"
        # Both at once, each waiting its 10 s (without the wizard's own bound, aiomysql waits for ever).
        said = expect(engine_db.parent, engine_mysql, commands_on(url), says)
    survived(input="MySQL/MariaDB: a host that does not answer (accepts TCP, never speaks; plan, backup, upgrade)",
             exit_code=2, message=said, changed=NOTHING)


def test_the_password_reaches_mysqldump_and_shows_nowhere(engine_mysql: str, engine_db: Path) -> None:
    right = make_url(engine_mysql).set(username=USER, password=PASSWORD).render_as_string(hide_password=False)
    ((done, _),) = run_all(engine_db.parent, ["backup", "--source", right, "--json"])
    assert done.returncode == 0, done.stderr
    made = [p for p in (engine_db.parent / ".wizard").rglob("*") if p.is_file()]
    assert any(p.suffix == ".sql" for p in made)
    for text in [done.stdout, done.stderr, *(p.read_bytes().decode("utf-8", "replace") for p in made)]:
        assert PASSWORD not in text and "r#ght" not in text


# --- a move's target or source on MySQL --------------------------------------------------------------------------


def _wrong(url: str, case: str) -> str:
    """`url` with a password the server refuses, or naming a database that is not there."""
    u = make_url(url)
    u = u.set(username=USER, password="wrong-password") if case == "wrong password" else \
        u.set(database="wizard_no_such_db")
    return u.render_as_string(hide_password=False)


def _said(url: str, case: str) -> str:
    if case == "wrong password":
        return f"{parse_url(url).masked()}: the password was refused: check the user and password in the URL"
    return (f"{parse_url(url).masked()}: database 'wizard_no_such_db' does not exist: create it "
            "(CREATE DATABASE wizard_no_such_db) or fix the URL")


@pytest.mark.parametrize("case", ["wrong password", "missing database"])
def test_a_moves_mysql_target_with_a_wrong_password_or_no_database(case: str, engine_mysql: str, engine_db: Path,
                                                                    survived) -> None:
    target = _wrong(engine_mysql, case)
    move = ["migrate", "--source", f"sqlite:///{engine_db}", "--target", target, "--yes"]
    said = expect(engine_db.parent, engine_mysql, [move, ["plan", "--source", f"sqlite:///{engine_db}", "--target",
                                                          target]], _said(target, case))
    survived(input=f"MySQL/MariaDB as a move's target: {'a wrong password' if case == 'wrong password' else 'a database that does not exist'} (migrate, plan)",
             exit_code=2, message=said, changed=NOTHING)


@pytest.mark.parametrize("case", ["wrong password", "missing database"])
def test_a_moves_mysql_source_with_a_wrong_password_or_no_database(case: str, engine_mysql: str, engine_db: Path,
                                                                    pg_url: str, survived) -> None:
    source = _wrong(engine_mysql, case)
    said = expect(engine_db.parent, engine_mysql, [["migrate", "--source", source, "--target", pg_url, "--yes"]],
                  _said(source, case))
    assert fetch(pg_url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'") == []
    survived(input=f"MySQL/MariaDB as a move's source: {'a wrong password' if case == 'wrong password' else 'a database that does not exist'} (migrate to PostgreSQL)",
             exit_code=2, message=said, changed="nothing (the folder's files, both databases' tables and rows checked)")


@pytest.fixture(params=["latin1", "utf8mb3"])
def narrow_target(request: pytest.FixtureRequest, mysql_server: str) -> Iterator[tuple[str, str]]:
    """An empty database under a fixed name whose default character set loses characters: (charset, URL)."""
    name = f"wizard_faults_{request.param}"
    admin(mysql_server, f"DROP DATABASE IF EXISTS {name}")
    admin(mysql_server, f"CREATE DATABASE {name} CHARACTER SET {request.param}")
    try:
        yield request.param, make_url(mysql_server).set(database=name).render_as_string(hide_password=False)
    finally:
        admin(mysql_server, f"DROP DATABASE IF EXISTS {name}")


def test_a_mysql_target_whose_charset_loses_characters(narrow_target: tuple[str, str], engine_db: Path,
                                                       survived) -> None:
    charset, target = narrow_target
    name = make_url(target).database
    before = files(engine_db.parent)
    ((result, _),) = run_all(engine_db.parent, ["migrate", "--source", f"sqlite:///{engine_db}", "--target", target,
                                                "--yes"])
    said = error_line(result, 2)
    collation = read(target, "SELECT default_collation_name FROM information_schema.schemata "
                             "WHERE schema_name = DATABASE()")[0][0]
    assert said == (f"{target}: database {name} defaults to character set {charset} (collation {collation}), "
                    f"which loses every character outside it: ALTER DATABASE {name} CHARACTER SET utf8mb4 COLLATE "
                    f"utf8mb4_unicode_ci, or move to a utf8mb4 database"), said
    assert read(target, "SHOW TABLES") == [] and files(engine_db.parent) == before
    survived(input=f"MySQL/MariaDB as a move's target: a database whose default character set is {charset} "
                   "(loses characters outside it)", exit_code=2, message=said,
             changed="nothing (the folder's files, the target's tables checked)")


def test_a_kill_while_mysqldump_runs_leaves_the_password_nowhere(engine_mysql: str, engine_db: Path,
                                                                 survived) -> None:
    """kill -9 of `wizard backup` as it starts mysqldump, its options (the password) handed over: no file anywhere
    (the working folder, the state directory, the temporary folder) holds the password afterwards."""
    right = make_url(engine_mysql).set(username=USER, password=PASSWORD).render_as_string(hide_password=False)
    temp = Path(tempfile.gettempdir())
    before = set(temp.iterdir())
    wizard_killed_at("wizard.mysql.dump:tool_run:1", "backup", "--source", right,
                     "--state-dir", str(engine_db.parent / ".wizard"))
    places = [engine_db.parent, *(set(temp.iterdir()) - before)]  # new in the temporary folder since the start
    left = [f for place in places for f in ([place] if place.is_file() else place.rglob("*")) if f.is_file()]
    assert any(p.name.endswith(".sql.wizard-tmp") for p in left)  # the kill landed with the dump begun
    holding = [str(p) for p in left if PASSWORD.encode() in p.read_bytes() or b"r#ght" in p.read_bytes()]
    assert holding == []
    survived(fault="kill -9 of `wizard backup` on MariaDB as mysqldump starts, its options (the password) handed "
                   "over",
             did="no file holds the password afterwards: the clients read their options from a pipe "
                 "(`--defaults-extra-file=/dev/fd/N`), not from an option file a kill would leave behind",
             rows_lost=0)


@pytest.mark.slow
def test_a_kill_in_the_wizards_own_dump_leaves_no_password_then_the_resume_no_file_or_scratch_database(
        engine_mysql: str, engine_db: Path, pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        survived) -> None:
    """mysqldump and mysql not installed (WIZARD_MYSQL_BIN an empty folder): kill -9 of `wizard migrate` off MariaDB
    mid-way through the wizard's own dump (at its third INSERT line: executions' and settings' rows, users' next), then
    --resume."""
    empty = tmp_path / "no-clients"
    empty.mkdir()
    monkeypatch.setenv("WIZARD_MYSQL_BIN", str(empty))  # the `wizard` processes inherit it
    right = make_url(engine_mysql).set(username=USER, password=PASSWORD).render_as_string(hide_password=False)
    state = engine_db.parent / ".wizard"
    move = ["migrate", "--source", right, "--target", pg_url, "--state-dir", str(state), "--yes"]
    before = _state(engine_db.parent, engine_mysql)[1:]
    temp = Path(tempfile.gettempdir())
    made_before = set(temp.iterdir())
    wizard_killed_at("wizard.mysql.stream_dump:_insert:3", *move)
    (run,) = (state / "runs").iterdir()
    (partial,) = run.glob("*.sql.wizard-tmp")
    assert b"INSERT INTO `executions`" in partial.read_bytes() and b"-- Dump completed" not in partial.read_bytes()
    scratch = "SHOW DATABASES LIKE 'wizard\\_proof\\_" + run.name.replace("-", "\\_") + "\\_%'"
    assert read(engine_mysql, scratch) == []  # killed before its proof began
    resumed = wizard(*move, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "the backup is the wizard's own dump" in resumed.stderr
    assert list(run.glob("*wizard-tmp*")) == [] and len(list(run.glob("*.sql"))) == 1
    assert read(engine_mysql, scratch) == []
    places = [engine_db.parent, *(set(temp.iterdir()) - made_before)]
    left = [f for place in places for f in ([place] if place.is_file() else place.rglob("*")) if f.is_file()]
    assert [str(p) for p in left if PASSWORD.encode() in p.read_bytes() or b"r#ght" in p.read_bytes()] == []
    assert _state(engine_db.parent, engine_mysql)[1:] == before  # the source was never written
    survived(fault="kill -9 of `wizard migrate` off MariaDB with mysqldump and mysql not installed, mid-way through "
                   "the wizard's own dump (two tables' rows written), then `wizard migrate --resume`",
             did="the dump's temporary file, cut short (no '-- Dump completed'), held no password, and no scratch "
                 "database was made; the resume wrote and proved the dump again over the temporary name (none left) "
                 "and moved; the source's CHECKSUMs as before, no file holds the password", rows_lost=0)
