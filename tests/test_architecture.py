"""The package's rooms import one way (docs/architecture.md): from the ground up, no cycle,
no private name across modules, no code loaded by file path."""

from __future__ import annotations

import ast
from pathlib import Path

SIM = Path(__file__).resolve().parents[1] / "sim"
# bottom to top: a room may import rooms at or below its own rank
RANK = {"config": 0, "engine": 1, "policies": 2, "accountability": 3, "district": 4,
        "analysis": 5, "experiments": 6, "validation": 7, "presentation": 8, "cli": 9,
        "__main__": 9, "__init__": -1}


def _imports(path: Path):
    """(module imported, name imported) for every sim import in a file, at any depth."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sim"):
            for a in node.names:
                yield node.module, a.name
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("sim"):
                    yield a.name, None


def _room(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_every_module_sits_in_a_known_room():
    rooms = {p.name for p in SIM.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert rooms <= set(RANK), rooms - set(RANK)
    loose = {p.stem for p in SIM.glob("*.py")}
    assert loose <= {"__init__", "__main__", "cli"}, loose


def test_imports_run_one_way_and_name_no_private():
    bad = []
    for f in SIM.rglob("*.py"):
        rel = f.relative_to(SIM.parent).with_suffix("")
        here = rel.parts[1] if len(rel.parts) > 1 else rel.parts[0]
        for module, name in _imports(f):
            room = _room(module) if module != "sim" else None
            if room is None and name and module == "sim":
                room = name if name in RANK else None
            if room in RANK and RANK[room] > RANK.get(here, 99):
                bad.append(f"{rel} ({here}) imports {module} ({room})")
            if name and name.startswith("_") and not name.startswith("__"):
                bad.append(f"{rel} imports private {module}.{name}")
        assert "spec_from_file_location" not in f.read_text(), f
    assert not bad, "\n".join(bad)
