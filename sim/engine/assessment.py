"""Assessments: exit slips, the vertical-scale growth test and the state test.

* **Exit slip** — one short check of the day's skill: passed with
  probability ``1 - slip`` if mastered, ``guess`` if not.
* **Growth test** (fall, spring) — one vertical scale for all grades, as an
  adaptive test would measure it (no item draws): level = lowest grade +
  (skills mastered + credit x familiarity of unmastered skills) / skills per
  grade, plus normal error; reported as
  ``scale_intercept + scale_points_per_year * level``.
* **State test** (spring) — ``state_items_per_skill`` items on each skill of
  the *enrolled grade only*. An item is right with probability
  ``1 - state_slip`` if the skill is mastered; otherwise ``state_guess``
  plus ``familiarity_gain`` x familiarity, and on never-seen skills the
  guess rate shrinks with test anxiety. Score: percent correct. The cut is
  fixed by the statewide reference population (``sim.district.reference``).
"""

from __future__ import annotations

import numpy as np

from sim.engine.population import chunks


def exit_slip(u: np.ndarray, mastered: np.ndarray, guess: float, slip: float) -> np.ndarray:
    """Passed exit slips given uniform draws ``u`` and true mastery."""
    return u < np.where(mastered, 1.0 - slip, guess)


def familiarity_level(familiarity: np.ndarray, saturation_days: float) -> np.ndarray:
    """Familiarity in [0, 1] from days of exposure."""
    return np.minimum(familiarity.astype(np.float32) / saturation_days, 1.0)


def true_level(state, slots: np.ndarray, cur, credit: float, saturation_days: float):
    """Expected growth-test level (grade-years) of ``slots``, before measurement error."""
    out = np.empty(slots.size, np.float64)
    for part in chunks(slots.size):
        r = slots[part]
        m = state.mastery[r] > 0
        fam = np.where(m, 0.0, familiarity_level(state.familiarity[r], saturation_days))
        out[part] = m.sum(axis=1) + credit * fam.sum(axis=1)
    return cur.lowest_grade + out / cur.skills_per_grade


def growth_test(state, cur, a, saturation_days: float, noise: np.ndarray) -> np.ndarray:
    """Vertical scale scores of every slot (``a``: AssessmentParams).

    ``noise`` is a standard-normal draw per slot.
    """
    slots = np.arange(state.n)
    level = true_level(state, slots, cur, a.growth_familiarity_credit, saturation_days)
    level = level + a.growth_test_sem_years * noise
    return a.scale_intercept + a.scale_points_per_year * level


def scale_to_level(score: np.ndarray, a) -> np.ndarray:
    """Growth-test scale score back to grade-years."""
    return (score - a.scale_intercept) / a.scale_points_per_year


def item_success(mastered: np.ndarray, familiarity: np.ndarray, anxiety: np.ndarray, a,
                 saturation_days: float) -> np.ndarray:
    """P(right) on one state-test item per (student, skill)."""
    fam = familiarity_level(familiarity, saturation_days)
    unseen = familiarity == 0
    guess = (a.state_guess + a.familiarity_gain * fam) * np.where(
        unseen, 1.0 - a.unseen_anxiety_penalty * anxiety[:, None], 1.0)
    return np.where(mastered, 1.0 - a.state_slip, np.minimum(guess, 1.0))


def state_test(rng: np.random.Generator, state, cur, a, saturation_days: float,
               tested: np.ndarray) -> np.ndarray:
    """Percent correct (0-100) for every slot; NaN where ``tested`` is False.

    Items are on the enrolled grade's skills only. Draws for every slot so
    the stream stays aligned whoever sits the test.
    """
    spg, k = cur.skills_per_grade, a.state_items_per_skill
    out = np.full(state.n, np.nan)
    for part in chunks(state.n):
        u = rng.random((part.stop - part.start, spg, k), dtype=np.float32)
        r = np.arange(part.start, part.stop)
        sel = tested[part]
        if not sel.any():
            continue
        r = r[sel]
        cols = cur.first_skill(state.grade[r]).astype(np.int64)[:, None] + np.arange(spg)
        cols = np.clip(cols, 0, cur.n_skills - 1)
        p = item_success(state.mastery[r[:, None], cols] > 0, state.familiarity[r[:, None], cols],
                         state.anxiety[r], a, saturation_days)
        right = (u[sel] < p[:, :, None]).sum(axis=(1, 2))
        out[r] = 100.0 * right / (spg * k)
    return out
