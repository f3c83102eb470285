"""The engine's health check after a switch: GET its /api/version, briefly."""

from __future__ import annotations

import urllib.error
import urllib.request

from wizard.errors import StepError

TIMEOUT = 3.0  # seconds: an engine that is up answers at once


def get_version(url: str, timeout: float = TIMEOUT) -> str:
    """What the engine says at `url` (its first 200 characters), or StepError with why it did not."""
    if not url.startswith(("http://", "https://")):
        raise StepError(f"'{url}' is not an http(s) URL: use http://host:port/api/version")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (scheme checked above)
            body = response.read(4096).decode("utf-8", "replace").strip()
            return f"HTTP {response.status} {body[:200]}"
    except urllib.error.HTTPError as exc:
        raise StepError(f"{url} answered HTTP {exc.code}: the engine is up but unwell; check its logs") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise StepError(f"{url} did not answer ({reason}): is the engine running and restarted?") from None
