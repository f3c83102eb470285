"""Database URLs: both sync and async spellings in, one parsed form out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from wizard.errors import BadInput

_SQLITE = {"sqlite", "sqlite+aiosqlite", "sqlite+pysqlite"}
_POSTGRES = {"postgresql", "postgres", "postgresql+asyncpg", "postgresql+psycopg2", "postgresql+psycopg"}
# MariaDB's spelling too: one kind, the server's version tells the two apart. aiomysql is the driver
# (README, "MySQL and MariaDB": LOAD DATA LOCAL INFILE works through it, not through asyncmy).
_MYSQL = {"mysql", "mysql+aiomysql", "mysql+asyncmy", "mysql+pymysql", "mysql+mysqldb",
          "mariadb", "mariadb+aiomysql", "mariadb+asyncmy", "mariadb+pymysql", "mariadb+mysqldb"}
_DRIVERS = {"sqlite": ("sqlite", "sqlite+aiosqlite"), "postgresql": ("postgresql", "postgresql+asyncpg"),
            "mysql": ("mysql+pymysql", "mysql+aiomysql")}  # kind -> (sync, async) drivername


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

    def async_url(self) -> URL:
        return self.url.set(drivername=_DRIVERS[self.kind][1])

    def async_str(self) -> str:
        """The async spelling with the password, for .env and engines only."""
        return self.async_url().render_as_string(hide_password=False)

    def sync_str(self) -> str:
        return self.url.set(drivername=_DRIVERS[self.kind][0]).render_as_string(hide_password=False)

    def masked(self) -> str:
        # An empty password hides nothing; shown as ***, a journal would claim there was one to find.
        return self.url.render_as_string(hide_password=self.url.password != "")

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
        ssl = u.query.get("sslmode") or u.query.get("ssl")
        if ssl:
            kwargs["ssl"] = ssl
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
        return self.url._replace(password=None).render_as_string(hide_password=False)  # .set(password=None) keeps it


def postgres_url(host: str, port: int | None, database: str, user: str, password: str,
                 sslmode: str | None = None) -> DbUrl:
    """A PostgreSQL URL from a form's fields (blank ones left out; the host defaults to 127.0.0.1)."""
    url = URL.create("postgresql", username=user or None, password=password or None, host=host or "127.0.0.1",
                     port=port, database=database or None, query={"sslmode": sslmode} if sslmode else {})
    return parse_url(url.render_as_string(hide_password=False), "target")


def parse_url(text: str | None, what: str = "database") -> DbUrl:
    """Parse a SQLAlchemy URL, sync or async spelling, or say what is wrong with it."""
    if not text or not text.strip():
        raise BadInput(f"no {what} URL given: pass one, or set DATABASE_URL in .env")
    text = text.strip()
    try:
        url = make_url(text)
    except (ArgumentError, ValueError):
        shown = text.split("@")[-1] if "@" in text else text
        raise BadInput(
            f"cannot read the {what} URL '...{shown}': use sqlite:///path/to/file.db, postgresql://user@host:5432/db "
            "or mysql://user@host:3306/db"
        ) from None
    driver = url.drivername
    if driver in _SQLITE:
        if not url.database or url.database == ":memory:":
            raise BadInput(f"the {what} URL names no SQLite file: use sqlite:///path/to/file.db")
        return DbUrl(url.set(drivername="sqlite"), "sqlite")
    kind = "postgresql" if driver in _POSTGRES else "mysql" if driver in _MYSQL else None
    if kind is not None:
        if not url.database:
            raise BadInput(f"the {what} URL names no database: add /dbname to {url.render_as_string()}")
        return DbUrl(url.set(drivername=kind), kind)
    raise BadInput(
        f"the {what} URL uses '{driver}', which the wizard does not move: use sqlite:///, postgresql:// or mysql://"
    )
