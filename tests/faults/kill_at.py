"""Run `wizard` in this process and kill -9 it at an exact point: `python kill_at.py SPEC -- ARGS...`.

SPEC is `module:attribute[:N]`: the Nth call (default 1) of that function sends this
process SIGKILL before the call runs, so the fault lands at a known point of the real
program (the backup's page copy, a chunk of one table, an index build, the .env rename)
rather than at whatever moment a timer happens to hit.
"""

from __future__ import annotations

import functools
import importlib
import os
import signal
import sys


def arm(spec: str) -> None:
    module_name, attribute, *count = spec.split(":")
    module = importlib.import_module(module_name)
    target = getattr(module, attribute)
    nth = int(count[0]) if count else 1
    calls = 0

    @functools.wraps(target)
    def killer(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls >= nth:
            os.kill(os.getpid(), signal.SIGKILL)
        return target(*args, **kwargs)

    setattr(module, attribute, killer)


def main() -> None:
    spec, separator, *args = sys.argv[1:]
    assert separator == "--", "usage: kill_at.py SPEC -- wizard arguments"
    arm(spec)
    from wizard.cli import main as wizard

    sys.argv = ["wizard", *args]
    wizard()


if __name__ == "__main__":
    main()
