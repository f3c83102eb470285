"""What a MySQL target's columns cannot hold (wizard.mysql.limits): the widths and JSON columns read from the
engine's history on MySQL, the depth of JSON measured without recursion, and the scan of a real SQLite file
holding the rows past a limit only when the target is MySQL. The moves themselves: tests/faults/
test_odd_sources_mysql.py."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from wizard import sample
from wizard.move import scan
from wizard.move.target_schema import read_source
from wizard.mysql.limits import JSON_DEPTH, json_depth, limits_of


def test_json_depth_is_counted_not_recursed_and_skips_strings() -> None:
    assert json_depth("1") == json_depth('"[[["') == 0
    assert json_depth('{"a": [1, {"b": "]]]}"}], "c": "\\"[{"}') == 3
    assert json_depth("[" * 100_000 + "]" * 100_000) == 100_000


def test_the_limits_are_the_engines_schema_on_mysql_at_the_revision() -> None:
    at_0001 = limits_of("MariaDB", "0001")
    assert at_0001.widths["users"]["username"] == at_0001.widths["executions"]["status"] == 255
    assert "description" not in at_0001.widths["workflows"] and "error" not in at_0001.widths["executions"]  # LONGTEXT
    assert at_0001.json["executions"] == {"state"} and at_0001.json["workflows"] == {"definition"}
    assert limits_of("MySQL", "0002").json["workflows"] == {"definition", "tags"}
    assert (at_0001.depth, limits_of("MySQL", "0001").depth) == (JSON_DEPTH["MariaDB"], JSON_DEPTH["MySQL"])
    assert JSON_DEPTH == {"MariaDB": 31, "MySQL": 100}
    assert limits_of("MariaDB", None).widths == {}


def test_the_scan_holds_what_mysql_cannot_take_and_nothing_else(tmp_path: Path) -> None:
    path = sample.build(tmp_path / "engine.db", executions=50, workflows=3, users=2)
    conn = sqlite3.connect(path)
    conn.execute("UPDATE executions SET status = ? WHERE id = 1", ("s" * 256,))
    conn.execute("UPDATE executions SET status = ? WHERE id = 2", ("\U0001f680" * 255,))  # 255 characters: fits
    conn.execute("UPDATE executions SET state = ? WHERE id = 3", ("[" * 32 + "]" * 32,))
    conn.execute("UPDATE executions SET state = ? WHERE id = 4", ("[" * 31 + "]" * 31,))  # MariaDB's deepest
    conn.execute("UPDATE executions SET state = ? WHERE id = 5", ("[" * 100_000 + "]" * 100_000,))
    conn.commit()
    conn.close()
    tables, _ = read_source(path)

    def held(limits) -> dict[int, str]:
        result = scan.scan(path, tables, lambda *_: None, limits)
        return {key[0]: q.rule for key, q in result.actions[scan.QUARANTINE]["executions"].quarantine.items()}

    found = held(limits_of("MariaDB", "0001"))
    assert found == {1: "text longer than 255 characters, the most MariaDB's varchar(255) takes",
                     3: "JSON nested deeper than MariaDB takes (31 levels)",
                     5: "text that is not valid JSON in a JSON column"}  # past SQLite's and Python's depth too
    assert held(limits_of("MySQL", "0001")) == {1: found[1].replace("MariaDB", "MySQL"), 5: found[5]}
    assert held(None) == {5: found[5]}  # PostgreSQL: only what it was refused before
