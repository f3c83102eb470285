"""Masking of passwords and API keys in every string the wizard shows or stores."""

from __future__ import annotations

import re
from typing import Any

MASK = "***"

# user:password@ in any URL-looking string. The password may hold spaces, quotes and a raw '@' (as typed, not
# %40): it runs to the '@' after which the URL has no other, up to a blank, a quote or the end of the text;
# host:port/path (a URL with no user, and no '@' in it) is not taken for one.
_URL_PASSWORD = re.compile(
    r"(?P<head>[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)(?![0-9]{1,5}/[^@\s]*(?:[\s\"']|$))"
    r"(?P<pw>[^\r\n]+?)(?P<at>@)(?=[^@\s\"']*(?:[\s\"']|$))")
# KEY=value for names that hold secrets, as in .env lines, key=value DSNs or a URL's query (PyMySQL's passwd too).
_SECRET_ASSIGN = re.compile(
    r"(?P<head>\b[A-Z0-9_]*(?:API_KEY|SECRET|TOKEN|PASSWORD|PASSWD|MYSQL_PWD)[A-Z0-9_]*\s*=\s*)"
    r"(?P<pw>'[^'\r\n]*'|\"[^\"\r\n]*\"|[^\s'\"]+)",  # a quoted value whole, blanks and all
    re.IGNORECASE,
)
# OpenAI-style keys wherever they appear.
_API_KEY = re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}")
# "apiKey": "...", "password": "..." in JSON, under any key whose name says secret ("openaiApiKey", as
# is_secret_name reads a dict's): the value whole, escaped quotes and all, to the end of a text cut short in it (a
# quarantined row's JSON that does not parse).
_JSON_SECRET = re.compile(
    r'(?P<head>"[^"\\\r\n]*(?:apikey|api_key|password|passwd|secret|token)[^"\\\r\n]*"\s*:\s*")'
    r'(?P<pw>(?:[^"\\\r\n]|\\.)*)(?P<tail>"?)',
    re.IGNORECASE,
)


def mask_key(value: str) -> str:
    """Show the shape of a key without the key: 'sk-...wxyz'."""
    if len(value) <= 8:
        return MASK
    return f"{value[:3]}...{value[-4:]}"


def mask(text: str) -> str:
    """Mask every password and key this module knows how to recognise."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}{m['at']}", text)
    text = _JSON_SECRET.sub(lambda m: f"{m['head']}{MASK}{m['tail']}", text)
    text = _SECRET_ASSIGN.sub(lambda m: f"{m['head']}{MASK}", text)
    return _API_KEY.sub(lambda m: mask_key(m.group(0)), text)


def mask_data(value: Any) -> Any:
    """mask() applied through dicts, lists and strings (for journals and reports)."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {k: (MASK if is_secret_name(k) and v else mask_data(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_data(v) for v in value]
    return value


def is_secret_name(name: Any) -> bool:
    """A field, JSON key or URL query parameter whose value is a secret by its name."""
    n = str(name).lower()
    return any(s in n for s in ("password", "passwd", "apikey", "api_key", "secret", "token"))
