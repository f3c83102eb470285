"""The service layer never imports Textual or a screen: every module of wizard/ but the faces, checked in a
clean interpreter (the module list is read from the package, not kept by hand). The layering between the
faces and the command layer is import-linter's contract in pyproject.toml (`lint-imports`, in .ci/run)."""

import pkgutil
import subprocess
import sys

import wizard

FACES = {"wizard.app", "wizard.cli", "wizard.__main__"}  # the TUI, the CLI, and `python -m wizard`


def service_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(wizard.__path__, "wizard.") if m.name not in FACES)


def test_every_service_module_is_checked() -> None:
    modules = service_modules()
    assert "wizard.commands" in modules and "wizard.move.run" in modules and "wizard.verify.rows" in modules
    assert not FACES & set(modules)


def test_service_layer_does_not_import_textual() -> None:
    # Each module in turn: the first one that pulls Textual or a screen in is the one named.
    code = (
        "import importlib, sys\n"
        "pulled = {}\n"
        f"for m in {service_modules()!r}:\n"
        "    importlib.import_module(m)\n"
        "    found = sorted(n for n in sys.modules if n.split('.')[0] in ('textual', 'screens'))\n"
        "    if found:\n"
        "        pulled[m] = found[:3]\n"
        "        break\n"
        "print(pulled)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "{}"
