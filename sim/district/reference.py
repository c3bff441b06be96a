"""The statewide reference population: the fixed proficiency cut and fall SDs.

The state sets its proficiency cut once, on a statewide population; it is
never re-fitted to a district, an arm or a scenario's results. plsim builds
that population as a district with the statewide mean (``mean_offset_sd =
0``), no program, traditional pacing, its own fixed seed, and the
scenario's mechanisms; runs the burn-in and then one school year; and takes

* the state-test cut of each tested grade: the scale score that leaves
  ``reference_proficient_share`` of the reference cohort proficient;
* the mean and SD of each grade's fall growth-test score, the unit of
  ``growth_sd``;
* how well the tests measure there: the state test's marginal reliability
  and mean SEM by grade, and the fall growth test's mean SEM in fall SDs.

The result depends only on mechanism parameters, never on the district,
the arms or the scenario seed. It is cached per process and on disk
(``sim.district.cache``: keyed by those parameters and the engine's code
version), so every sample, worker and Dask task of a sweep reuses it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from threadpoolctl import threadpool_limits

from sim.config.scenario import validate_scenario
from sim.district import spinup
from sim.district.cache import cached_dataclass
from sim.district.model import District
from sim.engine.assessment import reliability, scale_to_level

REFERENCE_SEED = 20150901  # fixed: the reference never moves with a scenario's seed
REFERENCE_LINES = 1  # one classroom per grade: many schools, so school effects average out


@dataclass(frozen=True)
class StateReference:
    """Cut and fall-score statistics by grade (arrays indexed by grade)."""

    cut_by_grade: np.ndarray        # state-test scale score; NaN for untested grades
    fall_mean_by_grade: np.ndarray  # scale points
    fall_sd_by_grade: np.ndarray    # scale points
    cut_fall_level: np.ndarray      # fall level (grade-years) at the cut's quantile
    proficient_share: float
    state_reliability: np.ndarray   # marginal reliability of the state test; NaN untested
    state_sem: np.ndarray           # mean state-test SEM (scale points)
    fall_sem_sd: np.ndarray         # mean fall growth-test SEM (SD of the fall scores)

    def cut_level_offset(self, grade: np.ndarray) -> np.ndarray:
        """Fall level relative to grade (years) that predicts the cut."""
        return self.cut_fall_level[grade] - grade


_MECHANISMS = ("population", "teachers", "curriculum", "calendar", "learning", "affect",
               "assessment", "traditional", "evaluation", "sensemaking")


def reference_parameters(scenario) -> dict:
    """Every scenario value the statewide reference depends on (the cache key's parameters)."""
    key = {k: getattr(scenario, k).model_dump(mode="json") for k in _MECHANISMS}
    key["class_size"] = scenario.district.class_size
    key["grades"] = sorted(scenario.district.grades)
    return key


def state_reference(scenario) -> StateReference:
    """The statewide reference for a scenario's mechanisms (cached in process and on disk)."""
    return _reference_from_key(json.dumps(reference_parameters(scenario), sort_keys=True))


def district_for(scenario, arm, replicate: int = 0, *, spun_up: bool = False) -> District:
    """A district for one arm and replicate, with the scenario's statewide reference: as
    generated, before any instruction (``run`` then runs the spin-up itself), or with
    ``spun_up=True`` started from the replicate's shared, cached spin-up
    (``sim.district.spinup``; the same tables, the spin-up computed once)."""
    ref = state_reference(scenario)
    start = spinup.spun_up(scenario, replicate, ref) if spun_up else None
    return District(scenario, arm, replicate, reference=ref, start=start)


@lru_cache(maxsize=32)
def _reference_from_key(key: str) -> StateReference:
    return cached_dataclass("state_reference", json.loads(key), StateReference,
                            lambda: _compute_reference_on_one_thread(key))


def _compute_reference_on_one_thread(key: str) -> StateReference:
    """The reference with the BLAS on one thread, as every run is (``runner.run_arm``): it
    is computed in the parent before any run, where OpenBLAS's threads spun on both cores
    for its small products (floor_strategies x 2: 9.9 CPU-s, 2.4 on one thread). The sums
    are exact in any order, so the reference does not depend on it."""
    with threadpool_limits(limits=1, user_api="blas"):
        return _compute_reference(key)


def _compute_reference(key: str) -> StateReference:
    spec = json.loads(key)
    grades, class_size = spec.pop("grades"), spec.pop("class_size")
    n = spec["assessment"]["reference_students_per_grade"]
    schools = max(2, math.ceil(n / (REFERENCE_LINES * class_size)))
    ref = validate_scenario({
        **spec, "name": "statewide-reference", "seed": REFERENCE_SEED, "years": 1,
        "district": {"schools": schools, "grades": grades, "classes_per_grade": REFERENCE_LINES,
                     "class_size": class_size, "program_grades": [], "mean_offset_sd": 0.0,
                     "mobility": 0.0},
        "arms": [{"label": "traditional", "pacing": "traditional"}],
    }, "<statewide reference>")
    district = District(ref, ref.arms[0], reference=_PENDING)
    district.burn_in()
    district.run_days()
    return _summarise(district, ref)


def _summarise(district, ref) -> StateReference:
    st, log, a = district.students, district.log, ref.assessment
    top = district.curriculum.highest_grade + 1
    cut, mean, sd, cut_level, rel, sem, fall_sem = (np.full(top + 1, np.nan) for _ in range(7))
    q = 1.0 - a.reference_proficient_share
    for g in np.unique(st.grade):
        sel = st.grade == g
        fall = log.fall_score[sel]
        mean[g], sd[g] = fall.mean(), fall.std(ddof=1)
        fall_sem[g] = district.fall_sem[sel].mean() / sd[g]
        cut_level[g] = np.quantile(scale_to_level(fall, a), q)
        if g in a.tested_grades:
            cut[g] = impact_cut(log.state_score[sel], a.reference_proficient_share)
            rel[g] = reliability(log.state_score[sel], district.state_sem[sel])
            sem[g] = district.state_sem[sel].mean()
    return StateReference(cut, mean, sd, cut_level, a.reference_proficient_share, rel, sem,
                          fall_sem)


def impact_cut(scores: np.ndarray, share: float) -> float:
    """The attained score whose share of scores at or above it is closest to ``share``.

    Scale scores are EAP estimates, nearly continuous, but response patterns
    can tie; the state picks the cut with the intended impact.
    """
    ordered = np.sort(scores)
    levels = np.unique(ordered)
    at_or_above = 1.0 - np.searchsorted(ordered, levels, side="left") / ordered.size
    return float(levels[np.argmin(np.abs(at_or_above - share))])


class _Pending:
    """Stand-in while the reference itself runs (it needs no cut)."""

    cut_by_grade = np.full(64, np.nan)
    fall_sd_by_grade = np.ones(64)

    @staticmethod
    def cut_level_offset(grade):
        return np.zeros(np.shape(grade))


_PENDING = _Pending()
