"""The shape the adapter keeps (``docs/architecture.rst``): rooms whose
imports run one way, no command module imported by another module, no
module over 400 lines and no function over 80. (Complexity above 20 is
refused by ruff's C901, in ``make lint``.)"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ADAPTER = Path(__file__).resolve().parent.parent / "beetsplug" / "audiofeatures"
PACKAGE = "beetsplug.audiofeatures"

#: what each room may import of the adapter (besides itself)
MAY_IMPORT = {
    "commands": {"analysis", "search", "web", "settings", "floor"},
    "web": {"analysis", "search", "settings", "floor"},
    "search": {"analysis", "settings", "floor"},
    "analysis": {"settings", "floor"},
    "settings": {"floor"},
    "floor": {"floor"},
}
#: the modules that may name the commands' package: the plugin class
#: and the table itself
TABLE = {"beetsplug.audiofeatures", "beetsplug.audiofeatures.commands"}


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(ADAPTER.rglob("*.py")):
        parts = path.relative_to(ADAPTER).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join((PACKAGE, *parts))] = path
    return found


def imported(path: Path) -> set[str]:
    """The adapter modules ``path`` imports, at any depth in the file."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith(PACKAGE):
                names.add(node.module)
                names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names & set(modules())


def room(module: str) -> str:
    parts = module.removeprefix(PACKAGE).strip(".").split(".")
    return parts[0] if parts[0] in MAY_IMPORT else "floor"


ALL = modules()


@pytest.mark.parametrize("module", sorted(ALL))
def test_imports_run_down_the_rooms(module: str) -> None:
    if module == PACKAGE:
        return  # the plugin class loads the table and the settings
    own = room(module)
    wrong = {
        other
        for other in imported(ALL[module])
        if room(other) != own and room(other) not in MAY_IMPORT[own]
    }
    assert not wrong, f"{module} ({own}) imports {sorted(wrong)}"


@pytest.mark.parametrize("module", sorted(ALL))
def test_no_command_module_is_imported(module: str) -> None:
    if module in TABLE:
        return
    shared = {"options", "boundary", "parsers"}
    commands = {
        other
        for other in imported(ALL[module])
        if other.startswith(f"{PACKAGE}.commands.")
        and (room(module) != "commands" or other.rsplit(".")[-1] not in shared)
    }
    assert not commands, f"{module} imports {sorted(commands)}"


@pytest.mark.parametrize("module", sorted(ALL))
def test_modules_and_functions_stay_short(module: str) -> None:
    path = ALL[module]
    text = path.read_text()
    assert len(text.splitlines()) <= 400, f"{path.name} is over 400 lines"
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > 80
    ]
    assert not long, f"{path.name}: {long}"
