"""The compiled kernels of the daily cycle compute exactly what their plain-numpy
counterparts compute (bit for bit), on random records and curricula."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from sim.engine import kernels
from sim.engine.curriculum import generate_curriculum
from sim.engine.learning import prerequisite_status, prerequisite_status_numpy
from sim.engine.records import pack
from sim.policies.pacing import first_missing_ancestor, first_missing_ancestor_numpy


@pytest.fixture(scope="module")
def cur():
    return generate_curriculum(np.random.default_rng(5), 0, 8, 4, 5, 1, 0.3)


def _state(cur, n: int, seed: int, density: float):
    rng = np.random.default_rng(seed)
    mastery = (rng.random((n, cur.n_skills)) < density).astype(np.uint8) * rng.integers(
        1, 3, (n, cur.n_skills), dtype=np.uint8)
    believed = rng.random((n, cur.n_skills)) < density
    slots = rng.permutation(n)[: n // 2].astype(np.int64)
    skills = rng.integers(0, cur.n_skills, slots.size).astype(np.int64)
    return rng, mastery, believed, slots, skills


@pytest.mark.parametrize("density", [0.0, 0.3, 0.9, 1.0])
def test_prerequisite_status_matches_numpy(cur, density):
    _, mastery, _, slots, skills = _state(cur, 400, 1, density)
    r, f = prerequisite_status(mastery, slots, skills, cur.prereqs)
    r0, f0 = prerequisite_status_numpy(mastery, slots, skills, cur.prereqs)
    assert r.dtype == r0.dtype == np.float32 and f.dtype == f0.dtype
    assert np.array_equal(r, r0) and np.array_equal(f, f0)


@pytest.mark.parametrize("density", [0.0, 0.5, 0.95, 1.0])
def test_first_missing_ancestor_matches_numpy(cur, density):
    rng, _, believed, slots, target = _state(cur, 400, 2, density)
    lo = rng.integers(0, cur.n_skills, slots.size).astype(np.int64)
    lo[::3] = 0
    model = SimpleNamespace(record=SimpleNamespace(
        bits=pack(believed), knows=lambda r, s: believed.reshape(-1)[r * cur.n_skills + s]),
        curriculum=cur)
    got = first_missing_ancestor(model, slots, target, lo)
    assert np.array_equal(got, first_missing_ancestor_numpy(model, slots, target, lo))


def test_first_unknown_in(cur):
    _, _, believed, slots, _ = _state(cur, 300, 3, 0.7)
    start = np.random.default_rng(4).integers(0, cur.n_skills - 5, slots.size).astype(np.int64)
    got = kernels.first_unknown_in(pack(believed), slots, start, 5)
    cols = start[:, None] + np.arange(5)[None, :]
    open_ = ~believed[slots[:, None], cols]
    want = np.where(open_.any(axis=1), start + np.argmax(open_, axis=1), -1)
    assert np.array_equal(got, want)


def test_empty_inputs(cur):
    empty = np.zeros(0, np.int64)
    r, f = prerequisite_status(np.zeros((3, cur.n_skills), np.uint8), empty, empty, cur.prereqs)
    assert r.size == 0 and f.size == 0


@pytest.mark.parametrize("error_years", [0.0, 0.3, 2.0])
def test_diagnostic_read_matches_numpy(cur, error_years):
    from sim.engine.records import Diagnostic

    rng = np.random.default_rng(int(error_years * 10))
    diag = Diagnostic(cur, error_years, 0.5, 0.1)
    level = rng.uniform(cur.lowest_grade - 1, cur.highest_grade + 2, 600)
    truth = rng.random((600, cur.n_skills)) < 1 / (1 + np.exp(-(level[:, None]
                                                                 - diag.position[None, :])))
    level_error = rng.standard_normal(600).astype(np.float32)
    misread_u = rng.random((600, cur.n_skills), dtype=np.float32)
    misread_u[::7] = np.float32(0.1)  # on the misread boundary
    got = diag.read(truth, level_error, misread_u)
    want = diag.read_numpy(truth, level_error, misread_u)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype == bool and np.array_equal(g, w)
