"""The core helpers: URLs, masking, .env rewriting, the journal, the lock, progress throttling."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from wizard import envfile, journal
from wizard.errors import BadInput, Refused
from wizard.events import ProgressMeter
from wizard.lock import StateLock
from wizard.secrets import mask, mask_data
from wizard.urls import parse_url


@pytest.mark.parametrize(
    "text, kind, sync",
    [
        ("sqlite:////tmp/a.db", "sqlite", "sqlite:////tmp/a.db"),
        ("sqlite+aiosqlite:////tmp/a.db", "sqlite", "sqlite:////tmp/a.db"),
        ("postgresql://u:pw@h:5433/db", "postgresql", "postgresql://u:pw@h:5433/db"),
        ("postgresql+asyncpg://u:pw@h/db", "postgresql", "postgresql://u:pw@h/db"),
        ("mysql://u:pw@h:3307/db", "mysql", "mysql+pymysql://u:pw@h:3307/db"),
        ("mysql+asyncmy://u:pw@h/db", "mysql", "mysql+pymysql://u:pw@h/db"),
        ("mysql+aiomysql://u:pw@h/db", "mysql", "mysql+pymysql://u:pw@h/db"),
        ("mariadb://u:pw@h/db", "mysql", "mysql+pymysql://u:pw@h/db"),
    ],
)
def test_both_spellings_parse_to_one_form(text: str, kind: str, sync: str) -> None:
    db = parse_url(text)
    assert db.kind == kind
    assert db.sync_str() == sync
    assert "pw" not in str(db) and "pw" not in db.masked()
    assert db.async_str().split("://")[0] == {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg",
                                             "mysql": "mysql+aiomysql"}[kind]


@pytest.mark.parametrize(
    "text, says",
    [
        ("", "no database URL"),
        ("not a url", "cannot read"),
        ("oracle://u@h/db", "does not move"),
        ("mariadb://u@h", "names no database"),
        ("sqlite://", "names no SQLite file"),
        ("postgresql://u@h", "names no database"),
    ],
)
def test_bad_urls_say_what_to_do(text: str, says: str) -> None:
    with pytest.raises(BadInput) as info:
        parse_url(text)
    assert says in info.value.message
    assert "\n" not in info.value.message


def test_mask_hides_passwords_and_keys_everywhere() -> None:
    text = 'postgresql+asyncpg://app:s3cret@db:5432/x OPENAI_API_KEY=sk-abcdefghijklmnop {"apiKey": "sk-zzzzzzzzzzzz"}'
    masked = mask(text)
    assert "s3cret" not in masked
    assert "abcdefghijklmnop" not in masked
    assert "zzzzzzzzzzzz" not in masked
    assert "app:***@db" in masked
    mysql = mask("mysql+aiomysql://app:s3cret@db:3306/x mariadb://root:t0p@localhost/engine MYSQL_PWD=hunter2")
    assert mysql == "mysql+aiomysql://app:***@db:3306/x mariadb://root:***@localhost/engine MYSQL_PWD=***"
    data = mask_data({"url": "postgresql://a:b@h/d", "hashed_password": "$2b$xyz", "nested": [{"apiKey": "k"}]})
    assert data == {"url": "postgresql://a:***@h/d", "hashed_password": "***", "nested": [{"apiKey": "***"}]}


def test_env_rewrite_keeps_every_other_byte() -> None:
    original = b"# engine\r\nexport DATABASE_URL=sqlite:///./engine.db\r\nOPENAI_API_KEY='sk-1'\r\nDEBUG=1"
    changed = envfile.set_variable(original, "DATABASE_URL", "postgresql+asyncpg://u:p@h/db")
    assert changed == original.replace(b"sqlite:///./engine.db", b'"postgresql+asyncpg://u:p@h/db"')
    assert envfile.value_in(changed, "DATABASE_URL") == "postgresql+asyncpg://u:p@h/db"
    removed = envfile.remove_variable(changed, "OPENAI_API_KEY")
    assert removed == changed.replace(b"OPENAI_API_KEY='sk-1'\r\n", b"")
    appended = envfile.set_variable(b"A=1", "DATABASE_URL", "x")
    assert appended == b'A=1\nDATABASE_URL="x"\n'


def test_switch_preview_shows_the_lines_as_the_file_has_them_and_will_have_them(tmp_path: Path) -> None:
    from wizard.move.switch import preview

    env = tmp_path / ".env"
    env.write_bytes(b"# engine\r\nexport DATABASE_URL='sqlite:///./engine.db'\r\nDEBUG=1\r\n")
    before, after = preview(env, parse_url("postgresql://wizard:s3cret@db:5432/engine"))
    assert before == "export DATABASE_URL='sqlite:///./engine.db'"
    assert after == 'export DATABASE_URL="postgresql+asyncpg://wizard:***@db:5432/engine"'
    assert env.read_bytes() == b"# engine\r\nexport DATABASE_URL='sqlite:///./engine.db'\r\nDEBUG=1\r\n"


def test_write_atomically_keeps_mode_and_bytes(tmp_path: Path) -> None:
    target = tmp_path / ".env"
    target.write_bytes(b"A=1\n")
    target.chmod(0o640)
    envfile.write_atomically(target, b"A=2\n")
    assert target.read_bytes() == b"A=2\n"
    assert target.stat().st_mode & 0o777 == 0o640
    fresh = tmp_path / "backup"
    envfile.write_atomically(fresh, b"x", mode=0o600)
    assert fresh.stat().st_mode & 0o777 == 0o600


def test_journal_records_are_masked_fsynced_lines(tmp_path: Path) -> None:
    run = journal.new_run(tmp_path, "upgrade", db="postgresql://u:hunter2@h/db")
    run.step_started("backup", "back up")
    run.step_finished("backup", undo={"action": "restore_database", "path": "/x"})
    raw = run.journal_path.read_text()
    assert "hunter2" not in raw
    assert [json.loads(line)["kind"] for line in raw.splitlines()] == ["run_started", "step_started", "step_finished"]
    assert run.state() == journal.RUNNING
    assert run.journey == "upgrade"
    run.finish(journal.FINISHED)
    assert journal.load_run(tmp_path, last=True).state() == journal.FINISHED
    assert run.folder.stat().st_mode & 0o777 == 0o700
    with pytest.raises(BadInput):
        journal.load_run(tmp_path, "nope")


def test_torn_last_journal_line_is_ignored(tmp_path: Path) -> None:
    run = journal.new_run(tmp_path, "move")
    with open(run.journal_path, "a") as f:
        f.write('{"ts": "2026-')  # a kill -9 mid-write
    assert [r["kind"] for r in run.records()] == ["run_started"]


def test_second_run_on_the_same_state_dir_is_refused(tmp_path: Path) -> None:
    holder = StateLock(tmp_path).acquire("run-1", "move")
    code = (
        "import sys; from pathlib import Path; from wizard.lock import StateLock; from wizard.errors import Refused\n"
        f"try: StateLock(Path({str(tmp_path)!r})).acquire('run-2', 'upgrade')\n"
        "except Refused as e: print(e.message); sys.exit(3)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 3
    assert "run-1" in result.stdout and str(os.getpid()) in result.stdout
    holder.release()
    StateLock(tmp_path).acquire("run-3", "move").release()
    with StateLock(tmp_path).acquire("run-4", "move"):
        with pytest.raises(Refused):
            StateLock(tmp_path).acquire("run-5", "move")


def test_progress_meter_throttles_to_ten_a_second() -> None:
    now = [0.0]
    events = []
    meter = ProgressMeter(events.append, "copy", "executions", total=1000, clock=lambda: now[0])
    for _ in range(1000):
        now[0] += 0.001  # a row every millisecond: one second in all
        meter.advance()
    meter.finish()
    assert len(events) <= 11
    assert events[-1].done == 1000 and events[-1].eta == 0
    assert events[-1].rate == pytest.approx(1000, rel=0.01)
