"""The engine's .env: read DATABASE_URL, rewrite one variable keeping every other byte."""

from __future__ import annotations

import io
import os
import re
from difflib import SequenceMatcher
from pathlib import Path

from dotenv import dotenv_values

from wizard.errors import BadInput
from wizard.urls import with_env_certificates

DEFAULT_ENV_FILE = Path(".env")


def read_env(path: Path) -> dict[str, str | None]:
    if not path.exists():
        raise BadInput(f"{path} does not exist: pass --env-file with the engine's .env, or --source")
    return {} if path.is_dir() else env_values(path.read_bytes())  # dotenv reads nothing from a folder


def database_url(path: Path) -> str | None:
    """DATABASE_URL, with the TLS certificate files the .env names beside it (see DbUrl.env_settings)."""
    if not path.exists():
        return None
    values = read_env(path)
    return with_env_certificates(values.get("DATABASE_URL"), values)


def _line_re(name: str) -> re.Pattern[bytes]:
    return re.compile(rb"^(?P<lead>[ \t]*(?:export[ \t]+)?" + re.escape(name.encode()) + rb"[ \t]*=)(?P<value>[^\r\n]*)", re.M)


def _last(data: bytes, name: str) -> re.Match[bytes] | None:
    """The line that sets `name` for dotenv, and for a shell that sources the file: the last of them."""
    found = None
    for found in _line_re(name).finditer(data):
        pass
    return found


def set_variable(data: bytes, name: str, value: str) -> bytes:
    """Replace the value of `name` on the line that counts (or append a line); all other bytes kept."""
    quoted = b'"' + value.replace("\\", "\\\\").replace('"', '\\"').encode() + b'"'
    found = _last(data, name)
    if found is not None:
        return data[:found.start()] + found["lead"] + quoted + data[found.end():]
    sep = b"" if not data or data.endswith(b"\n") else b"\n"
    return data + sep + name.encode() + b"=" + quoted + b"\n"


def line_of(data: bytes, name: str) -> str | None:
    """The line that sets `name`, as the file spells it (export, quotes and all), or None."""
    found = _last(data, name)
    return found[0].decode("utf-8", "replace") if found else None


def remove_variable(data: bytes, name: str) -> bytes:
    """Drop every line that sets `name` (an earlier one would count once the last is gone), with its line ending;
    all other bytes kept."""
    pattern = re.compile(
        rb"^[ \t]*(?:export[ \t]+)?" + re.escape(name.encode()) + rb"[ \t]*=[^\r\n]*(?:\r?\n)?", re.M
    )
    return pattern.sub(b"", data)


def env_values(data: bytes) -> dict[str, str | None]:
    """Every variable a .env sets; a byte that is not UTF-8 (a comment written in latin-1) stops none of them."""
    return dict(dotenv_values(stream=io.StringIO(data.decode("utf-8", "surrogateescape"))))


def value_in(data: bytes, name: str) -> str | None:
    return env_values(data).get(name)


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.wizard-tmp")


def check_rewritable(path: Path) -> None:
    """BadInput, before anything is done, unless write_atomically can replace `path` later."""
    tmp = _temporary(path)
    instead = "or leave --env-file out and point the engine at the target yourself"
    if not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK | os.X_OK):
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            raise BadInput(f"{path} is on a read-only file system: remount it read-write, {instead}")
        if not os.access(path, os.W_OK):
            raise BadInput(f"{path} is not writable (its mode, or chattr +i): make it writable, {instead}")
        raise BadInput(f"{path}'s folder is not writable (a new .env is written beside it): make it writable, "
                       f"{instead}")
    if os.path.lexists(tmp) and not tmp.is_file():
        raise BadInput(f"{tmp} is in the way (the switch writes its new .env there): remove it, {instead}")


def write_atomically(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write to a temporary name, fsync, rename: a crash leaves the old file or the new one."""
    tmp = _temporary(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode if mode is not None else 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    if mode is None and path.exists():
        os.chmod(tmp, path.stat().st_mode & 0o7777)
    os.replace(tmp, path)
    fsync_path(path.parent)


def fsync_path(path: Path) -> None:
    """fsync a file, or a folder (after a rename in it)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class EditedSince(ValueError):
    """The operator changed or set again, since the switch, a variable the switch wrote: which one to keep is theirs
    to say. `names`: those variables."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(", ".join(names))
        self.names = names


_NAME = re.compile(rb"^[ \t]*(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_.]*)[ \t]*=")


def _names(lines: list[bytes]) -> set[str]:
    return {m[1].decode() for m in map(_NAME.match, lines) if m}


def revert_lines(before: bytes, written: bytes, now: bytes) -> tuple[bytes, list[str]]:
    """`now` with the lines that turned `before` into `written` (a switch) turned back, every other line as `now`
    has it; and the variables put back. EditedSince when `now` changed or sets again a variable on those lines."""
    if now == before:  # turned back already (the operator copied the backup over it)
        return before, []
    b, w, n = (d.splitlines(keepends=True) for d in (before, written, now))
    kept = {}  # a line of `written` -> where it stands in `now`
    for i, j, size in SequenceMatcher(None, w, n, autojunk=False).get_matching_blocks():
        kept.update((i + k, j + k) for k in range(size))
    edits, names, changed = [], set(), set()
    for tag, b1, b2, w1, w2 in SequenceMatcher(None, b, w, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        # (a line whose only change is the newline the switch put after it is not one of its variables)
        touched = {x for x in _names(b[b1:b2]) | _names(w[w1:w2]) if line_of(before, x) != line_of(written, x)}
        names |= touched
        if w2 > w1:
            at = kept.get(w1)
            if at is None or any(kept.get(i) != at + i - w1 for i in range(w1, w2)):
                gone = _names([w[i] for i in range(w1, w2) if i not in kept]) & touched
                changed |= gone or touched or {f"line {w1 + 1}"}
                continue
            edits.append((at, at + w2 - w1, b[b1:b2]))
        elif w1 == 0 or w1 - 1 in kept:  # lines the switch removed go back after the line that preceded them
            at = kept[w1 - 1] + 1 if w1 else 0
            edits.append((at, at, b[b1:b2]))
        else:
            changed |= touched
    # a line the operator wrote that sets one of the switch's variables again (DATABASE_URL edited)
    changed |= names & _names([line for j, line in enumerate(n) if j not in set(kept.values())])
    if changed:
        raise EditedSince(sorted(changed))
    lines = list(n)
    for start, end, put in sorted(edits, reverse=True):
        lines[start:end] = put
    # a line that ended the file without a newline and is no longer last gets one, lest two lines join
    data = b"".join(line if i == len(lines) - 1 or line.endswith((b"\n", b"\r")) else line + b"\n"
                    for i, line in enumerate(lines))
    return data, sorted(names)
