"""What every session the wizard opens on PostgreSQL is opened with: the one place for those connect options.

- No named prepared statements, on asyncpg's own connections and on SQLAlchemy's (its asyncpg dialect
  keeps a cache of its own). A transaction pooler (PgBouncer's pool_mode = transaction) hands each
  transaction to whichever server connection is free, where a statement another one prepared is
  missing ("prepared statement "__asyncpg_stmt_23__" does not exist"). With its cache off, asyncpg
  uses the unnamed statement and parses it again in the message that runs it (asyncpg's FAQ). The
  wizard's work is COPY and a few statements per chunk, so the cache saved nothing measurable
  (README, "Production targets").
- The URL's libpq `options` (`-csearch_path=app`: a schema of its own) reach the server as the
  startup parameter libpq sends; asyncpg.connect takes no `options` argument, so the URL SQLAlchemy
  sees goes without it.
"""

from __future__ import annotations

import re

from sqlalchemy.engine import URL

from wizard.errors import BadInput
from wizard.urls import DbUrl

OPTIONS = "options"
_PLAIN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")


def _options(db: DbUrl) -> str:
    value = db.url.query.get(OPTIONS)
    return value if isinstance(value, str) else ""


def _settings(options: str) -> list[tuple[str, str]]:
    """The `-c name=value` / `--name=value` settings of a libpq options string, in order."""
    # As the server reads it: words split at unescaped whitespace, a backslash keeps the next character.
    words = [re.sub(r"\\(.)", r"\1", w) for w in re.split(r"(?<!\\)\s+", options.strip()) if w]
    out, i = [], 0
    while i < len(words):
        w = words[i]
        if w == "-c" and i + 1 < len(words):  # "-c name=value", two words
            setting, i = words[i + 1], i + 2
        elif w.startswith(("-c", "--")):
            setting, i = w[2:], i + 1
        else:
            i += 1
            continue
        if "=" in setting:
            name, value = setting.split("=", 1)
            out.append((name.strip().replace("-", "_"), value))
    return out


def schema_of(db: DbUrl) -> str | None:
    """The schema the target's tables go into: the first entry of the URL's search_path, None for the default."""
    paths = [v for k, v in _settings(_options(db)) if k == "search_path"]
    if not paths:
        return None
    first = paths[-1].split(",")[0].strip()
    return first[1:-1].replace('""', '"') if first.startswith('"') and first.endswith('"') else first.lower()


def without_options(db: DbUrl) -> DbUrl:
    """`db` as the engine connects to it from .env: with no libpq options, so in its role's own search_path."""
    return DbUrl(db.url.difference_update_query([OPTIONS]), db.kind)


def with_schema(db: DbUrl, schema: str) -> DbUrl:
    """`db` with its tables in `schema` (--schema): the URL's libpq options say so, so the journal keeps it too."""
    if db.is_sqlite:
        raise BadInput("--schema is for a PostgreSQL target: a SQLite file has no schemas")
    if db.is_mysql:
        raise BadInput("--schema is for a PostgreSQL target: on MySQL a schema is a database: name it in the URL")
    if not _PLAIN_NAME.match(schema):
        raise BadInput(f"--schema {schema!r} is not a plain schema name: use letters, digits and _")
    named = schema if schema == schema.lower() else f'"{schema}"'
    kept = " ".join(f"-c{k}={v}" for k, v in _settings(_options(db)) if k != "search_path")
    options = f"{kept} -csearch_path={named}".strip()
    return DbUrl(db.url.update_query_dict({OPTIONS: options}), db.kind)


def engine_url(db: DbUrl) -> URL:
    """The async URL SQLAlchemy connects with (the wizard's, and the engine's in .env): libpq's options leave
    it, asyncpg.connect has no such argument (the wizard passes them in asyncpg_args)."""
    return db.async_url().difference_update_query([OPTIONS])


def asyncpg_args(db: DbUrl, application_name: str | None = None) -> dict:
    """asyncpg.connect's keyword arguments beyond where to connect."""
    settings = {OPTIONS: _options(db)} if _options(db) else {}
    if application_name:
        settings["application_name"] = application_name[:63]
    return {"statement_cache_size": 0, "server_settings": settings}


def sqlalchemy_args(db: DbUrl) -> dict:
    """create_async_engine's connect_args: asyncpg's, and no statement cache in SQLAlchemy's dialect either."""
    args = asyncpg_args(db)
    if not args["server_settings"]:
        del args["server_settings"]
    return {**args, "prepared_statement_cache_size": 0}


SCHEMA_QUERY = "SELECT current_schema(), current_user"  # what a session of `db` makes its tables in, and as whom


def check_schema(db: DbUrl, current: str | None, user: str) -> None:
    """BadInput unless a session of `db` makes its tables in the schema its URL names (SCHEMA_QUERY's answer)."""
    wanted = schema_of(db)
    if wanted is None or current == wanted:
        return
    if current is None:  # no schema of the search path exists, or may be used, for this user
        raise BadInput(f"{db.masked()}: schema {wanted} does not exist, or {user} may not use it: "
                       f"CREATE SCHEMA {wanted} AUTHORIZATION {user}, or GRANT USAGE, CREATE ON SCHEMA {wanted} "
                       f"TO {user}")
    raise BadInput(f"{db.masked()}: tables would go into schema {current}, not {wanted} (does {wanted} exist, and "
                   f"may {user} use it? a pooler that drops the URL's options?): create it, or connect to the server "
                   f"itself, or ALTER ROLE {user} SET search_path = {wanted}")
