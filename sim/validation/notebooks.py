"""The notebooks that reproduce the source papers: execute them and render them to HTML.

``notebooks/*.ipynb`` are committed without outputs. Each reads
``PLSIM_NOTEBOOK_MODE``: ``quick`` (small: what the tests run) or ``full`` (the
shipped scenarios as they are). ``plsim notebooks`` (``make notebooks``) executes
every notebook in a fresh kernel (nbclient, the executor behind ``jupyter
nbconvert --execute``) from the repository root and writes the executed copy and an
HTML rendering (nbconvert) under ``results/notebooks/``, each written under a
temporary name and renamed.

nbclient, nbconvert, nbformat and ipykernel come with the ``notebooks`` extra (and
``dev``).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from sim.experiments.storage import atomic_write
from sim.validation.claims import VERDICT_LINE

MODES = ("quick", "full")
MODE_VARIABLE = "PLSIM_NOTEBOOK_MODE"
CLAIM_HEADING = r"^## Claim (\d+)\b"  # a claim's markdown section


def notebook_paths(root: Path | None = None) -> list[Path]:
    """The project's notebooks (``notebooks/*.ipynb`` under ``root``, default the working
    directory), in order."""
    return sorted(((root or Path.cwd()) / "notebooks").glob("*.ipynb"))


def execute(path: Path, mode: str = "quick", timeout: int = 1800, root: Path | None = None):
    """Run a notebook top to bottom in a fresh kernel (working directory ``root``,
    default the current one: the repository).

    Args:
        path: the ``.ipynb`` file (left unchanged).
        mode: ``quick`` or ``full``, passed to the kernel as ``PLSIM_NOTEBOOK_MODE``.
        timeout: seconds allowed for one cell.
    Returns:
        The executed notebook (an ``nbformat.NotebookNode``); a failing cell raises
        ``nbclient.exceptions.CellExecutionError`` naming the cell and the error.
    """
    import nbformat
    from nbclient import NotebookClient

    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    nb = nbformat.read(path, as_version=4)
    env = {**os.environ, MODE_VARIABLE: mode}
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(root or Path.cwd())}})
    client.execute(env=env)
    return nb


def outputs_text(nb) -> str:
    """All text a notebook's code cells printed (streams and plain-text results)."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if out.output_type == "stream":
                parts.append(out.text)
            elif "text/plain" in out.get("data", {}):
                parts.append(out["data"]["text/plain"])
    return "\n".join(parts)


def image_count(nb) -> int:
    """Number of image outputs (figures) in a notebook."""
    return sum(1 for cell in nb.cells if cell.cell_type == "code"
               for out in cell.get("outputs", [])
               if any(k.startswith("image/") for k in out.get("data", {})))


def claims(nb) -> list[int]:
    """Numbers of the claims a notebook's markdown sets out (``## Claim N``)."""
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    return [int(n) for n in re.findall(CLAIM_HEADING, text, re.M)]


def verdicts(nb) -> dict[int, str]:
    """Claim number -> computed verdict (``holds`` / ``falls short``) printed by an
    executed notebook."""
    found = re.findall(VERDICT_LINE, outputs_text(nb), re.M)
    return {int(n): word for n, word in found}


def has_outputs(nb) -> bool:
    """Whether any code cell holds outputs or an execution count (committed copies must
    not: they are stripped)."""
    return any(c.get("outputs") or c.get("execution_count") is not None
               for c in nb.cells if c.cell_type == "code")


def strip_outputs(nb):
    """The notebook with every code cell's outputs and execution count removed."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb


def render(paths: list[Path], out: Path, mode: str = "full") -> list[Path]:
    """Execute each notebook and write ``out/<name>.ipynb`` (executed) and
    ``out/<name>.html``; returns the files written. Progress goes to stdout."""
    import nbformat
    from nbconvert import HTMLExporter

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in paths:
        start = time.time()
        nb = execute(path, mode)
        html, _ = HTMLExporter().from_notebook_node(nb)
        ipynb = out / path.name
        page = out / f"{path.stem}.html"
        atomic_write(ipynb, lambda p, nb=nb: nbformat.write(nb, p))
        atomic_write(page, lambda p, html=html: p.write_text(html, encoding="utf-8"))
        written += [ipynb, page]
        found = verdicts(nb)
        held = sum(1 for w in found.values() if w == "holds")
        print(f"{path.name}: {len(found)} claims ({held} hold), {image_count(nb)} figures, "
              f"{time.time() - start:.0f} s -> {page}")
    return written
