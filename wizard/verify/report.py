"""The verification as a report an operator can attach to a change ticket: Markdown and JSON.

`markdown_sections(report)` gives the verification's own sections (the table,
the schema findings, the first differences side by side); the move's run report
embeds them, and `write(path, ...)` makes a stand-alone report.md + report.json
for `wizard verify --report`. Every value in it was masked when it was recorded.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from wizard.envfile import write_atomically
from wizard.errors import BadInput
from wizard.journal import file_table
from wizard.secrets import mask
from wizard.verify.run import VerifyReport
from wizard.verify.schema import FAIL, OK, WARN

# Short, so that the table fits 80 columns with 200,000-row tables: the TUI's words.
HEADERS = ("table", "source", "target", "quarant.", "equal", "differ", "only source", "only target", "status")
KIND_SHOWN = {"different": "different", "only_source": "only in the source", "only_target": "only in the target"}


def table_rows(report: VerifyReport) -> list[tuple[str, ...]]:
    """One row per table, in HEADERS order, for any renderer."""
    return [
        (v.table, f"{v.source_rows:,}", f"{v.target_rows:,}", f"{v.quarantined:,}", f"{v.equal:,}",
         f"{v.different:,}", f"{v.only_source:,}", f"{v.only_target:,}", v.status)
        for v in report.tables
    ]


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return "`" + text.replace("`", "'").replace("|", "\\|").replace("\n", "\\n") + "`"


def _md_table(headers: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def markdown_sections(report: VerifyReport, level: int = 2) -> list[str]:
    """The verification's sections, headed at `level` (2 stand-alone, 3 inside a run's report)."""
    h, sub = "#" * level, "#" * (level + 1)
    tables = f"**{report.summary()}**\n\n" + _md_table(HEADERS, table_rows(report))
    notes = [f"- {v.table}: {v.note}" for v in report.tables if v.note]
    if notes:
        tables += "\n\n" + "\n".join(notes)
    sections = [f"{h} Verification\n\n{tables}"]
    problems = [f for f in report.schema if f.status in (FAIL, WARN)]
    good = sum(f.status == OK for f in report.schema)
    lines = [f"- **{f.status}** {f.table + ': ' if f.table else ''}{f.detail}" for f in problems]
    lines += [f"- {f.detail}" for f in report.schema if f.status not in (FAIL, WARN, OK)]
    lines.append(f"- {good} checks as expected")
    sections.append(f"{h} Schema\n\n" + "\n".join(lines))
    diffs = [_table_differences(v, sub) for v in report.tables if v.diffs]
    if diffs:
        sections.append(f"{h} First differences\n\n" + "\n\n".join(diffs))
    timing = [(v.table, f"{v.seconds:.2f} s") for v in report.tables]
    rate = f", {report.rows_per_second:,.0f} source rows/s" if report.rows_per_second else ""
    sections.append(f"{h} Verification timings\n\nverification took {report.elapsed:.2f} s{rate}\n\n"
                    + _md_table(("table", "compared in"), timing))
    return sections


def _table_differences(v: Any, heading: str) -> str:
    shown = len(v.diffs)
    total = v.different + v.only_source + v.only_target
    head = (f"{heading} {v.table}: {total:,} {'row differs' if total == 1 else 'rows differ'}"
            + (f" (the first {shown} here)" if shown < total else ""))
    if v.columns:
        head += "\n\nby column: " + ", ".join(f"{c} {n:,}" for c, n in v.columns.items())
    rows = []
    for d in v.diffs:
        pk = _cell(d.pk)
        if not d.columns:
            rows.append((pk, "", "", "", KIND_SHOWN[d.kind] + (f": {d.reason}" if d.reason else "")))
        for c in d.columns:
            rows.append((pk, c.column, _cell(c.source), _cell(c.target), c.detail or ""))
    return head + "\n\n" + _md_table(("primary key", "column", "source", "target", "detail"), rows)


def run_sections(report: VerifyReport) -> dict[str, Any]:
    """For a run's report (report.RunReport.sections): the data for report.json, the text for report.md."""
    body = "\n\n".join(markdown_sections(report, level=3))
    return {"verification": report.to_dict(), "Row-level verification": body}


def quarantine_counts(run_folder: Path, kind: str = "quarantine") -> dict[str, Counter]:
    """Rows the copy put in quarantine (or, kind "nulled", whose dangling keys it set to NULL),
    per table and rule."""
    out: dict[str, Counter] = {}
    for path in sorted((Path(run_folder) / kind).glob("*.jsonl")):
        counts = out.setdefault(file_table(path), Counter())
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            counts[str(record.get("rule") or record.get("reason") or "unspecified")] += 1
    return out


def copy_facts(run_folder: Path, conversions: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the move run recorded about its copy: conversions (given, or from its report.json) and quarantine."""
    facts: dict[str, Any] = {"run": Path(run_folder).name, "quarantine": quarantine_counts(run_folder),
                             "nulled": quarantine_counts(run_folder, "nulled"), "conversions": conversions}
    run_report = Path(run_folder) / "report.json"
    if conversions is None and run_report.exists():
        try:
            facts["conversions"] = json.loads(run_report.read_text()).get("conversions")
        except (ValueError, AttributeError):
            facts["conversions"] = None
    return facts


def _copy_section(facts: dict[str, Any]) -> str:
    lines = [f"## The copy (run {facts['run']})"]
    made = [(t, c, name, f"{n:,}") for t, columns in (facts.get("conversions") or {}).items()
            for c, names in columns.items() for name, n in names.items()]
    lines.append("\nConversions the copy made (values per column):\n")
    lines.append(_md_table(("table", "column", "conversion", "values"), made) if made else "none recorded")
    for kind, title in (("quarantine", "Rows in quarantine"), ("nulled", "Rows whose dangling keys were set to NULL")):
        counts = facts.get(kind) or {}
        lines.append(f"\n{title}:\n")
        rows = [(t, rule, f"{n:,}") for t, by_rule in counts.items() for rule, n in by_rule.most_common()]
        lines.append(_md_table(("table", "rule", "rows"), rows) if rows else "none")
    return "\n".join(lines)


def check_writable(path: Path) -> None:
    """BadInput, before the verification runs (it may take an hour), unless write() can put its report at `path`:
    the nearest folder of it that exists must be one this user may write in."""
    existing = path.absolute().parent
    while not os.path.exists(existing):  # os.path: False, not an error, for a path this user may not look into
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise BadInput(f"the report cannot be written at {path} ({existing} is not a folder you may write in): "
                       f"pass --report a path in one you may")


def write(path: Path, report: VerifyReport, facts: dict[str, Any] | None = None) -> tuple[Path, Path]:
    """report.md at `path` and its JSON alongside; returns both paths."""
    path = Path(path)
    json_path = path.with_suffix(".json") if path.suffix == ".md" else path.with_name(path.name + ".json")
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    head = (f"# Verification report\n\n- source: `{report.source}`\n- target: `{report.target}`\n"
            f"- verified at: {when}\n- result: **{'equal' if report.ok else 'DIFFERENCES FOUND'}**")
    sections = [head, *markdown_sections(report)]
    if facts:
        sections.append(_copy_section(facts))
    write_atomically(path, mask("\n\n".join(sections) + "\n").encode(), 0o600)
    data = {**report.to_dict(), "verified_at": when, "copy": facts}
    write_atomically(json_path, mask(json.dumps(data, indent=2, default=str)).encode() + b"\n", 0o600)
    return path, json_path
