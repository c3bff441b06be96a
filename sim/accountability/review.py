"""The district's review of the program.

The district reviews the program ``after_years`` years in: a school whose
share proficient has not risen by ``min_improvement`` over the year before
the program (or, without a burn-in year, over the program's first year)
drops it for good and returns to traditional pacing. From then on the review
is repeated every year.
"""

from __future__ import annotations


def fails_review(years_active: int, proficiency: float, before: float, review) -> bool:
    """Whether the district drops the program at a school at this review."""
    return (review is not None and years_active >= review.after_years
            and proficiency - before < review.min_improvement)
