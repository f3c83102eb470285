"""One run at a time: an flock on the state directory, and the key of a target's advisory lock (wizard.target_lock)."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from pathlib import Path

from wizard.errors import BadInput, Refused


class StateLock:
    """Held for the life of a run; the OS drops it when the process dies (kill -9 too)."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "lock"
        self._fd: int | None = None

    def acquire(self, run_id: str, journey: str) -> "StateLock":
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:  # its mode, a read-only disk, a file of that name: nothing is written yet
            raise BadInput(f"the state directory {self.path.parent} cannot be written ({exc.strerror}): pass "
                           f"--state-dir a folder you can write to") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise Refused(
                f"run {holder.get('run_id', '?')} ({holder.get('journey', '?')}, pid {holder.get('pid', '?')}) "
                f"holds {self.path.parent}: wait for it to end, or stop it first"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"run_id": run_id, "journey": journey, "pid": os.getpid()}).encode())
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "StateLock":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def holder(state_dir: Path) -> dict:
    """What the lock file says of the last run that took it (run_id, journey, pid; {} when none): the lock may
    be released since, so the caller judges by the pid."""
    try:
        fd = os.open(state_dir / "lock", os.O_RDONLY)
    except FileNotFoundError:
        return {}
    try:
        return _read_holder(fd)
    finally:
        os.close(fd)


def _read_holder(fd: int) -> dict:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return json.loads(os.read(fd, 4096) or b"{}")
    except (OSError, ValueError):
        return {}


def advisory_key(database: str) -> int:
    """A stable 63-bit key for pg_try_advisory_lock, derived from the target's name."""
    digest = hashlib.sha256(f"engine-migration-wizard:{database}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & 0x7FFF_FFFF_FFFF_FFFF
