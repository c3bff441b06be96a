"""Out-of-school learning: what a student learns or loses away from school, each summer.

Summer change varies widely across students and accrues to the same students summer after
summer (Atteberry & McEachin 2021, "School's Out", AERJ 58: some students keep their
school-year rate over the summer, others lose nearly all of the year's progress; 52% lost
ground in all five summers observed, in reading), and the achievement gap by family
background at grade 9 traces mainly to differential summer learning in the elementary
years (Alexander, Entwisle & Olson 2007, "faucet theory": learning resources run for
everyone during the school year, out of school only for some).

Each student carries a persistent *intensity* ``outside`` (grade-years per summer), drawn
at enrolment:

    outside = outside_sd_years * (weight * community + sqrt(1 - weight^2 * w_s) * e)

``community`` is the district's offset plus the school's term of the starting level (SD of
the level distribution, ``population.school_term``), ``weight`` =
``learning.outside_community_weight``, ``w_s`` = ``population.share_between_schools`` and
``e`` a fresh standard normal: in the statewide population (offset 0) the intensity has
mean 0 and SD ``outside_sd_years``, and a district ``x`` SD below the state is ``weight *
x`` SD below it out of school too. Each summer the student's mastery moves by
``outside * skills_per_grade`` skills (rounded at random to a whole number, so the mean is
exact) on their own frontier: a gain masters the lowest-placed skills they lack (gaps
first, then beyond their level, beyond the grade for some); a loss takes the highest-placed
skills they hold. It acts in summer only: during the school year the faucet runs for all.
"""

from __future__ import annotations

import numpy as np

from sim.config.parameters import LearningParams
from sim.engine.population import chunks
from sim.engine.students import MASTERED_BEFORE, NOT_MASTERED


def draw_intensity(rng: np.random.Generator, community: np.ndarray, lp: LearningParams,
                   share_between_schools: float) -> np.ndarray:
    """Persistent out-of-school intensity of students whose ``community`` (district offset
    plus school term, SD) is given: the change it makes each summer, grade-years (float32).

    Draws one standard normal per student whatever the parameters (the stream's use does not
    depend on them)."""
    w = lp.outside_community_weight
    e = rng.standard_normal(community.size)
    v = w * np.asarray(community, float) + np.sqrt(1.0 - w * w * share_between_schools) * e
    return (lp.outside_sd_years * v).astype(np.float32)


def summer_counts(intensity: np.ndarray, skills_per_grade: int, u: np.ndarray) -> np.ndarray:
    """Signed number of skills each student gains (+) or loses (-) this summer: the intensity
    in skills, rounded down or up at random (``u`` uniform in [0, 1)) so its mean is exact."""
    return np.floor(intensity.astype(float) * skills_per_grade + u).astype(np.int32)


def apply_summer(mastery: np.ndarray, familiarity: np.ndarray, counts: np.ndarray,
                 familiar_days: int) -> np.ndarray:
    """Move each student's mastery by ``counts`` skills on their frontier, in place.

    ``mastery`` holds codes 0/1 only (after the summer's loss of fresh mastery); skill ids
    run in curriculum order. A gain of ``k`` masters the ``k`` lowest skills not mastered
    (code 1) and makes them familiar (``familiar_days``, as at enrolment); a loss of ``k``
    unmasters the ``k`` highest skills mastered (their familiarity stays: they were seen).
    Returns the realised change per student (skills; smaller than asked only where the
    curriculum runs out)."""
    done = np.zeros(counts.size, np.int32)
    for part in chunks(counts.size):
        k = counts[part, None]
        if not k.any():
            continue
        m = mastery[part]
        held = m != NOT_MASTERED
        lacking = ~held
        gain = lacking & (np.cumsum(lacking, axis=1, dtype=np.int16) <= k)
        from_top = np.cumsum(held[:, ::-1], axis=1, dtype=np.int16)[:, ::-1]
        lose = held & (from_top <= -k)
        mastery[part] = np.where(gain, MASTERED_BEFORE, np.where(lose, NOT_MASTERED, m))
        familiarity[part] = np.where(gain, np.maximum(familiarity[part], familiar_days),
                                     familiarity[part])
        done[part] = gain.sum(axis=1) - lose.sum(axis=1)
    return done
