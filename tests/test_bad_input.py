"""Bad input: every malformed scenario or option exits with status 2, one clear message, no output.

Each bad scenario is the text of ``scenarios/quick.toml`` with one edit, written
into ``tmp_path``. The CLI is called in process (``sim.cli.main``) for the whole
matrix and through the installed ``plsim`` script for a sample, so the real
process exit status is checked too.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sim.cli import main

REPO = Path(__file__).resolve().parents[1]
QUICK = REPO / "scenarios" / "quick.toml"
PLSIM = REPO / ".venv" / "bin" / "plsim"
QUICK_TEXT = QUICK.read_text(encoding="utf-8")


@pytest.fixture
def cli(capsys):
    """``sim.cli.main(argv)`` in process -> (exit status, stdout, stderr)."""

    def call(argv):
        capsys.readouterr()
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse's own errors
            code = exc.code
        out, err = capsys.readouterr()
        return code, out, err

    return call


# --- building bad scenario files ------------------------------------------------------
def edit(old: str, new: str):
    """The quick scenario with ``old`` (which must occur exactly once) replaced by ``new``."""

    def make(tmp: Path) -> Path:
        assert QUICK_TEXT.count(old) == 1, f"anchor {old!r} not unique in quick.toml"
        p = tmp / "bad_scenario.toml"
        p.write_text(QUICK_TEXT.replace(old, new), encoding="utf-8")
        return p

    return make


def append(extra: str):
    """The quick scenario with a table appended (a top-level table after the arms), or,
    where the scenario has that table already (quick's ``[calendar]``), its keys added
    to it: TOML defines a table once."""
    header, _, body = extra.partition("\n")
    if not header.startswith("[[") and f"\n{header}\n" in QUICK_TEXT:
        text = QUICK_TEXT.replace(f"\n{header}\n", f"\n{header}\n{body}", 1)
    else:
        text = QUICK_TEXT + "\n" + extra

    def make(tmp: Path) -> Path:
        p = tmp / "bad_scenario.toml"
        p.write_text(text, encoding="utf-8")
        return p

    return make


def raw(name: str, content: bytes):
    def make(tmp: Path) -> Path:
        p = tmp / name
        p.write_bytes(content)
        return p

    return make


def missing(tmp: Path) -> Path:
    return tmp / "no_such_scenario.toml"


def directory(tmp: Path) -> Path:
    p = tmp / "a_directory.toml"
    p.mkdir()
    return p


def good_copy(tmp: Path) -> Path:
    p = tmp / "scenario_copy.toml"
    p.write_text(QUICK_TEXT, encoding="utf-8")
    return p


FLOOR3 = 'label = "floor3"\npacing = "personalized"\nfloor = 3\n'
TRADITIONAL = 'label = "traditional"\npacing = "traditional"\n'


@dataclass
class Case:
    id: str
    make: object  # tmp_path -> scenario path
    expect: tuple[str, ...]  # substrings of the message: the field and what is allowed
    args: list[str] = field(default_factory=list)
    names_file: bool = True  # the message names the scenario file


SCENARIO_CASES = [
    # unknown keys, at the top level, in a table, in an arm
    Case("unknown_top_level_key", edit('years = 2\n', 'years = 2\ncolour = "red"\n'),
         ("colour", "unknown key")),
    Case("unknown_key_in_district", edit("[district]\n", "[district]\nschoolz = 3\n"),
         ("district.schoolz", "unknown key")),
    Case("unknown_key_in_arm", edit(FLOOR3, FLOOR3 + "flor = 2\n"),
         ("arms.1.flor", "unknown key")),
    Case("unknown_key_in_added_table", append("[calendar]\nholidays = 10\n"),
         ("calendar.holidays", "unknown key")),
    # wrong types
    Case("text_for_int", edit("schools = 2\n", 'schools = "two"\n'),
         ("district.schools", "valid integer")),
    Case("text_for_float_in_arm", edit(FLOOR3, FLOOR3.replace("floor = 3", 'floor = "deep"')),
         ("arms.1.floor", "valid number")),
    Case("fraction_for_int", edit("class_size = 20\n", "class_size = 20.5\n"),
         ("district.class_size", "valid integer")),
    Case("number_for_list", edit("program_grades = [6, 7, 8]\n", "program_grades = 6\n"),
         ("district.program_grades", "valid list")),
    Case("unknown_pacing",
         edit(TRADITIONAL, TRADITIONAL.replace('= "traditional"\n', '= "fast"\n')),
         ("arms.0.pacing", "'traditional', 'personalized', 'grade_level_first'")),
    Case("label_with_space", edit('label = "floor3"', 'label = "floor 3"'),
         ("arms.1.label", "pattern")),
    # NaN and infinity
    Case("nan_float", edit("[district]\n", "[district]\nmean_offset_sd = nan\n"),
         ("district.mean_offset_sd", "finite number")),
    Case("nan_int", edit("class_size = 20\n", "class_size = nan\n"),
         ("district.class_size", "valid integer")),
    Case("nan_in_arm", edit(FLOOR3, FLOOR3.replace("floor = 3", "floor = nan")),
         ("arms.1.floor", "finite number")),
    Case("inf", edit("reference_students_per_grade = 400", "reference_students_per_grade = inf"),
         ("assessment.reference_students_per_grade", "valid integer")),
    # negative or impossible values
    Case("negative_schools", edit("schools = 2\n", "schools = -2\n"),
         ("district.schools", "greater than or equal to 1")),
    Case("zero_schools", edit("schools = 2\n", "schools = 0\n"),
         ("district.schools", "greater than or equal to 1")),
    Case("negative_floor", edit(FLOOR3, FLOOR3.replace("floor = 3", "floor = -1")),
         ("arms.1.floor", "greater than or equal to 0")),
    Case("zero_replicates", edit("replicates = 2\n", "replicates = 0\n"),
         ("replicates", "greater than or equal to 1")),
    Case("too_many_years", edit("years = 2\n", "years = 31\n"),
         ("years", "less than or equal to 30")),
    Case("variance_shares_not_1", append("[population]\nshare_within_class = 0.5\n"),
         ("population", "variance shares must sum to 1")),
    Case("program_grade_not_in_grades",
         edit("program_grades = [6, 7, 8]", "program_grades = [6, 7, 9]"),
         ("program_grades", "not among grades")),
    Case("grades_not_consecutive", edit("[district]\n", "[district]\ngrades = [5, 6, 8]\n"),
         ("district", "grades must be consecutive")),
    Case("state_test_day_is_days", append("[calendar]\nstate_test_day = 180\n"),
         ("state_test_day", "within the year (0..179)")),
    Case("state_test_day_after_days", append("[calendar]\nstate_test_day = 400\n"),
         ("state_test_day", "within the year (0..179)")),
    Case("test_prep_longer_than_time_before_test",
         edit("test_prep_weeks = 6", "test_prep_weeks = 31"),
         ("test_prep_weeks", "155 days, longer than the 150 days before the state test")),
    Case("duplicate_arm_labels", edit('label = "floor3"', 'label = "traditional"'),
         ("arm labels must be unique", "traditional")),
    Case("floor_on_traditional_arm", edit(TRADITIONAL, TRADITIONAL + "floor = 2\n"),
         ("traditional", "floors apply to individual paths only")),
    Case("no_arms", lambda tmp: raw("bad_scenario.toml",
                                    QUICK_TEXT.split("[[arms]]")[0].encode())(tmp),
         ("arms", "Field required")),
    Case("no_name", edit('name = "quick"\n', ""), ("name", "Field required")),
    # the file itself
    Case("missing_file", missing, ("file not found",)),
    Case("file_is_a_directory", directory, ("cannot read file", "a directory, not a regular file")),
    Case("not_utf8", raw("latin1.toml", b'name = "caf\xe9"\n'), ("cannot read file", "utf-8")),
    Case("not_toml", raw("prose.toml", b"This is a scenario, honest.\n"), ("not valid TOML",)),
    Case("truncated_toml", raw("truncated.toml", QUICK_TEXT.encode()[:-40] + b"\n[[arms"),
         ("not valid TOML",)),
    Case("binary_garbage", raw("garbage.toml", bytes(range(0, 32))), ("not valid TOML",)),
    Case("empty_file", raw("empty.toml", b""), ("name", "Field required")),
]

OPTION_CASES = [
    # --set: unknown path, no '=', bad value
    Case("set_unknown_path", good_copy, ("district.schoolz", "unknown key"),
         ["--set", "district.schoolz=3"]),
    Case("set_unknown_top_level", good_copy, ("nosuch", "unknown key"), ["--set", "nosuch=1"]),
    Case("set_unknown_arm", good_copy, ("arms.nosuch", "no list item", "arm label"),
         ["--set", "arms.nosuch.floor=1"]),
    Case("set_arm_index_out_of_range", good_copy, ("arms.5", "index 0..2"),
         ["--set", "arms.5.floor=1"]),
    Case("set_unknown_key_in_arm", good_copy, ("arms.1.flor", "unknown key"),
         ["--set", "arms.floor3.flor=1"]),
    Case("set_into_a_value", good_copy, ("years.x", "not a section"), ["--set", "years.x=1"]),
    Case("set_no_equals", good_copy, ("district.schools", "dotted.path=value"),
         ["--set", "district.schools"], names_file=False),
    Case("set_empty_path_part", good_copy, ("district..schools", "empty part"),
         ["--set", "district..schools=3"], names_file=False),
    Case("set_text_for_int", good_copy, ("district.schools", "valid integer"),
         ["--set", "district.schools=abc"]),
    Case("set_negative", good_copy, ("district.schools", "greater than or equal to 1"),
         ["--set", "district.schools=-1"]),
    Case("set_nan", good_copy, ("arms.1.floor", "finite number"),
         ["--set", "arms.floor3.floor=nan"]),
    Case("set_makes_labels_clash", good_copy, ("arm labels must be unique", "floor3"),
         ["--set", "arms.traditional.label=floor3"]),
    Case("set_test_day_outside_year", good_copy, ("state_test_day", "within the year"),
         ["--set", "calendar.state_test_day=180"]),
    # --seed / --replicates / --workers
    Case("seed_negative", good_copy, ("--seed", ">= 0", "-1"), ["--seed", "-1"],
         names_file=False),
    Case("seed_text", good_copy, ("--seed", "whole number", "abc"), ["--seed", "abc"],
         names_file=False),
    Case("seed_fraction", good_copy, ("--seed", "whole number", "1.5"), ["--seed", "1.5"],
         names_file=False),
    Case("seed_too_large", good_copy, ("seed", "less than 9223372036854775808"),
         ["--seed", str(2**63)]),
    Case("replicates_zero", good_copy, ("--replicates", ">= 1"), ["--replicates", "0"],
         names_file=False),
    Case("replicates_negative", good_copy, ("--replicates", "-3"), ["--replicates", "-3"],
         names_file=False),
    Case("replicates_text", good_copy, ("--replicates", "whole number", "ten"),
         ["--replicates", "ten"], names_file=False),
    Case("replicates_too_many", good_copy, ("replicates", "less than or equal to 10000"),
         ["--replicates", "20000"]),
    Case("workers_negative", good_copy, ("--workers", ">= 0"), ["--workers", "-1"],
         names_file=False),
]

ALL_CASES = SCENARIO_CASES + OPTION_CASES


def the_message(err: str) -> str:
    """The one error line of stderr (argparse may add its usage lines before it)."""
    assert "Traceback" not in err, err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    usage = [ln for ln in lines if ln.startswith("usage:") or ln.startswith(" ")]
    messages = [ln for ln in lines if ln not in usage]
    assert len(messages) == 1, f"expected one message on stderr, got:\n{err}"
    assert messages[0].startswith("plsim"), messages[0]
    assert "error" in messages[0]
    return messages[0]


def assert_nothing_written(out: Path, pre_existed: bool) -> None:
    if pre_existed:
        assert out.is_dir()
        assert sorted(p.name for p in out.iterdir()) == []
    else:
        assert not out.exists()


# --- the matrix -------------------------------------------------------------------------
@pytest.mark.parametrize("out_state", ["absent", "empty"])
@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.id)
def test_run_rejects_bad_input(case, out_state, tmp_path, cli):
    scenario = case.make(tmp_path)
    out = tmp_path / "results"
    if out_state == "empty":
        out.mkdir()
    code, stdout, stderr = cli(["run", scenario, "--out", out, *case.args])
    assert code == 2, stderr
    msg = the_message(stderr)
    for s in case.expect:
        assert s in msg, f"{s!r} not in {msg!r}"
    if case.names_file:
        assert scenario.name in msg
    assert stdout == ""
    assert_nothing_written(out, pre_existed=out_state == "empty")


CHECK_CASES = [c for c in ALL_CASES if all(a != "--seed" and a != "--replicates"
                                           and a != "--workers" for a in c.args)]


@pytest.mark.parametrize("case", CHECK_CASES, ids=lambda c: c.id)
def test_check_rejects_bad_input(case, tmp_path, cli):
    scenario = case.make(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    code, stdout, stderr = cli(["check", scenario, *case.args])
    assert code == 2, stderr
    msg = the_message(stderr)
    for s in case.expect:
        assert s in msg, f"{s!r} not in {msg!r}"
    if case.names_file:
        assert scenario.name in msg
    assert "OK" not in stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # check writes nothing


@pytest.mark.parametrize("case", [c for c in ALL_CASES if not c.names_file
                                  and c.id != "workers_negative"], ids=lambda c: c.id)
def test_option_error_names_the_scenario_file(case, tmp_path, cli):
    scenario = case.make(tmp_path)
    code, _, stderr = cli(["run", scenario, "--out", tmp_path / "results", *case.args])
    assert code == 2
    assert scenario.name in the_message(stderr)


def test_negative_replicates_message_says_what_is_allowed(tmp_path, cli):
    code, _, stderr = cli(["run", QUICK, "--out", tmp_path / "results", "--replicates", "-3"])
    assert code == 2
    assert ">= 1" in the_message(stderr)


@pytest.mark.parametrize("old,new", [
    ("schools = 2\n", 'schools = "3"\n'),
    ("schools = 2\n", "schools = true\n"),
    ("test_prep_weeks = 6", 'test_prep_weeks = "6"'),
], ids=["quoted_int", "bool_for_int", "quoted_float"])
def test_text_for_a_number_is_rejected_even_when_numeric(old, new, tmp_path, cli):
    scenario = edit(old, new)(tmp_path)
    code, stdout, stderr = cli(["check", scenario])
    assert code == 2, stdout
    assert scenario.name in the_message(stderr)


def test_out_is_an_existing_file(tmp_path, cli):
    out = tmp_path / "results"
    out.write_text("keep me\n")
    code, stdout, stderr = cli(["run", QUICK, "--out", out, *["--replicates", "1"]])
    assert code == 2
    msg = the_message(stderr)
    assert "--out" in msg and "results" in msg and "not a directory" in msg
    assert out.read_text() == "keep me\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


def test_unknown_command_and_missing_out(tmp_path, cli):
    code, _, stderr = cli(["frobnicate", QUICK])
    assert code == 2
    assert "frobnicate" in the_message(stderr)
    code, _, stderr = cli(["run", QUICK])
    assert code == 2
    assert "--out" in the_message(stderr)


# --- the boundaries are where the messages say ------------------------------------------
@pytest.mark.parametrize("old,new,ok", [
    ("test_prep_weeks = 6", "test_prep_weeks = 30", True),  # 150 days: exactly the time left
    ("test_prep_weeks = 6", "test_prep_weeks = 30.2", False),  # 151 days
    ("[district]\n", "[district]\nmean_offset_sd = -4\n", True),
    ("[district]\n", "[district]\nmean_offset_sd = -4.01\n", False),
    ("schools = 2\n", "schools = 1\n", True),
    ("years = 2\n", "years = 30\n", True),
], ids=["prep_30_weeks", "prep_30.2_weeks", "offset_-4", "offset_-4.01", "one_school",
        "30_years"])
def test_check_boundaries(old, new, ok, tmp_path, cli):
    scenario = edit(old, new)(tmp_path)
    code, stdout, stderr = cli(["check", scenario])
    if ok:
        assert code == 0, stderr
        assert stderr == ""
        assert "OK" in stdout
    else:
        assert code == 2
        assert scenario.name in the_message(stderr)


@pytest.mark.parametrize("extra", [
    "[calendar]\nstate_test_day = 179\nspring_test_day = 178\n",
    "[population]\nshare_within_class = 0.5\nshare_between_teachers = 0.3\n",
], ids=["last_day", "shares_sum_to_1"])
def test_check_accepts_valid_edges(extra, tmp_path, cli):
    scenario = append(extra)(tmp_path)
    code, stdout, stderr = cli(["check", scenario])
    assert code == 0, stderr
    assert stdout.startswith(f"{scenario}: OK")


def test_check_accepts_quick_and_lists_arms(cli):
    code, stdout, stderr = cli(["check", QUICK, "--set", "district.schools=3"])
    assert code == 0, stderr
    assert "'quick', 2 year(s), 2 replicate(s)" in stdout
    assert "arms: traditional, floor3, test_prep" in stdout


# --- the real process: exit status and stderr of the installed script --------------------
SUBPROCESS_IDS = ["unknown_key_in_district", "nan_in_arm", "not_utf8", "file_is_a_directory",
                  "set_no_equals", "seed_negative", "replicates_text"]


@pytest.mark.skipif(not PLSIM.exists(), reason="no installed plsim script")
@pytest.mark.parametrize("case", [c for c in ALL_CASES if c.id in SUBPROCESS_IDS],
                         ids=lambda c: c.id)
def test_plsim_script_exits_2(case, tmp_path):
    scenario = case.make(tmp_path)
    out = tmp_path / "results"
    proc = subprocess.run([str(PLSIM), "run", str(scenario), "--out", str(out), *case.args],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    msg = the_message(proc.stderr)
    for s in case.expect:
        assert s in msg
    assert proc.stdout == ""
    assert not out.exists()
