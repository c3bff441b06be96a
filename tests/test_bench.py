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
    assert bytes(first.mastery) == district.students.mastery[0].tobytes()
    assert bytes(first.believed) == district.record.believed[0].tobytes()


def test_engine_and_mesa_agree(started):
    _, reference = started
    result = bench.agreement(STUDENTS, DAYS, reference=reference)
    json.dumps(result)  # the CLI prints it as JSON
    gain = result["mastery_gained_per_student_day"]
    assert abs(gain["z"]) < 4
    assert abs(gain["paired_z"]) < 4  # within students: the sharper check
    assert abs(result["exit_slip_pass_rate"]["z"]) < 4
    assert gain["engine_mean"] > 0 and gain["mesa_mean"] > 0


def test_format_bench_reports_every_field():
    agreement = {"students": 10, "days": 2, "mastery_gained_per_student_day": dict(
        engine_mean=0.1, engine_se=0.01, mesa_mean=0.1, mesa_se=0.01, z=0.0, paired_z=0.0)}
    row = {"students": 100_000, "engine_days": 180, "mesa_days": 3, "engine_seconds": 1.0,
           "mesa_seconds": 1.0, "engine_student_days_per_s": 6e6,
           "mesa_student_days_per_s": 1e5, "ratio": 60.0, "bytes_per_student": 900.0,
           "agreement": agreement}
    text = bench.format_bench([row])
    assert "100,000" in text and "60x" in text and "z = +0.00" in text
    assert "NOT met" not in text
