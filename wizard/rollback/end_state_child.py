"""The end state (wizard.rollback.since.record_end_state) recorded by a child process.

A move records it beside its row-level verification. In one process the two share one GIL:
the end state's fetching and inserting (about 4 CPU seconds at 1M executions) and the
verification's comparing took turns on it, while the second core waited. A child has a GIL
of its own.

The parent hands the database's URL (password included) over stdin, never on the command
line, which `ps` shows; it keeps stdin open while it waits. A child whose parent is gone
(kill -9) sees stdin end, removes its unfinished file and quits: no orphan writes into a run
folder that a resumed run is using.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
from pathlib import Path

import wizard
from wizard.errors import StepError
from wizard.rollback.since import record_end_state, unfinished_end_state
from wizard.secrets import mask
from wizard.urls import DbUrl, parse_url


async def record_end_state_in_child(db: DbUrl, run_folder: Path) -> dict[str, int]:
    """record_end_state(db, run_folder) in a child process; its rows per table. StepError when it failed."""
    env = dict(os.environ)
    root = str(Path(wizard.__file__).resolve().parent.parent)  # this wizard, installed or not
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    # Its own session: the terminal's Ctrl+C reaches the parent, which decides (and kills the child).
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", __name__, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env, start_new_session=True)
    try:
        request = {"db": db.url.render_as_string(hide_password=False), "folder": str(run_folder)}
        proc.stdin.write(json.dumps(request).encode() + b"\n")
        await proc.stdin.drain()
        out, err = await asyncio.gather(proc.stdout.read(), proc.stderr.read())
        await proc.wait()
    except BaseException:  # cancelled (the run failed or stopped first), or the pipe broke
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        unfinished_end_state(run_folder).unlink(missing_ok=True)
        raise
    finally:
        proc.stdin.close()
    said = json.loads(out) if out.strip() else {}
    if proc.returncode == 0 and "counts" in said:
        return said["counts"]
    why = said.get("error") or mask((err.decode(errors="replace").strip().splitlines() or
                                     [f"exit status {proc.returncode}"])[-1])
    raise StepError(f"recording the end state failed: {why}")


def _quit_when_orphaned(run_folder: Path) -> None:
    sys.stdin.buffer.read()  # returns at EOF: the parent closed it, or died
    unfinished_end_state(run_folder).unlink(missing_ok=True)
    os._exit(1)


def main() -> None:
    request = json.loads(sys.stdin.readline())
    folder = Path(request["folder"])
    threading.Thread(target=_quit_when_orphaned, args=(folder,), daemon=True).start()
    try:
        counts = asyncio.run(record_end_state(parse_url(request["db"]), folder))
    except Exception as exc:  # said to the parent in one line, masked; the parent raises it
        line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        _said({"error": mask(f"{type(exc).__name__}: {line}")}, 1)
    _said({"counts": counts}, 0)


def _said(answer: dict, status: int) -> None:
    print(json.dumps(answer), flush=True)
    # Not sys.exit: the interpreter's shutdown would wait on the thread reading stdin, and fail.
    os._exit(status)


if __name__ == "__main__":
    main()
