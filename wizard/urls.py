"""Database URLs: both sync and async spellings in, one parsed form out."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from wizard.errors import BadInput
from wizard.secrets import MASK, is_secret_name

_SQLITE = {"sqlite", "sqlite+aiosqlite", "sqlite+pysqlite"}
# libpq's TLS parameters, as operators have them in their URLs; asyncpg reads them from a DSN as libpq does.
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
TLS_PARAMS = ("sslmode", "sslrootcert", "sslcert", "sslkey", "sslpassword")
TLS_FILES = {"sslrootcert": "PGSSLROOTCERT", "sslcert": "PGSSLCERT", "sslkey": "PGSSLKEY"}
_POSTGRES = {"postgresql", "postgres", "postgresql+asyncpg", "postgresql+psycopg2", "postgresql+psycopg"}
# MariaDB's spelling too: one kind, the server's version tells the two apart. aiomysql is the driver
# (README, "MySQL and MariaDB": LOAD DATA LOCAL INFILE works through it, not through asyncmy).
_MYSQL = {"mysql", "mysql+aiomysql", "mysql+asyncmy", "mysql+pymysql", "mysql+mysqldb",
          "mariadb", "mariadb+aiomysql", "mariadb+asyncmy", "mariadb+pymysql", "mariadb+mysqldb"}
_DRIVERS = {"sqlite": ("sqlite", "sqlite+aiosqlite"), "postgresql": ("postgresql", "postgresql+asyncpg"),
            "mysql": ("mysql+pymysql", "mysql+aiomysql")}  # kind -> (sync, async) drivername
# A MySQL URL's query keys that both drivers (aiomysql, PyMySQL) take as keywords, and the ssl_* ones SQLAlchemy
# folds into their `ssl`.
_MYSQL_QUERY = frozenset({"ssl_ca", "ssl_cert", "ssl_key", "ssl_capath", "ssl_cipher", "ssl_check_hostname",
                         "unix_socket", "charset", "connect_timeout", "local_infile", "read_default_file",
                         "read_default_group", "program_name", "server_public_key", "password"})


@dataclass(frozen=True)
class DbUrl:
    """A database the wizard works on. `str()` is always the masked form."""

    url: URL
    kind: str  # "sqlite", "postgresql" or "mysql" (MySQL and MariaDB)

    @property
    def is_sqlite(self) -> bool:
        return self.kind == "sqlite"

    @property
    def is_mysql(self) -> bool:
        return self.kind == "mysql"

    @property
    def sqlite_path(self) -> Path:
        if not self.is_sqlite or not self.url.database:
            raise BadInput("this is not a SQLite file URL")
        return Path(self.url.database)

    @property
    def database(self) -> str:
        return self.url.database or ""

    def tls(self) -> dict[str, str]:
        """The libpq TLS parameters the URL gives; the environment's PGSSLMODE, PGSSLROOTCERT... apply to what it
        leaves out, in libpq and asyncpg alike."""
        return {k: v for k in TLS_PARAMS if isinstance(v := self.url.query.get(k), str)}

    def sslmode(self) -> str:
        """The mode a connection uses: the URL's, else PGSSLMODE's, else libpq's default (prefer)."""
        return self.tls().get("sslmode") or os.environ.get("PGSSLMODE") or "prefer"

    def async_url(self) -> URL:
        """The spelling SQLAlchemy's async driver accepts. On PostgreSQL every query key becomes an asyncpg.connect
        keyword, which has `ssl` (a mode) and no sslmode, sslrootcert...: the certificates go by PGSSL* variables."""
        url = self.url.set(drivername=_DRIVERS[self.kind][1])
        if self.kind != "postgresql":
            return url
        query = {k: v for k, v in self.url.query.items() if k not in TLS_PARAMS}
        mode = self.tls().get("sslmode")
        return url.set(query={**query, **({"ssl": mode} if mode else {})})

    def async_str(self) -> str:
        """The async spelling with the password, for .env only."""
        return self.async_url().render_as_string(hide_password=False)

    def env_settings(self) -> dict[str, str]:
        """What the engine's .env says for this database: DATABASE_URL in the asyncpg spelling, and the
        certificate files as PGSSLROOTCERT, PGSSLCERT, PGSSLKEY (asyncpg reads them from the environment)."""
        return {"DATABASE_URL": self.async_str(), **self.tls_files()}

    def tls_files(self) -> dict[str, str]:
        """The certificate files the URL names, as the PGSSL* variables that say them to asyncpg and libpq."""
        tls = self.tls()
        return {var: str(Path(tls[k]).expanduser().absolute()) for k, var in TLS_FILES.items() if k in tls}

    def sync_str(self) -> str:
        return self.url.set(drivername=_DRIVERS[self.kind][0]).render_as_string(hide_password=False)

    def masked(self) -> str:
        url = self.url
        # The client key's sslpassword, and a password given as a query parameter (the MySQL driver takes it).
        secret = {k: MASK for k, v in url.query.items() if is_secret_name(k) and v}
        if secret:
            url = url.update_query_dict(secret)
        # An empty password hides nothing; shown as ***, a journal would claim there was one to find.
        return _readable(url.render_as_string(hide_password=url.password != ""))

    def __str__(self) -> str:
        return self.masked()

    def pg_connect_kwargs(self) -> dict:
        """Keyword arguments for asyncpg.connect (password never in a command line)."""
        u = self.url
        socket_dir = u.query.get("host")  # postgresql://user@/db?host=/var/run/postgresql
        kwargs: dict = {
            "host": u.host or (socket_dir if isinstance(socket_dir, str) else None) or "127.0.0.1",
            "port": u.port or 5432,
            "user": u.username or None,
            "password": u.password or None,
            "database": u.database or None,
        }
        # The TLS parameters go as a DSN, which asyncpg reads as libpq does (a root certificate, a client
        # certificate and its key's password); the keywords above take precedence over the rest of it.
        tls = self.tls()
        kwargs["dsn"] = "postgresql://" + (f"?{urlencode(tls)}" if tls else "")
        return kwargs

    def absolute(self) -> "DbUrl":
        """A SQLite URL with an absolute path (a journal outlives the working directory); others as they are."""
        if not self.is_sqlite:
            return self
        return DbUrl(self.url.set(database=str(self.sqlite_path.absolute())), self.kind)

    def with_password(self, password: str) -> "DbUrl":
        return DbUrl(self.url.set(password=password), self.kind)

    def password(self) -> str:
        return self.url.password or ""

    def without_password(self) -> str:
        """The URL as typed, less its password: what a form may show."""
        return _readable(self.url._replace(password=None).render_as_string(hide_password=False))  # .set(password=None) keeps it


def same_database(a: DbUrl, b: DbUrl) -> bool:
    """`a` and `b` name one database (its schema aside): one SQLite file, or one server's database."""
    if a.kind != b.kind:
        return False
    if a.is_sqlite:
        return a.sqlite_path.resolve() == b.sqlite_path.resolve()
    def place(u: DbUrl) -> tuple:
        # host= names a socket folder; a port left out is the server's default
        return u.url.host or u.url.query.get("host"), u.url.port or (3306 if u.is_mysql else 5432), u.database

    return place(a) == place(b)


def _readable(rendered: str) -> str:
    """A certificate's path as typed ('/' needs no escape in a query), and a masked key's password as a password is."""
    head, sep, query = rendered.partition("?")
    return head + sep + query.replace("%2F", "/").replace("%2A", "*")


def form_url(base: DbUrl | None, host: str, port: int | str | None, database: str, user: str, password: str,
             sslmode: str | None = None, sslrootcert: str | None = None) -> DbUrl:
    """A URL from a form's fields, over `base` (the URL the form shows: its kind and what no field holds, a client
    certificate or options, are kept), else a PostgreSQL one; blank fields left out, the host 127.0.0.1 by default.
    `port` as typed, maybe no number: the URL made of it says so, in the one line a URL given whole would."""
    url = base.url if base is not None else URL.create("postgresql")
    tls = {k: v for k, v in (("sslmode", sslmode), ("sslrootcert", sslrootcert)) if v}
    url = url.difference_update_query(["sslmode", "sslrootcert"]).update_query_dict(tls)
    # Not url.set(), which keeps the base's part where it is given None: a field emptied empties its part.
    url = url._replace(username=user or None, password=password or None, host=host or "127.0.0.1", port=port,
                       database=database or None)
    return parse_url(url.render_as_string(hide_password=False), "target")


def with_env_certificates(url: str | None, env: dict[str, str | None]) -> str | None:
    """A .env's DATABASE_URL with the certificate files its PGSSL* lines name, back in libpq's spelling."""
    files = {k: env[var] for k, var in TLS_FILES.items() if env.get(var)}
    if not url or not files or not url.startswith("postgres"):
        return url
    try:
        return make_url(url).update_query_dict(files).render_as_string(hide_password=False)
    except (ArgumentError, ValueError):
        return url  # parse_url says what is wrong with it


def parse_url(text: str | None, what: str = "database") -> DbUrl:
    """Parse a SQLAlchemy URL, sync or async spelling, or say what is wrong with it."""
    if not text or not text.strip():
        raise BadInput(f"no {what} URL given: pass one, or set DATABASE_URL in .env")
    text = text.strip()
    try:
        text.encode()
    except UnicodeEncodeError:  # bytes of another encoding, kept by Python as surrogates: no driver takes them
        raise BadInput(f"the {what} URL holds bytes that are not UTF-8 (a file or database named in another "
                       f"encoding): rename it, or link the file under a UTF-8 name, and use that") from None
    try:
        url = make_url(text)
    except (ArgumentError, ValueError):
        # The host's side alone: no password, and no scheme:// for mask() to take the advice after it for one.
        shown = text.split("@")[-1] if "@" in text else text.split("://")[-1]
        raise BadInput(
            f"cannot read the {what} URL '...{shown}': use sqlite:///path/to/file.db, postgresql://user@host:5432/db "
            "or mysql://user@host:3306/db"
        ) from None
    if url.host and "@" in url.host:  # a password's own @ not escaped: what follows it is taken for the host
        raise BadInput(f"the {what} URL holds more than one @ before its host: write an @ in the user name or "
                       "password as %40")
    # SQLAlchemy takes any integer; a socket takes 0-65535 and a driver reads 0 as "the default", which libpq's
    # tools refuse: checked here, before any connection raises it as an OverflowError.
    if url.port is not None and not 0 < url.port < 65536:
        raise BadInput(f"the {what} URL's port {url.port} is not a port: use one from 1 to 65535, or leave it out "
                       "for the default")
    driver = url.drivername
    if driver in _SQLITE:
        if not url.database or url.database == ":memory:":
            raise BadInput(f"the {what} URL names no SQLite file: use sqlite:///path/to/file.db")
        return DbUrl(url.set(drivername="sqlite"), "sqlite")
    kind = "postgresql" if driver in _POSTGRES else "mysql" if driver in _MYSQL else None
    if kind is not None:
        if not url.database:
            raise BadInput(f"the {what} URL names no database: add /dbname to {url.render_as_string()}")
        if kind == "mysql":
            unknown = sorted(set(url.query) - _MYSQL_QUERY)
            if unknown:  # both drivers take the query's keys as keywords: another is a TypeError mid-connect
                raise BadInput(f"the {what} URL's query holds {', '.join(unknown)}, which the MySQL drivers do not "
                               f"take: remove it, or use one of {', '.join(sorted(_MYSQL_QUERY))}")
            if url.password is None and os.environ.get("MYSQL_PWD"):
                # MySQL's clients read MYSQL_PWD, its Python drivers do not: the URL carries it to both (masked
                # wherever shown), and to the .env a switch writes, whose engine reads no MYSQL_PWD either.
                url = url.set(password=os.environ["MYSQL_PWD"])
            return DbUrl(url.set(drivername=kind), kind)
        if isinstance(url.query.get("ssl"), str) and "sslmode" not in url.query:
            # asyncpg's spelling (a .env the wizard switched has it): held in libpq's, which every tool reads.
            url = url.difference_update_query(["ssl"]).update_query_dict({"sslmode": url.query["ssl"]})
        db = DbUrl(url.set(drivername="postgresql"), "postgresql")
        mode = db.tls().get("sslmode")
        if mode is not None and mode not in SSL_MODES:
            raise BadInput(f"the {what} URL says sslmode={mode}: use one of {', '.join(SSL_MODES)}")
        return db
    raise BadInput(
        f"the {what} URL uses '{driver}', which the wizard does not move: use sqlite:///, postgresql:// or mysql://"
    )
