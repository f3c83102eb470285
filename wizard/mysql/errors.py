"""MySQL's connection errors, by their error number, as one line an operator can act on."""

from __future__ import annotations

from typing import Any

# The server's numbers (mysqld_error.h): a refused login, a database that is not there.
ACCESS_DENIED = (1044, 1045, 1698)  # no access to the database; bad password; a user refused (no password)
UNKNOWN_DATABASE = 1049


def describe(where: str, database: str, user: str | None, error: Any) -> str | None:
    """The line for a pymysql error raised while connecting, or None when it is not one of these."""
    args = getattr(error, "args", ())
    code = args[0] if args and isinstance(args[0], int) else None
    said = str(args[1]) if len(args) > 1 else ""
    if code in ACCESS_DENIED:
        if code == 1044:
            return f"{where}: user '{user}' may not use database '{database}': GRANT it access, or fix the URL"
        if "using password: YES" in said:
            return f"{where}: the password was refused: check the user and password in the URL"
        return f"{where}: user '{user}' was refused without a password: give its password in the URL or MYSQL_PWD, or check the user"
    if code == UNKNOWN_DATABASE:
        return f"{where}: database '{database}' does not exist: create it (CREATE DATABASE {database}) or fix the URL"
    return None
