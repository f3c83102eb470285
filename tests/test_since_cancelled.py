"""Recording a database's end state, cancelled half way (the TUI quits, or leaves the Finish screen during the
.env switch), must not crash the process: its SQLite connections are closed only once no thread uses them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CANCEL_OFTEN = '''
import asyncio, sys
from pathlib import Path
from wizard import sample
from wizard.rollback import since
from wizard.urls import parse_url

async def main(folder):
    db = sample.build(folder / "engine.db", executions=30000, workflows=5, users=2)
    url = parse_url(f"sqlite:///{db}")
    for i in range(40):  # cancelled at many points: reading the source, writing the record
        task = asyncio.create_task(since.record_end_state(url, folder))
        for _ in range(3 + i % 7):
            await asyncio.sleep(0)
        await asyncio.sleep(0.001 * (i % 5))
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass

asyncio.run(main(Path(sys.argv[1])))
'''


def test_cancelling_the_end_state_record_never_crashes(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", CANCEL_OFTEN, str(tmp_path)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])  # -11: SQLite closed under a statement
