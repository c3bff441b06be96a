"""Calibration: the model's versions of the public facts of design brief §9.

``calibration_report(scenario)`` runs the scenario's district under
traditional pacing (and a statewide-mean district) and measures what the
facts describe. Nothing here feeds back into the model: it reports.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.config.parameters import ArmSettings
from sim.district.model import District
from sim.district.reference import district_for
from sim.engine.assessment import true_level
from sim.engine.population import variance_split

NWEA_GROWTH_SD = {3: 0.97, 4: 0.82, 5: 0.60, 6: 0.63, 7: 0.38, 8: 0.37}
SCAMMACCA_ES = {10: 0.75, 25: 0.58, 50: 0.43}  # grade 5-6 annual effect size by percentile
TARGET_SPLIT = {"within_class": 0.62, "between_teachers": 0.18, "between_schools": 0.20}


def traditional_run(scenario, mean_offset_sd: float | None = None, years: int = 2,
                    replicate: int = 0) -> tuple[District, pd.DataFrame]:
    """The scenario's district (or one with another mean) under traditional pacing."""
    district = scenario.district.model_copy(
        update={} if mean_offset_sd is None else {"mean_offset_sd": mean_offset_sd})
    sc = scenario.model_copy(update={"district": district, "years": years,
                                     "arms": [ArmSettings(label="traditional",
                                                          pacing="traditional")]})
    model = district_for(sc, sc.arms[0], replicate, spun_up=True)  # spin-up shared, cached
    return model, model.run()["student_years"]


def entry_variance_split(scenario, grade: int = 5, schools: int = 60) -> dict:
    """Variance split of the entry level (before any instruction) at one grade.

    Uses the scenario's population parameters in a district of ``schools``
    schools, so that the between-school share is estimated with some precision.
    """
    # random schools (an imported district's known ones would not fill 60 schools)
    district = scenario.district.model_copy(update={"schools": schools, "cohort_offsets_sd": []})
    model = district_for(scenario.model_copy(update={"district": district}), scenario.arms[0])
    st = model.students
    sel = np.flatnonzero(st.grade == grade)
    level = true_level(st, sel, model.curriculum, 0.0, 1.0)
    cls = st.school[sel] * district.classes_per_grade + st.line[sel]
    return variance_split(level, st.school[sel], cls)


def growth_by_grade(rows: pd.DataFrame) -> pd.Series:
    return rows[rows.year == 1].groupby("grade")["growth_sd"].mean()


def growth_by_percentile(rows: pd.DataFrame, grades=(5, 6)) -> pd.Series:
    """Mean annual growth (fall SD) of students near fall percentiles 10, 25, 50."""
    y = rows[(rows.year == 1) & rows.grade.isin(grades)].copy()
    y["pct"] = y.groupby("grade")["fall_score"].rank(pct=True) * 100
    return pd.Series({p: y.loc[(y.pct - p).abs() <= 5, "growth_sd"].mean()
                      for p in SCAMMACCA_ES})


def summer_loss(rows: pd.DataFrame) -> pd.DataFrame:
    """Spring score (year 1) minus next fall (year 2) for students present both years."""
    a = rows[rows.year == 1].set_index("student")
    b = rows[rows.year == 2].set_index("student")
    both = a.index.intersection(b.index)
    loss = a.loc[both, "spring_score"] - b.loc[both, "fall_score"]
    gain = a.loc[both, "spring_score"] - a.loc[both, "fall_score"]
    df = pd.DataFrame({"grade": a.loc[both, "grade"], "loss": loss, "gain": gain})
    by_grade = df.groupby("grade").agg(loss_points=("loss", "mean"),
                                       gain_points=("gain", "mean"))
    by_grade["loss_share_of_gain"] = by_grade.loss_points / by_grade.gain_points
    gainer_corr = float(np.corrcoef(df.gain, df.loss)[0, 1])
    return by_grade, gainer_corr


def calibration_report(scenario) -> dict:
    """Every calibration fact, measured on this scenario's parameters."""
    state_model, state_rows = traditional_run(scenario, mean_offset_sd=0.0)
    dist_model, dist_rows = traditional_run(scenario, years=1)
    loss, gainer_corr = summer_loss(state_rows)
    tested = dist_rows[dist_rows.year == 1].dropna(subset=["state_score"])
    program = tested[tested.in_program]
    return {
        "variance_split": entry_variance_split(scenario),
        "growth_by_grade": growth_by_grade(state_rows),
        "growth_by_percentile": growth_by_percentile(state_rows),
        "summer_loss": loss,
        "summer_loss_gain_corr": gainer_corr,
        "district_proficiency": float(tested.proficient.astype(float).mean()),
        "program_proficiency": float(program.proficient.astype(float).mean())
        if len(program) else float("nan"),
        "reference_share": scenario.assessment.reference_proficient_share,
        "state_proficiency": float(state_rows[state_rows.year == 1].proficient.dropna()
                                   .astype(float).mean()),
    }


def format_report(rep: dict) -> str:
    """The report as plain text, each fact beside its target."""
    lines = ["Variance of starting achievement (model vs target, grade 5 study):"]
    for k, target in TARGET_SPLIT.items():
        lines.append(f"  {k:<18} {rep['variance_split'][k]:6.2f}   target {target:.2f}")
    lines.append("Fall-to-spring growth, traditional, statewide mean (fall SD units):")
    for g, v in rep["growth_by_grade"].items():
        t = NWEA_GROWTH_SD.get(int(g))
        lines.append(f"  grade {g}: {v:5.2f}" + (f"   NWEA norm {t:.2f}" if t else ""))
    lines.append("Growth by fall percentile, grades 5-6 (lower starters should grow faster):")
    for p, v in rep["growth_by_percentile"].items():
        lines.append(f"  {p:>2}th percentile: {v:5.2f}   Scammacca et al. {SCAMMACCA_ES[p]:.2f}")
    lines.append("Summer loss (scale points; 10 points = one grade-year):")
    for g, r in rep["summer_loss"].iterrows():
        lines.append(f"  after grade {g}: {r.loss_points:5.2f} points "
                     f"({100 * r.loss_share_of_gain:4.0f}% of the year's gain)")
    lines.append(f"  correlation of school-year gain with summer loss: "
                 f"{rep['summer_loss_gain_corr']:.2f} (positive: bigger gainers lose more)")
    lines.append(f"State-test proficiency: a statewide-mean district under traditional pacing "
                 f"{100 * rep['state_proficiency']:.0f}% (the cut is fixed on the reference "
                 f"cohort at {100 * rep['reference_share']:.0f}%); "
                 f"this district {100 * rep['district_proficiency']:.0f}% "
                 f"(program grades {100 * rep['program_proficiency']:.0f}%)")
    return "\n".join(lines)
