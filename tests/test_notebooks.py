"""The notebooks reproduce the source papers step by step, and run top to bottom.

Each notebook is executed in quick mode (``PLSIM_NOTEBOOK_MODE=quick``) in a fresh
kernel through nbclient, the executor behind ``jupyter nbconvert --execute``; the
executed copy must hold its figures and, for every claim it sets out (``## Claim N``,
with the source's sentence quoted), a verdict line computed from the run. The
committed copies hold no outputs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sim.validation import notebooks

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = notebooks.notebook_paths(ROOT)
SOURCES = {"01_when_logics_collide.ipynb", "02_pedal_to_the_metal.ipynb",
           "03_sweeps_and_sensitivity.ipynb"}


def test_one_notebook_per_source():
    assert {p.name for p in NOTEBOOKS} >= SOURCES


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path):
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert not notebooks.has_outputs(nb), f"{path.name}: strip its outputs before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_claim_quotes_its_source(path):
    cells = json.loads(path.read_text())["cells"]
    sections, current = {}, None
    for cell in cells:
        text = "".join(cell["source"])
        if cell["cell_type"] == "markdown" and text.startswith("## Claim"):
            current = text.split("—")[0].strip()
            sections[current] = text
        elif cell["cell_type"] == "markdown" and current:
            sections[current] += text
    assert len(sections) >= 3, f"{path.name}: fewer than 3 claims"
    for name, text in sections.items():
        quotes = [line for line in text.splitlines() if line.startswith(">")]
        assert quotes, f"{path.name}: {name} quotes no sentence of its source"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes_in_quick_mode(path):
    pytest.importorskip("nbclient")
    nb = notebooks.execute(path, mode="quick", timeout=600, root=ROOT)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors
    claims = notebooks.claims(nb)
    verdicts = notebooks.verdicts(nb)
    assert len(claims) >= 3
    assert notebooks.image_count(nb) >= 2, f"{path.name}: {notebooks.image_count(nb)} figures"
    assert sorted(verdicts) == sorted(claims), (
        f"{path.name}: claims {claims}, computed verdicts for {sorted(verdicts)}")
    assert set(verdicts.values()) <= {"holds", "falls short", "undecided"}
    assert "mode quick" in notebooks.outputs_text(nb)
