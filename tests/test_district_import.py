"""Bring your own district: `plsim district import` fits a scenario to a district's
aggregates; bad or student-level files are refused with status 2 and nothing written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sim.cli import main
from sim.config.parameters import DistrictParams, PopulationParams
from sim.config.scenario import ScenarioError, load_scenario
from sim.engine.population import ClusterEffects, cohort_offsets, draw_levels, layout_slots
from sim.engine.students import StudentState
from sim.validation.district_import import (
    TOLERANCE,
    fit_district,
    parse_district,
    read_district_csv,
    write_import,
)

SAMPLE = Path(__file__).resolve().parents[1] / "scenarios" / "sample_district.csv"
GOOD = "school,grade,enrolled,proficient_share\nA,3,40,0.3\nA,4,40,0.2\nB,3,30,0.5\nB,4,30,0.4\n"


# --- the fit ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sample_fit():
    data = read_district_csv(SAMPLE)
    return data, fit_district(data, name="sample", replicates=2)


def test_fit_reproduces_the_sample_share_proficient(sample_fit, tmp_path):
    data, fit = sample_fit
    cells = fit.table[fit.table.school != "(district)"]
    assert len(cells) == data.enrolled.size == 24
    gap = (cells.proficient_simulated - cells.proficient_target).abs()
    # each school and grade within 4 points; the district within 1 point (replicates 2)
    assert gap.max() <= 0.04, cells[gap > 0.04]
    assert gap.mean() <= 0.015
    total = fit.table[fit.table.school == "(district)"].iloc[0]
    assert abs(total.proficient_simulated - total.proficient_target) <= 0.01
    # on other draws (the next seed) the district still matches; single cells move more
    # (at the steady-state start a cell's year 1 carries eight spin-up years of drawn
    # teachers and summers: 0.28 at most measured, 0.076 on average)
    assert abs(total.proficient_other_draws - total.proficient_target) <= 0.03
    other = (cells.proficient_other_draws - cells.proficient_target).abs()
    assert 0 < other.mean() <= 0.1 and other.max() <= 0.3
    # the written scenario is accepted as `plsim check` reads it, seed and size as fitted
    toml, table = write_import(fit, tmp_path / "mine.toml")
    assert table.exists() and "proficient_target" in table.read_text().splitlines()[0]
    sc = load_scenario(toml)
    assert sc.district.schools == 4 and sc.district.grades == [3, 4, 5, 6, 7, 8]
    assert sc.replicates == 2 and len(sc.district.cohort_offsets_sd) == 4
    assert main(["check", str(toml)]) == 0


def test_fitted_schools_keep_their_order(sample_fit):
    """Cedar Park (about half proficient) is fitted above Brook Street (about one in six)."""
    data, fit = sample_fit
    offsets = np.asarray(fit.scenario["district"]["cohort_offsets_sd"])
    cedar, brook = data.schools.index("Cedar Park Academy"), data.schools.index(
        "Brook Street School")
    assert offsets[cedar].mean() - offsets[brook].mean() > 0.5


# --- the scenario's new field leaves other scenarios alone -----------------------------
def test_cohort_offsets_map_students_to_their_year_one_cohort():
    d = DistrictParams(schools=2, grades=[3, 4, 5], classes_per_grade=1, class_size=2,
                       program_grades=[5], cohort_offsets_sd=[[0.1, 0.2, 0.3],
                                                              [-0.1, -0.2, -0.3]])
    st = StudentState(12, 4)
    layout_slots(st, d)
    slots = np.arange(12)
    # built in year 0 with one burn-in year: grade 3 becomes the grade-4 cohort
    at_build = cohort_offsets(st, slots, d, year=0, burn_in_years=1)
    assert at_build.tolist() == [0.2, 0.2, 0.3, 0.3, 0.3, 0.3,
                                 -0.2, -0.2, -0.3, -0.3, -0.3, -0.3]
    # newcomers in year 1 are their own grade's cohort; later ones the lowest grade's
    assert cohort_offsets(st, slots, d, 1, 1).tolist()[:6] == [0.1, 0.1, 0.2, 0.2, 0.3, 0.3]
    assert cohort_offsets(st, slots, d, 3, 1).tolist()[:6] == [0.1] * 4 + [0.1, 0.1]
    assert cohort_offsets(st, slots, DistrictParams(), 0, 1) is None


def test_known_schools_replace_the_school_effect_and_draw_the_same():
    d = DistrictParams(schools=2, grades=[3], classes_per_grade=1, class_size=50,
                       program_grades=[3])
    pop = PopulationParams()
    st = StudentState(100, 4)
    layout_slots(st, d)
    slots = np.arange(100)
    effects = ClusterEffects(np.array([1.0, -1.0]), np.zeros((2, 1)))
    drawn = draw_levels(np.random.default_rng(3), slots, st, effects, pop, 0.0)
    known = draw_levels(np.random.default_rng(3), slots, st, effects, pop, 0.0,
                        np.full(100, 0.5))
    sd = 0.3 + 0.35 * 3
    shift = (known - drawn) / sd   # the same student draws, another school term
    assert np.allclose(shift[:50], 0.5 - np.sqrt(0.2)) and np.allclose(shift[50:],
                                                                        0.5 + np.sqrt(0.2))


def test_cohort_offsets_must_fit_the_district():
    with pytest.raises(ValueError, match="one row per school"):
        DistrictParams(schools=2, grades=[3, 4], program_grades=[], cohort_offsets_sd=[[0, 0]])
    with pytest.raises(ValueError, match="one row per school"):
        DistrictParams(schools=1, grades=[3, 4], program_grades=[],
                       cohort_offsets_sd=[[0.0, 0.0, 0.0]])


# --- bad input -------------------------------------------------------------------------
BAD = {
    "student identifier": ("student_id,school,grade,enrolled,proficient_share\n"
                           "123,A,3,40,0.3\n", "looks like a student identifier"),
    "name column": ("name,school,grade,enrolled,proficient_share\nAda,A,3,40,0.3\n",
                    "looks like a student identifier"),
    "date of birth": ("school,grade,enrolled,proficient_share,DOB\nA,3,40,0.3,2014-01-02\n",
                      "looks like a student identifier"),
    "too small a row": (GOOD.replace("B,4,30,0.4", "B,4,3,0.4"),
                        "row 5, column enrolled: 3 students; plsim takes aggregates only"),
    "missing column": ("school,grade,enrolled\nA,3,40\n", "missing column 'proficient_share'"),
    "share above 1": (GOOD.replace("A,4,40,0.2", "A,4,40,42"),
                      "row 3, column proficient_share: got '42'; allowed: a share between 0 "
                      "and 1"),
    "not a number": (GOOD.replace("B,3,30,0.5", "B,3,thirty,0.5"),
                     "row 4, column enrolled: not a number (got 'thirty')"),
    "untested grade": (GOOD.replace("A,3,40", "A,1,40"), "row 2, column grade"),
    "missing cell": (GOOD.replace("B,4,30,0.4\n", ""), "school 'B' has no row for grade 4"),
    "repeated cell": (GOOD + "B,4,30,0.4\n", "row 6: school 'B' grade 4 appears twice"),
    "unknown column": ("school,grade,enrolled,proficient_share,colour\nA,3,40,0.3,red\n",
                       "unknown column 'colour'"),
    "ragged row": (GOOD + "C,3,30\n", "row 6: 3 values for 4 columns"),
    "empty": ("# only a comment\n", "empty"),
    "control character": (GOOD.replace("A,4", "A\0,4"), "row 3, column school: 'A\\x00'"),
    "label on two lines": (GOOD.replace("B,4", '"B\nannex",4'), "column school: 'B\\nannex'"),
    "huge field": (GOOD + '"' + "x" * 200_000 + '",3,40,0.3\n', "not CSV"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_files_exit_2_with_one_message_and_write_nothing(case, tmp_path, capsys):
    text, expected = BAD[case]
    src = tmp_path / "district.csv"
    src.write_text(text)
    out = tmp_path / "out.toml"
    assert main(["district", "import", str(src), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert expected in err and str(src) in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["district.csv"]


def test_identifier_columns_are_told_apart_from_school_labels_and_counts():
    from sim.validation.district_import import looks_like_identifier

    for col in ("student_id", "Student ID", "name", "First Name", "DOB", "date_of_birth",
                "SSN", "email", "student", "lasid"):
        assert looks_like_identifier(col), col
    for col in ("school", "school_name", "School ID", "student_count", "enrolled",
                "proficient_share", "grade"):
        assert not looks_like_identifier(col), col


def test_unreadable_and_oversized_files_are_refused(tmp_path, capsys):
    assert main(["district", "import", str(tmp_path / "nope.csv")]) == 2
    assert "file not found" in capsys.readouterr().err
    with pytest.raises(ScenarioError, match="not UTF-8"):
        parse_district("x.csv", b"school,grade\n\xff\xfe\n")
    with pytest.raises(ScenarioError, match="bytes; a district's aggregates fit in"):
        parse_district("x.csv", b"#" * 1_000_001)


def test_a_good_file_reads_into_a_school_by_grade_grid():
    data = parse_district("x.csv", ("\ufeff# a comment, with commas\n\n" + GOOD).encode())
    assert data.schools == ["A", "B"] and data.grades == [3, 4]
    assert data.enrolled.tolist() == [[40, 40], [30, 30]]
    assert data.proficient.tolist() == [[0.3, 0.2], [0.5, 0.4]]
    assert data.fall_mean is None
    quoted = parse_district("x.csv", GOOD.replace("B,", '"B, the annex",').encode())
    assert quoted.schools == ["A", "B, the annex"]


def test_the_shipped_sample_is_aggregate_and_has_a_proficiency_column():
    text = SAMPLE.read_text()
    assert "proficient_share" in text
    data = read_district_csv(SAMPLE)
    assert data.enrolled.min() >= 10 and len(data.schools) == 4


# --- the page's upload -------------------------------------------------------------------
def test_the_page_takes_the_fitted_scenario_and_shows_an_escaped_table(sample_fit):
    from sim.presentation import district_upload, form

    _, fit = sample_fit
    data = district_upload.imported_form(fit)
    sc = form.build_scenario(data)
    assert sc.district.cohort_offsets_sd == fit.scenario["district"]["cohort_offsets_sd"]
    again = form.scenario_from_toml(form.scenario_toml(sc))  # the page's download
    assert again.district == sc.district
    marked = fit.table.copy()
    marked.loc[0, "school"] = "<img src=x onerror=alert(1)>"
    page = district_upload.fit_table_html(marked)
    assert "<img" not in page and "&lt;img src=x" in page
    assert page.count("<tr>") == len(fit.table) + 1 and "proficient (plsim)" in page


def test_the_page_refuses_an_oversized_or_bad_upload_before_fitting():
    import io

    from sim.presentation import district_upload

    with pytest.raises(ScenarioError, match="big.csv: 2000000 bytes"):
        district_upload.read_upload("big.csv", 2_000_000, io.BytesIO(b""))
    with pytest.raises(ScenarioError, match="looks like a student identifier"):
        district_upload.read_upload("../../x.csv", 40, io.BytesIO(
            b"ssn,school,grade,enrolled,proficient_share\n1,A,3,40,0.3\n"))
    data = district_upload.read_upload("mine.csv", len(GOOD), io.BytesIO(GOOD.encode()))
    assert data.source == "mine.csv" and data.schools == ["A", "B"]


def test_fit_notes_state_the_largest_gap_and_compare_fall_means(sample_fit):
    from sim.validation.district_import import fit_notes

    _, fit = sample_fit
    notes = fit_notes(fit.table)
    cells = fit.table[fit.table.school != "(district)"]
    worst = (cells.proficient_simulated - cells.proficient_target).abs().max()
    assert f"within {worst:.3f}" in notes[0]
    off = int((cells.proficient_simulated - cells.proficient_target).abs().gt(TOLERANCE).sum())
    if off:  # a cell the corrections could not bring within the tolerance is named
        assert f"{off} school-grade share" in notes[1]
    assert len(notes) == 3 + bool(off) and "On other random draws" in notes[1 + bool(off)]
    assert "Fall means (compared, not fitted)" in notes[2 + bool(off)]
