"""pgloader as a contender: the load file filled in for one source and target."""

from __future__ import annotations

import subprocess
from pathlib import Path

TEMPLATE = Path(__file__).with_name("pgloader.load")


def load_file(source: Path, target_url: str, dest: Path) -> Path:
    dest.write_text(TEMPLATE.read_text().format(source=source.resolve(), target=target_url))
    return dest


def command(load: Path) -> list[str]:
    return ["pgloader", str(load)]


def version() -> str:
    try:
        out = subprocess.run(["pgloader", "--version"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "not installed"
    return out.splitlines()[0].replace("pgloader version", "").strip().strip('"')
