"""The notebooks run from top to bottom (in their quick mode)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted(Path("notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path, monkeypatch, capsys):
    monkeypatch.setenv("PLSIM_NOTEBOOK_QUICK", "1")
    cells = json.loads(path.read_text())["cells"]
    namespace: dict = {}
    for cell in cells:
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), f"{path.name}", "exec"), namespace)
    assert len(namespace["rows"]) > 0
    assert set(namespace["summary"].arm.unique()) == {a.label for a in namespace["scenario"].arms}
    assert "Student(" in capsys.readouterr().out
