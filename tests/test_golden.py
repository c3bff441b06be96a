"""Results stay bit-identical: one school year of every arm of the bench's mix leaves the
state whose digests ``tests/golden/fingerprint.json`` holds (``benchmarks/fingerprint.py``).

A change meant to alter results rewrites the golden file deliberately
(``python benchmarks/fingerprint.py --write``) and says why in its commit; any other
change must leave it as it is."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_one_year_of_every_arm_is_bit_identical_to_the_golden_run():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import fingerprint
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    golden = json.loads(fingerprint.GOLDEN.read_text())
    assert (golden["students"], golden["seed"]) == (fingerprint.STUDENTS, fingerprint.SEED)
    got = fingerprint.fingerprints(golden["students"], golden["seed"])
    assert got["arms"] == golden["arms"], (
        "results changed; if on purpose: python benchmarks/fingerprint.py --write")
    assert got["all"] == golden["all"]
