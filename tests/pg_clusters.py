"""Throwaway PostgreSQL clusters of a test's own (wizard.cluster), for what the shared server cannot be:
one to restart, one that checks passwords, one that requires TLS with a certificate authority made here."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from wizard import cluster
from wizard.errors import BadInput


def no_cluster(why: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"a throwaway PostgreSQL is required under CI: {why}")
    pytest.skip(f"no throwaway PostgreSQL: {why}")


@contextlib.contextmanager
def private_cluster(prefix: str, bin_dir: Path | None = None, settings: dict[str, str] | None = None,
                    hba: str | None = None, folder: Path | None = None,
                    port: int | None = None) -> Iterator[cluster.Cluster]:
    """A started cluster, stopped and removed after the block (skipped, or failed under CI, when none starts).
    Not under pytest's basetemp (0700 root): the server's own user must reach its folder."""
    made = None
    try:
        made = cluster.create(folder or Path(tempfile.mkdtemp(prefix=prefix)), bin_dir, port)
        made.start(settings, hba)
    except BadInput as exc:
        if made is not None:
            made.stop()
        no_cluster(exc.message)
    try:
        yield made
    finally:
        made.stop()


def tls_bin() -> Path:
    """A bin folder whose server has OpenSSL: the wheel's is built without it, the system's has it."""
    for b in cluster.system_bins():
        configure = subprocess.run([str(b / "pg_config"), "--configure"], capture_output=True, text=True)
        if "openssl" in configure.stdout and (b / "pg_ctl").exists():
            return b
    no_cluster("no PostgreSQL built with OpenSSL in /usr/lib/postgresql/*/bin (apt-get install postgresql)")
    raise AssertionError  # no_cluster raised


def _openssl(*args: str, cwd: Path) -> None:
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def make_ca(folder: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate authority: (its certificate, its key)."""
    crt, key = folder / f"{name}.crt", folder / f"{name}.key"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
             "-keyout", str(key), "-out", str(crt), cwd=folder)
    return crt, key


def issue(folder: Path, ca: tuple[Path, Path], name: str, host: str,
          passphrase: str | None = None) -> tuple[Path, Path]:
    """A certificate for `host` (its CN and subjectAltName), signed by `ca`: (certificate, key, encrypted with
    `passphrase` when given)."""
    crt, key, csr, ext = (folder / f"{name}.crt", folder / f"{name}.key", folder / f"{name}.csr",
                          folder / f"{name}.ext")
    secret = ["-passout", f"pass:{passphrase}"] if passphrase else ["-nodes"]
    _openssl("req", "-newkey", "rsa:2048", *secret, "-subj", f"/CN={host}", "-keyout", str(key), "-out", str(csr),
             cwd=folder)
    key.chmod(0o600)  # libpq refuses a client key others may read
    alt = f"IP:{host}" if host.replace(".", "").isdigit() else f"DNS:{host}"
    ext.write_text(f"subjectAltName={alt}\n")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]), "-CAcreateserial",
             "-days", "2", "-extfile", str(ext), "-out", str(crt), cwd=folder)
    return crt, key


@dataclass
class TlsServer:
    server: cluster.Cluster
    ca: Path  # the CA that signed the server's certificate (issued for 127.0.0.1)
    other_ca: Path  # a CA that signed nothing of this server's
    client: tuple[Path, Path]  # a certificate for CLIENT_USER, signed by `ca`, and its key (CLIENT_KEY_PASSWORD)

    def url(self, database: str = "postgres", **query: str) -> str:
        q = "&".join(f"{k}={v}" for k, v in query.items())
        return self.server.url.rsplit("/", 1)[0] + f"/{database}" + (f"?{q}" if q else "")


def steady_port(preferred: int) -> int:
    """`preferred` when it is free (a URL that reads the same run after run, for README), else any free one."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
        except OSError:
            return cluster.free_port()
    return preferred


CLIENT_USER = "wizard_cert"  # logs in with a client certificate only
CLIENT_KEY_PASSWORD = "key-S3cret"


@contextlib.contextmanager
def tls_cluster(port: int | None = None) -> Iterator[TlsServer]:
    """ssl = on, a server certificate for 127.0.0.1 signed by a CA made here, and pg_hba.conf with `hostssl` only:
    a plain TCP connection is refused, as a managed PostgreSQL that requires TLS refuses it. CLIENT_USER must
    also show a client certificate signed by that CA (its key encrypted)."""
    bin_dir = tls_bin()
    folder = Path(tempfile.mkdtemp(prefix="wizard-tls-pg-"))
    certs = folder / "certs"
    certs.mkdir()
    ca = make_ca(certs, "ca")
    other_ca, _ = make_ca(certs, "other-ca")
    crt, key = issue(certs, ca, "server", "127.0.0.1")
    client = issue(certs, ca, "client", CLIENT_USER, CLIENT_KEY_PASSWORD)
    made = cluster.create(folder, bin_dir, port)  # the folder becomes the server user's; the CA's keys stay root's
    try:
        made.give(key)
        made.start({"ssl": "on", "ssl_cert_file": f"'{crt}'", "ssl_key_file": f"'{key}'", "ssl_ca_file": f"'{ca[0]}'"},
                   hba=f"local all all trust\nhostssl all {CLIENT_USER} 127.0.0.1/32 cert\n"
                       "hostssl all all 127.0.0.1/32 trust\n")
    except BadInput as exc:
        made.stop()
        no_cluster(exc.message)
    try:
        yield TlsServer(made, ca[0], other_ca, client)
    finally:
        made.stop()
