"""The district's review of the program, school by school.

Each school is reviewed on its own evidence, with the heterogeneity real
districts have, all from the ``review`` random stream (the same in every arm):

* **timing**: a school's first review comes ``after_years + offset`` program
  years in (at least 1), ``offset`` drawn uniformly from ``-timing_spread ..
  timing_spread``, plus one year for a share ``late_share`` of schools (a delay only
  postpones: terms end and boards meet at different times); from then on it is
  reviewed every year;
* **noise**: the district sees each school's program-grade share proficient
  and mean growth with noise (``proficiency_noise_sd``, ``growth_noise_sd``),
  fresh each year, the year before the program included;
* **evidence**: the gain over the year before the program (or, without a
  burn-in year, over the program's first year) in share proficient, in mean
  growth (fall SD), or both; each gain minus its bar (``min_improvement``,
  ``min_growth_gain``) in units of its scale (``proficiency_scale``,
  ``growth_scale``) is the school's case; under ``both`` each school's case
  weighs growth by its own weight, drawn uniformly in 0-1;
* **leniency**: ``leniency_sd x z`` evidence units (``z ~ N(0, 1)``, once per
  school) are added to the case.

A school whose case plus leniency is below zero drops the program for good
and returns to traditional pacing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ReviewDraws:
    """Each school's review heterogeneity, drawn once per replicate (same in every arm).

    Attributes:
        leniency: z (N(0, 1)) of each school's leniency.
        offset: years added to ``after_years`` for each school's first review.
        growth_weight: weight (0-1) each school's case gives growth under ``evidence = "both"``.
    """

    leniency: np.ndarray
    offset: np.ndarray
    growth_weight: np.ndarray


def review_draws(rng: np.random.Generator, n_schools: int, review) -> ReviewDraws:
    """Per-school draws, made in a fixed order whatever the settings (common random numbers)."""
    z = rng.standard_normal(n_schools)
    u = rng.random(n_schools)
    w = rng.random(n_schools)
    late = rng.random(n_schools)  # drawn last: the draws above are the same with or without it
    spread = review.timing_spread if review is not None else 0
    share = review.late_share if review is not None else 0.0
    offset = np.floor(u * (2 * spread + 1)).astype(int) - spread + (late < share)
    return ReviewDraws(z, offset, w)


def first_review(review, offset: int) -> int:
    """Program year of a school's first review (at least 1)."""
    return max(1, review.after_years + int(offset))


def evidence_score(gain_proficiency: float, gain_growth: float, growth_weight: float,
                   review) -> float:
    """The school's case in units of evidence: how far its observed gains clear the bars.

    ``(gain_proficiency - min_improvement) / proficiency_scale`` for proficiency,
    ``(gain_growth - min_growth_gain) / growth_scale`` for growth; for both, their
    mix with the school's weight on growth. NaN when a needed gain is missing.
    """
    m_p = (gain_proficiency - review.min_improvement) / review.proficiency_scale
    m_g = (gain_growth - review.min_growth_gain) / review.growth_scale
    if review.evidence == "proficiency":
        return m_p
    if review.evidence == "growth":
        return m_g
    return (1.0 - growth_weight) * m_p + growth_weight * m_g


def fails_review(years_active: int, first_year: int, score: float, leniency_z: float,
                 review) -> bool:
    """Whether the district drops the program at a school at this review: reviewed from its
    first review year on, and its case plus its leniency falls below zero (a missing case
    never fails)."""
    return (review is not None and years_active >= first_year
            and score + review.leniency_sd * leniency_z < 0)
