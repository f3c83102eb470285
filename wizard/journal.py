"""The run journal: one folder per run, an fsynced JSON-lines record of every step.

Each record says what the step did and what undoes it, so rollback can walk the
journal backwards. Everything written here goes through secrets.mask_data.
"""

from __future__ import annotations

import json
import os
import secrets as _random
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import unquote

from wizard.errors import BadInput
from wizard.secrets import mask_data

STATE_DIR_ENV = "WIZARD_STATE_DIR"
DEFAULT_STATE_DIR = Path(".wizard")

# Run states, derived from the journal's records.
RUNNING = "running"  # started, not finished; its process may still hold the lock
INTERRUPTED = "interrupted"
FAILED = "failed"
FINISHED = "finished"
ROLLED_BACK = "rolled back"
ROLLBACK_FAILED = "rollback failed"  # said by `wizard status`: its last rollback stopped with an error
# What `wizard status` says of a run whose rollback began and stopped part-way (kill -9, a failure after it undid
# something): neither as the run left it nor rolled back; `wizard rollback` goes on with it.
ROLLBACK_UNFINISHED = "rollback unfinished"


def rollback_began(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rollback_started records of a rollback of the run going on (begun, not finished): none after one refused
    with nothing undone, which the operator may answer by changing the database (the refusal says how), or one that
    failed having changed nothing (a carry-back that restored the file: the engine, still on the target, may write
    more); the next one measures it again. None once the run is rolled back."""
    began: list[dict[str, Any]] = []
    for rec in records:
        if rec["kind"] == "rollback_started":
            began.append(rec)
        elif rec["kind"] in ("rollback_refused", "rolled_back") or (rec["kind"] == "rollback_failed"
                                                                    and rec.get("unchanged")):
            began = []
    return began


def resolve_state_dir(option: str | Path | None) -> Path:
    chosen = option or os.environ.get(STATE_DIR_ENV) or DEFAULT_STATE_DIR
    return Path(chosen).expanduser().absolute()


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + _random.token_hex(3)


@dataclass
class Run:
    id: str
    folder: Path

    @property
    def journal_path(self) -> Path:
        return self.folder / "journal.jsonl"

    def append(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Append one record and fsync it before returning."""
        record = {"ts": now_iso(), "kind": kind, **mask_data(fields)}
        line = (json.dumps(record, default=str, sort_keys=False) + "\n").encode()
        fd = os.open(self.journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        return record

    def records(self) -> list[dict[str, Any]]:
        if not self.journal_path.exists():
            return []
        out = []
        for line in self.journal_path.read_text().splitlines():
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    # A torn last line from a kill -9 mid-write: everything before it stands.
                    break
        return out

    # Convenience views over the records.
    def started(self) -> dict[str, Any]:
        recs = self.records()
        return recs[0] if recs and recs[0]["kind"] == "run_started" else {}

    @property
    def journey(self) -> str:
        return self.started().get("journey", "?")

    def state(self) -> str:
        recs = self.records()
        kinds = [r["kind"] for r in recs]
        if "rolled_back" in kinds:
            return ROLLED_BACK
        # A resumed run (run_resumed after its run_finished) is running again.
        ends = [r for r in recs if r["kind"] in ("run_finished", "run_resumed")]
        if ends and ends[-1]["kind"] == "run_finished":
            return ends[-1].get("state", FINISHED)
        return RUNNING

    def summary(self) -> dict[str, Any]:
        """One line of `wizard status`: id, journey, state, started, steps done, where it failed."""
        recs = self.records()
        start = recs[0] if recs and recs[0]["kind"] == "run_started" else {}
        state = self.state()
        pid = [r.get("pid") for r in recs if r["kind"] in ("run_started", "run_resumed")][-1:] or [None]
        if state == RUNNING and not pid_alive(pid[0]):
            state = INTERRUPTED  # its process is gone (kill -9, a lost machine) without a last record
        if rollback_began(recs):
            state = ROLLBACK_UNFINISHED
        failed = [r for r in recs if r["kind"] == "step_failed"]
        failed_step, error = (failed[-1].get("step"), failed[-1].get("error")) if failed else (None, None)
        rollbacks = [r for r in recs if r["kind"] in ("rollback_started", "rollback_failed", "rolled_back")]
        if rollbacks and rollbacks[-1]["kind"] == "rollback_failed":
            # The run's own end says "finished", but its database or .env may be part-undone: that is its state now.
            state = ROLLBACK_FAILED
            failed_step, error = f"rollback ({rollbacks[-1].get('action')})", rollbacks[-1].get("error")
        return {
            "id": self.id, "journey": start.get("journey", "?"), "state": state, "started": start.get("ts", ""),
            "steps": sum(r["kind"] == "step_finished" for r in recs),
            "failed_step": failed_step, "error": error,
        }

    def finished_steps(self) -> list[dict[str, Any]]:
        return [r for r in self.records() if r["kind"] == "step_finished"]

    def step_started(self, step: str, title: str, **fields: Any) -> None:
        self.append("step_started", step=step, title=title, **fields)

    def step_finished(self, step: str, undo: dict[str, Any] | None = None, **fields: Any) -> None:
        self.append("step_finished", step=step, undo=undo, **fields)

    def step_failed(self, step: str, error: str) -> None:
        self.append("step_failed", step=step, error=error)

    def finish(self, state: str, **fields: Any) -> None:
        self.append("run_finished", state=state, **fields)


def table_file(folder: Path, table: str) -> Path:
    """<folder>/<table>.jsonl, a table's side file in a run folder (quarantine, nulled, dropped, written-since):
    its '%' and '/' written %25 and %2F, so that a table named 'a/b' or '../journal' stays in `folder`."""
    return folder / f"{table.replace('%', '%25').replace('/', '%2F')}.jsonl"


def file_table(path: Path) -> str:
    """The table whose side file `path` is (table_file)."""
    return unquote(path.name.removesuffix(".jsonl"))


def runs_dir(state_dir: Path) -> Path:
    return state_dir / "runs"


def new_run(state_dir: Path, journey: str, run_id: str | None = None, **fields: Any) -> Run:
    """A new run folder; pass the `run_id` the state lock was taken for, if it was taken first."""
    folder = runs_dir(state_dir)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    run_id = run_id or new_run_id()
    run_folder = folder / run_id
    run_folder.mkdir(mode=0o700)
    run = Run(run_id, run_folder)
    run.append("run_started", journey=journey, run_id=run_id, pid=os.getpid(), **fields)
    return run


def list_runs(state_dir: Path) -> list[Run]:
    """Every run in the state directory, oldest first: by when each began (an id says it to the second only, so
    two runs begun within one second would sort by their random tails), then by id."""
    folder = runs_dir(state_dir)
    try:
        if not folder.is_dir():
            return []
        runs = [Run(p.name, p) for p in folder.iterdir() if (p / "journal.jsonl").exists()]
        return sorted(runs, key=lambda run: (run.started().get("ts", ""), run.id))
    except OSError as exc:  # a folder of another user's, without the x or r bit for this one
        raise BadInput(f"the state directory {state_dir} cannot be read ({exc.strerror}): run as its owner, or "
                       f"pass --state-dir the folder that holds your runs") from None


def load_run(state_dir: Path, run_id: str | None = None, last: bool = False) -> Run:
    runs = list_runs(state_dir)
    if not runs:
        raise BadInput(f"no runs in {state_dir}: pass --state-dir where the wizard kept its journal")
    if run_id is None or last:
        return runs[-1]
    for run in runs:
        if run.id == run_id:
            return run
    raise BadInput(f"no run '{run_id}' in {state_dir}: `wizard status` lists the runs")


def unfinished_runs(state_dir: Path) -> Iterator[Run]:
    for run in list_runs(state_dir):
        if run.state() in (RUNNING, INTERRUPTED):
            yield run


def pid_alive(pid: Any) -> bool:
    """A process with this pid exists (whoever's it is); False for anything but a whole number."""
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    return True
