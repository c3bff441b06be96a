"""The speed benchmark's yardstick: the per-agent Mesa model follows the engine's rules."""

import json

import pytest

from sim.district.reference import state_reference
from sim.experiments import bench, mesa_reference

STUDENTS, DAYS = 2_000, 5


@pytest.fixture(scope="module")
def started():
    """A started bench district of about STUDENTS students, and its reference."""
    scenario = bench.bench_scenario(STUDENTS)
    reference = state_reference(scenario)
    district = bench.new_district(scenario, reference)
    district.start_year()
    return district, reference


def test_one_mesa_agent_per_student(started):
    district, _ = started
    ref = mesa_reference
    model = bench.build_mesa(district)
    agents = list(model.agents)
    assert len(agents) == district.students.n
    assert all(type(a) is ref.StudentAgent for a in agents)
    assert sorted(a.slot for a in agents) == list(range(district.students.n))
    first = model.students[0]
    assert first.rows.mastery[0].tobytes() == district.students.mastery[0].tobytes()
    assert first.record.bits[0].tobytes() == district.record.bits[0].tobytes()
    assert first.rows.mastery is not district.students.mastery  # its own copy


def test_engine_and_mesa_agree(started):
    _, reference = started
    result = bench.agreement(STUDENTS, DAYS, reference=reference)
    json.dumps(result)  # the CLI prints it as JSON
    gain = result["mastery_gained_per_student_day"]
    assert abs(gain["z"]) < 4
    assert abs(gain["paired_z"]) < 4  # within students: the sharper check
    assert abs(result["exit_slip_pass_rate"]["z"]) < 4
    assert gain["engine_mean"] > 0 and gain["mesa_mean"] > 0


def _row(students, rate, ratio, size, rss):
    agreement = {"students": 10, "days": 2, "mastery_gained_per_student_day": dict(
        engine_mean=0.1, engine_se=0.01, mesa_mean=0.1, mesa_se=0.01, z=0.0, paired_z=0.0)}
    return {"students": students, "engine_days": 180, "engine_seconds": 1.0,
            "engine_student_days_per_s": rate, "engine_by_arm": {"traditional": rate},
            "peak_rss_bytes": rss, "bytes_per_student": size, "bytes_by_arm": {},
            "playlist_students": students, "engine_playlist_student_days_per_s": 2 * rate,
            "mesa_days": 3 if ratio else 0, "mesa_seconds": 1.0 if ratio else None,
            "mesa_student_days_per_s": 2 * rate / ratio if ratio else None, "ratio": ratio,
            "agreement": agreement if ratio else None}


def test_format_bench_reports_every_field():
    text = bench.format_bench([_row(100_000, 12e6, 160.0, 650.0, 3e8),
                               _row(1_000_000, 11e6, None, 640.0, 1.2e9)])
    assert "100,000" in text and "160x" in text and "z = +0.00" in text
    assert "1,000,000" in text and "not run" in text and "1.20 GB" in text
    assert "NOT met" not in text
    slow = bench.format_bench([_row(100_000, 3e6, 28.0, 900.0, 3e8)])
    assert slow.count("NOT met") == 3 and "not measured" in slow


def test_the_mix_is_floor_strategies_with_drift():
    from sim.config.scenario import load_scenario

    mix = bench.mix_scenario(5_000)
    shipped = load_scenario("scenarios/floor_strategies.toml")
    assert [a.label for a in mix.arms] == [a.label for a in shipped.arms]
    assert mix.arms == shipped.arms and "tutoring" in [a.label for a in mix.arms]
    assert mix.calendar.burn_in_years == 0 and mix.years == 1
    assert mix.district.program_grades == shipped.district.program_grades
    reference = state_reference(mix)
    district = bench.mix_district(mix, 0, reference)
    assert abs(district.students.n - 5_000) <= 450  # whole schools of 900
    assert (district.staff.drift == bench.MIX_DRIFT).all()
