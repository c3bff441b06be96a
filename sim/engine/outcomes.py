"""Outcomes: what each student-year leaves behind, accumulated during the year.

``YearLog`` holds per-slot accumulators for one school year;
``student_year_rows`` turns them into the ``student_years`` table (one row
per student-year).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

BANDS = ("3+ below", "1-3 below", "on grade", "above")
BAND_EDGES = (-3.0, -1.0, 1.0)  # years relative to the enrolled grade


def start_band(offset_years: np.ndarray) -> np.ndarray:
    """Starting-achievement band from the entry level minus grade (years)."""
    return np.asarray(BANDS, dtype=object)[np.searchsorted(BAND_EDGES, offset_years,
                                                           side="right")]


class YearLog:
    """Per-slot accumulators for one school year (all arrays of length n)."""

    def __init__(self, n: int):
        self.n = n
        self.fall_score = np.full(n, np.nan)
        self.spring_score = np.full(n, np.nan)
        self.state_score = np.full(n, np.nan)
        self.days_present = np.zeros(n, np.int16)
        self.days_grade_level = np.zeros(n, np.int16)
        self.days_mastered = np.zeros(n, np.int16)
        self.lowest_offset = np.full(n, np.iinfo(np.int16).max, np.int16)
        self.switches = np.zeros(n, np.int16)
        self.engagement_sum = np.zeros(n, np.float64)
        self.tutored = np.zeros(n, bool)
        self.tutoring_sessions = np.zeros(n, np.int16)
        self.skills_gained = np.zeros(n, np.int32)
        self.days_off_pace = np.zeros(n, np.int16)
        self.advisory_sessions = np.zeros(n, np.int16)

    def record_day(self, slots, content_offset, already, switched, engagement) -> None:
        """Add one instructional day for the present ``slots``. In numpy: the day's
        block runs this compiled and fused (``kernels.day_block``), which is tested
        against this."""
        self.days_present[slots] += 1
        self.days_grade_level[slots] += content_offset == 0
        self.days_mastered[slots] += already
        self.lowest_offset[slots] = np.minimum(self.lowest_offset[slots], content_offset)
        self.switches[slots] += switched
        self.engagement_sum[slots] += engagement


def student_year_rows(model, log: YearLog, cut: np.ndarray, fall_sd: np.ndarray) -> pd.DataFrame:
    """The student_years rows of the year just finished.

    Args:
        cut: state-test cut (percent correct) indexed by grade.
        fall_sd: reference SD of fall growth-test scores (scale points) by grade.
    """
    st = model.students
    g = st.grade.astype(int)
    days = np.maximum(log.days_present, 1)
    tested = ~np.isnan(log.state_score)
    proficient = pd.array(np.where(tested, log.state_score >= cut[g], False), dtype="boolean")
    proficient[~tested] = pd.NA
    lowest = np.where(log.days_present > 0, log.lowest_offset, 0)
    return pd.DataFrame({
        "arm": model.arm.label,
        "replicate": model.replicate,
        "year": model.reported_year,
        "school": st.school,
        "student": st.student_id,
        "grade": g,
        "in_program": model.in_program,
        "program_grade": np.isin(g, model.params.district.program_grades),
        "teacher": st.teacher,
        "room": st.room,
        "start_band": pd.Categorical(start_band(st.baseline_offset), categories=BANDS),
        "baseline_offset": st.baseline_offset.astype(float),
        "fall_score": log.fall_score,
        "spring_score": log.spring_score,
        "growth_sd": (log.spring_score - log.fall_score) / fall_sd[g],
        "state_score": log.state_score,
        "proficient": proficient,
        "grade_level_share": log.days_grade_level / days,
        "mastered_share": log.days_mastered / days,
        "lowest_offset": lowest.astype(np.int16),
        "switches": log.switches,
        "engagement": log.engagement_sum / days,
        "anxiety": st.anxiety.astype(float),
        "days_present": log.days_present,
        "skills_gained": log.skills_gained,
        "tutored": log.tutored,
        "tutoring_sessions": log.tutoring_sessions,
        "off_pace_share": log.days_off_pace / days,
        "advisory_sessions": log.advisory_sessions,
    })
