"""A fingerprint of one school year of every arm of the bench's mix: bit-identity checks.

Runs ``start_year()`` and every day of one year of each arm of
``sim.experiments.bench.mix_scenario`` (``floor_strategies``' arms, teachers
drifting) at about ``--students`` students, then hashes (SHA-256, first 16 hex
digits) every numpy array the year leaves in the students' state, the
exit-slip record, the tracks, the year log (scores and SEMs included) and the
staff. Prints one line per arm and one over all arms.

Used to check that a speed change leaves results bit-identical, and that
results are the same on machines with other CPUs: numpy's SIMD paths can be
switched off (``NPY_DISABLE_CPU_FEATURES="X86_V4 AVX512_ICL AVX512_SPR"``) and
OpenBLAS's kernel chosen (``OPENBLAS_CORETYPE=Haswell``) to run as an AVX2
machine would. Run with ``PLSIM_NO_CACHE=1`` there, so the statewide reference
and the item bank are computed by the machine being checked, not read from
the disk cache.

The suite holds the default run's digests (``tests/golden/fingerprint.json``,
checked by ``tests/test_golden.py``): a change that alters results on purpose
rewrites them with ``--write``, and the commit says why.

Usage::

    .venv/bin/python benchmarks/fingerprint.py                 # 9,900 students
    .venv/bin/python benchmarks/fingerprint.py --students 2000 --arms traditional
    .venv/bin/python benchmarks/fingerprint.py --write         # update the golden file
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

from sim.district.reference import state_reference
from sim.experiments import bench

PARTS = ("students", "record", "tracks", "log", "staff")
GOLDEN = Path(__file__).resolve().parents[1] / "tests" / "golden" / "fingerprint.json"
STUDENTS, SEED = 10_000, 3  # the golden run


def arrays_of(obj) -> dict[str, np.ndarray]:
    """The numpy arrays among ``obj``'s attributes, by name."""
    return {k: v for k, v in sorted(vars(obj).items()) if isinstance(v, np.ndarray)}


def year_digest(scenario, arm_index: int, reference) -> str:
    """SHA-256 (16 hex digits) of the state one year of one arm leaves."""
    district = bench.mix_district(scenario, arm_index, reference)
    district.start_year()
    for day in range(scenario.calendar.days):
        district.day = day
        district.step()
    h = hashlib.sha256()
    for part in PARTS:
        for name, a in arrays_of(getattr(district, part)).items():
            h.update(f"{part}.{name}:{a.dtype}:{a.shape}".encode())
            h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def fingerprints(students: int, seed: int, arms=None, echo=None) -> dict:
    """Each arm's digest (``year_digest``, by label, in the mix's order) and one over
    them all (``"all"``, SHA-256 of the digests in order, 16 hex digits)."""
    scenario = bench.mix_scenario(students, seed)
    reference = state_reference(scenario)
    labels = [a.label for a in scenario.arms]
    total = hashlib.sha256()
    out = {}
    for label in arms or labels:
        out[label] = year_digest(scenario, labels.index(label), reference)
        total.update(out[label].encode())
        if echo:
            echo(f"{label:20s} {out[label]}")
    return {"arms": out, "all": total.hexdigest()[:16]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=STUDENTS)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--arms", nargs="+", help="arm labels (default: every arm)")
    parser.add_argument("--write", action="store_true",
                        help=f"write the digests to {GOLDEN.relative_to(GOLDEN.parents[2])} "
                             "(the default students, seed and arms only)")
    args = parser.parse_args()
    if args.write and (args.students, args.seed, args.arms) != (STUDENTS, SEED, None):
        parser.error("--write records the default run only (no --students, --seed, --arms)")
    result = fingerprints(args.students, args.seed, args.arms,
                          echo=lambda line: print(line, flush=True))
    print(f"{'all':20s} {result['all']}")
    if args.write:
        GOLDEN.write_text(json.dumps({"command": "python benchmarks/fingerprint.py --write",
                                      "students": STUDENTS, "seed": SEED, **result},
                                     indent=2) + "\n")
        print(f"wrote {GOLDEN}")


if __name__ == "__main__":
    main()
