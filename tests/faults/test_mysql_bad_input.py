"""Bad input on MySQL/MariaDB through the real `wizard`: a wrong password, a database that does not exist.

As tests/faults/test_bad_input.py does for PostgreSQL: exit 2, one line that says what to do, no traceback,
and nothing changed (every file of the working folder, and the tables and rows of the database). And the
right password, one an option file must quote, takes a backup that shows it nowhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy.engine import make_url

from engine_data import build_1_0_0, read
from mysql_server import admin
from test_bad_input import error_line, files, run_all, silent_server
from wizard.mysql.dump import SCRATCH
from wizard.urls import parse_url

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
    """Every command that takes a MySQL database: plan, backup, upgrade."""
    return [["plan", "--source", url], ["backup", "--source", url], ["upgrade", "--db", url, "--yes"]]


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
        says = (f"{url}: user 'wizard_no_such_user' was refused without a password: give its password in the URL, "
                "or check the user")
    said = expect(engine_db.parent, engine_mysql, commands_on(url), says)
    survived(input=f"MySQL/MariaDB: {'a closed local port' if case == 'closed port' else 'a user it does not know'}"
                   " (plan, backup, upgrade)", exit_code=2, message=said,
             changed=NOTHING)


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
