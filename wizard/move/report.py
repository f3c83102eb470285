"""report.json and report.md in a run's folder: what the move did, table by table.

Tables, rows copied and quarantined, the conversions per column, the timings of
each step and the throughput. Everything written goes through secrets.mask.
The verification adds its own section (`sections`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wizard.envfile import write_atomically
from wizard.secrets import mask, mask_data


@dataclass
class TableRow:
    table: str
    source_rows: int
    copied: int
    quarantined: int
    target_rows: int | None = None
    seconds: float = 0.0
    conversions: dict[str, dict[str, int]] = field(default_factory=dict)  # column -> conversion -> count
    status: str = ""  # ok | differs | not checked

    @property
    def rows_per_second(self) -> float | None:
        return round((self.copied + self.quarantined) / self.seconds, 1) if self.seconds > 0 else None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TableRow":
        """A row as to_dict gave it (what it adds, rows_per_second, left out)."""
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def to_dict(self) -> dict[str, Any]:
        return {"table": self.table, "source_rows": self.source_rows, "copied": self.copied,
                "quarantined": self.quarantined, "target_rows": self.target_rows, "status": self.status,
                "seconds": round(self.seconds, 3), "rows_per_second": self.rows_per_second,
                "conversions": self.conversions}


@dataclass
class RunReport:
    run_id: str
    journey: str
    source: str  # masked
    target: str  # masked
    state: str
    started: str
    finished: str
    policy: str = ""
    revision: str = ""  # what the target was created at
    upgraded_to: str | None = None
    timings: dict[str, float] = field(default_factory=dict)  # step -> seconds (this process's run of it)
    tables: list[TableRow] = field(default_factory=list)
    quarantine_dir: str | None = None
    sequences: dict[str, int] = field(default_factory=dict)  # table.column -> the next value
    notes: list[str] = field(default_factory=list)
    sections: dict[str, Any] = field(default_factory=dict)  # added by later steps (verification)

    @classmethod
    def load(cls, path: Path) -> "RunReport":
        """A report written earlier (report.json), back as a RunReport."""
        data = json.loads(Path(path).read_text())
        names = {f for f in cls.__dataclass_fields__ if f not in ("tables", "sections")}
        report = cls(**{k: v for k, v in data.items() if k in names})
        report.tables = [TableRow.from_dict(t) for t in data.get("tables", [])]
        return report

    @property
    def totals(self) -> dict[str, Any]:
        copied = sum(t.copied for t in self.tables)
        quarantined = sum(t.quarantined for t in self.tables)
        seconds = sum(t.seconds for t in self.tables)
        return {"source_rows": sum(t.source_rows for t in self.tables), "copied": copied,
                "quarantined": quarantined, "copy_seconds": round(seconds, 3),
                "rows_per_second": round((copied + quarantined) / seconds, 1) if seconds > 0 else None}

    def conversions(self) -> dict[str, dict[str, dict[str, int]]]:
        return {t.table: t.conversions for t in self.tables if t.conversions}

    def to_dict(self) -> dict[str, Any]:
        return mask_data({
            "run_id": self.run_id, "journey": self.journey, "state": self.state, "source": self.source,
            "target": self.target, "started": self.started, "finished": self.finished, "policy": self.policy,
            "revision": self.revision, "upgraded_to": self.upgraded_to,
            "timings": {k: round(v, 3) for k, v in self.timings.items()}, "totals": self.totals,
            "tables": [t.to_dict() for t in self.tables], "conversions": self.conversions(),
            "quarantine_dir": self.quarantine_dir, "sequences": self.sequences, "notes": self.notes,
            **self.sections,
        })

    def markdown(self) -> str:
        tot = self.totals
        out = [
            f"# Move {self.run_id}: {self.state}", "",
            f"- source: `{self.source}`", f"- target: `{self.target}` (created at revision {self.revision}"
            + (f", then upgraded to {self.upgraded_to})" if self.upgraded_to else ")"),
            f"- policy for rows the target will not take: `{self.policy}`",
            f"- started {self.started}, finished {self.finished}",
            f"- {tot['copied']:,} rows copied, {tot['quarantined']:,} quarantined"
            + (f", {tot['rows_per_second']:,.0f} rows/s over {tot['copy_seconds']:.1f} s of copy"
               if tot["rows_per_second"] else ""),
            "", "## Tables", "",
            "| table | source rows | copied | quarantined | target rows | status | seconds | rows/s |",
            "|---|--:|--:|--:|--:|---|--:|--:|",
        ]
        for t in self.tables:
            rate = f"{t.rows_per_second:,.0f}" if t.rows_per_second else ""
            target = f"{t.target_rows:,}" if t.target_rows is not None else ""
            out.append(f"| {t.table} | {t.source_rows:,} | {t.copied:,} | {t.quarantined:,} | {target} | {t.status} "
                       f"| {t.seconds:.2f} | {rate} |")
        out += ["", "## Conversions", ""]
        conv = [(t.table, col, name, n) for t in self.tables for col, made in t.conversions.items()
                for name, n in made.items()]
        if conv:
            out += ["| table | column | conversion | values |", "|---|---|---|--:|"]
            out += [f"| {t} | {c} | {name} | {n:,} |" for t, c, name, n in conv]
        else:
            out.append("None: every value went as it was.")
        out += ["", "## Quarantine", ""]
        if any(t.quarantined for t in self.tables):
            out.append(f"One JSON object a line (`pk`, `rule`, `reason`, `row`) in `{self.quarantine_dir}`:")
            out += [""] + [f"- `{t.table}.jsonl`: {t.quarantined:,} rows" for t in self.tables if t.quarantined]
        else:
            out.append("Empty: every source row was copied.")
        out += ["", "## Timings", "", "| step | seconds |", "|---|--:|"]
        out += [f"| {step} | {sec:.2f} |" for step, sec in self.timings.items()]
        if self.sequences:
            out += ["", "## Sequences", ""] + [f"- `{k}` next value {v:,}" for k, v in self.sequences.items()]
        if self.notes:
            out += ["", "## Notes", ""] + [f"- {n}" for n in self.notes]
        for title, body in self.sections.items():
            if isinstance(body, str):
                out += ["", f"## {title}", "", body]
        return "\n".join(out) + "\n"


def write(report: RunReport, folder: Path) -> tuple[Path, Path]:
    """Write report.json and report.md into `folder` (atomically, mode 0600); returns their paths."""
    json_path, md_path = folder / "report.json", folder / "report.md"
    write_atomically(json_path, (json.dumps(report.to_dict(), indent=2, default=str) + "\n").encode(), 0o600)
    write_atomically(md_path, mask(report.markdown()).encode(), 0o600)
    return json_path, md_path
