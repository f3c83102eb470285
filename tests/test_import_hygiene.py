"""The service layer never imports Textual: checked in a clean interpreter."""

import subprocess
import sys

SERVICE_MODULES = [
    "wizard.errors", "wizard.events", "wizard.secrets", "wizard.urls", "wizard.envfile", "wizard.journal",
    "wizard.lock", "wizard.db", "wizard.schema", "wizard.sample",
    "wizard.typemap", "wizard.tables", "wizard.scan", "wizard.preflight", "wizard.copy", "wizard.target_schema",
    "wizard.report", "wizard.settings_move", "wizard.move", "wizard.move_rollback", "wizard.pg",
    "wizard.demo", "wizard.health", "wizard.switch",
]


def test_service_layer_does_not_import_textual() -> None:
    code = (
        "import importlib, sys\n"
        f"for m in {SERVICE_MODULES!r}: importlib.import_module(m)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'screens')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
