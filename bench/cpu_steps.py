"""CPU seconds per step of `wizard migrate`: the wizard's process tree and the target's PostgreSQL backends.

`python -m bench.cpu_steps --size 1000000` migrates the cached source into a fresh database,
samples both every 0.2 s, and splits the samples by the steps' start and end in the run's
journal. On a shared machine the wall time of a step says little (other work takes the
cores); its CPU seconds say what it costs. A step that runs beside another (the backup beside
the preflight) is charged with everything that ran in its window, the other's CPU included.
A backend's CPU is its last sample: up to 0.2 s of a backend that ends between two samples is
missed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import psutil

from bench import pg, sources, wizard_runs
from bench.sources import OUT

SAMPLE_SECONDS = 0.2


class Sampler:
    """Cumulative CPU seconds of a process tree and of the PostgreSQL backends serving one database."""

    def __init__(self, proc: psutil.Process, database: str) -> None:
        self.proc, self.database = proc, database
        self.backends: dict[int, float] = {}  # pid -> its CPU seconds when last seen
        self.samples: list[tuple[float, float, float]] = []  # (time, wizard, PostgreSQL)

    def _wizard(self) -> float:
        t = self.proc.cpu_times()
        total = t.children_user + t.children_system  # children it has already waited for
        for p in [self.proc, *self.proc.children(recursive=True)]:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                pass
        return total

    def _postgres(self) -> float:
        marker = f" {self.database} "  # 'postgres: 15/main: user database host(port) state'
        for p in psutil.process_iter(["cmdline"]):
            try:
                line = " ".join(p.info["cmdline"] or [])
                if line.startswith("postgres:") and marker in line:
                    t = p.cpu_times()
                    self.backends[p.pid] = t.user + t.system
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        return sum(self.backends.values())

    def sample(self) -> None:
        try:
            self.samples.append((time.time(), self._wizard(), self._postgres()))
        except psutil.NoSuchProcess:  # it just ended: its last sample stands
            pass

    def at(self, when: float) -> tuple[float, float, float]:
        """The last sample taken at or before `when`."""
        return max((s for s in self.samples if s[0] <= when), default=self.samples[0])


def _when(ts: str) -> float:
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


def steps(journal: Path, sampler: Sampler) -> list[dict]:
    """(step, wall, wizard CPU, PostgreSQL CPU) for every step the journal shows started and finished."""
    out, started = [], {}
    for record in map(json.loads, journal.read_text().splitlines()):
        if record["kind"] == "step_started":
            started[record["step"]] = _when(record["ts"])
        elif record["kind"] == "step_finished" and record["step"] in started:
            begin, end = started[record["step"]], _when(record["ts"])
            a, b = sampler.at(begin), sampler.at(end)
            out.append({"step": record["step"], "wall": end - begin, "wizard_cpu": b[1] - a[1],
                        "postgres_cpu": b[2] - a[2]})
    return out


def measure(size: int, admin_url: str) -> dict:
    src = sources.source_db(size)
    sources.warm_page_cache(src)
    name = f"bench_cpu_steps_{size}"
    url = pg.fresh_database(admin_url, name)
    state = OUT / "state" / f"cpu-steps-{size}"
    shutil.rmtree(state, ignore_errors=True)
    try:
        started = time.time()
        load = psutil.getloadavg()[0]
        proc = psutil.Popen(wizard_runs.migrate_command(src, url, state), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
        sampler = Sampler(proc, name)
        while proc.poll() is None:
            sampler.sample()
            time.sleep(SAMPLE_SECONDS)
        wall = time.time() - started
        sampler.samples.append((time.time(), sampler.samples[-1][1], sampler._postgres()))
        journal = next(state.glob("runs/*/journal.jsonl"))
        last = sampler.samples[-1]
        return {"size": size, "returncode": proc.returncode, "wall": wall, "load_before": load,
                "load_after": psutil.getloadavg()[0], "wizard_cpu": last[1], "postgres_cpu": last[2],
                "steps": steps(journal, sampler)}
    finally:
        shutil.rmtree(state, ignore_errors=True)
        pg.drop_database(admin_url, name)


def shown(result: dict) -> str:
    lines = [f"{result['size']:,} executions: exit {result['returncode']}, {result['wall']:.1f} s wall, wizard "
             f"{result['wizard_cpu']:.1f} CPU s, PostgreSQL {result['postgres_cpu']:.1f} CPU s (load average "
             f"{result['load_before']:.1f} before, {result['load_after']:.1f} after)", "",
             "| step | wall s | wizard CPU s | PostgreSQL CPU s |", "|---|---:|---:|---:|"]
    lines += [f"| {s['step']} | {s['wall']:.1f} | {s['wizard_cpu']:.1f} | {s['postgres_cpu']:.1f} |"
              for s in result["steps"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cpu_steps", description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000, help="executions in the source database")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--admin-url", default=pg.ADMIN_URL)
    args = parser.parse_args(argv)
    results = []
    for _ in range(args.repeat):
        results.append(measure(args.size, args.admin_url))
        print(shown(results[-1]), flush=True)
        print(flush=True)
    (OUT / f"cpu-steps-{args.size}.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
