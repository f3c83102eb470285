"""The rollback of a move off MariaDB/MySQL that carries the rows the engine wrote to PostgreSQL since back into it.

    python -m bench.mysql_carry [--executions N] [--written M] [--server mysql://...] [--admin-url postgresql://...]

The MariaDB source is made by the wizard's own move of the cached sample (bench.sources) onto MySQL; it is
then moved off to a fresh PostgreSQL database with an .env switch. The "engine" then inserts M executions
and changes M/4 in PostgreSQL, and `wizard rollback --last --yes` runs as a process of its own: its wall
seconds, its CPU seconds (user + sys of that process, from the kernel: the servers' own work is not in them),
and the rows it carried back. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from bench.mysql_move import SERVER, _database
from bench.pg import ADMIN_URL, _run, drop_database, fresh_database
from bench.sources import source_db
from bench.wizard_runs import WIZARD


def _wizard(*args: str, cwd: Path) -> None:
    done = subprocess.run([str(WIZARD), *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"wizard {args[0]} failed: {done.stderr.strip()[-500:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=50_000)
    parser.add_argument("--written", type=int, default=20_000, help="executions the engine inserts since the move")
    parser.add_argument("--server", default=SERVER)
    parser.add_argument("--admin-url", default=ADMIN_URL)
    o = parser.parse_args()
    source = source_db(o.executions)
    name = f"bench_carry_{uuid.uuid4().hex[:8]}"
    target = fresh_database(o.admin_url, name)
    try:
        for mysql_url in _database(o.server):
            with tempfile.TemporaryDirectory(prefix="bench-carry-") as tmp:
                folder = Path(tmp)
                _wizard("migrate", "--source", f"sqlite:///{source}", "--target", mysql_url, "--yes",
                        "--state-dir", "onto", cwd=folder)
                (folder / ".env").write_text(f"DATABASE_URL={mysql_url}\n")
                _wizard("migrate", "--source", mysql_url, "--target", target, "--env-file", ".env", "--yes",
                        cwd=folder)
                _run(target, f"INSERT INTO executions (workflow_id, status, state) SELECT workflow_id, 'new', state "
                             f"FROM executions ORDER BY id LIMIT {o.written}",
                     f"UPDATE executions SET status = 'changed' WHERE id <= {o.written // 4}")
                before, began = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
                done = subprocess.run([str(WIZARD), "rollback", "--last", "--yes"], cwd=folder, capture_output=True,
                                      text=True)
                wall, after = time.perf_counter() - began, resource.getrusage(resource.RUSAGE_CHILDREN)
                if done.returncode != 0:
                    raise SystemExit(f"wizard rollback failed: {done.stderr.strip()[-500:]}")
                cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
                carried = next(line for line in done.stdout.splitlines() if "written since the move back" in line)
                print(f"source {o.executions:,} executions, {o.written:,} inserted and {o.written // 4:,} changed "
                      f"since; load average {os.getloadavg()[0]:.1f}")
                print(f"wizard rollback: {wall:.2f} s wall, {cpu:.2f} s CPU (its process)")
                print(" ".join(carried.split())[:300])
    finally:
        drop_database(o.admin_url, name)


if __name__ == "__main__":
    main()
