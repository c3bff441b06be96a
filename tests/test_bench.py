"""The speed benchmark's yardstick: the per-agent Mesa model follows the engine's rules."""

import json
import os

import pytest

from sim.district.reference import state_reference
from sim.experiments import bench, bench_goals, bench_rates, mesa_reference

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
            "engine_cpu_seconds": 7 * students * 180 / rate,
            "arm_year_seconds": 1.1 * students * 180 / rate,
            "arm_year_cpu_seconds": students * 180 / rate, "engine_student_days_per_cpu_s": rate,
            "peak_rss_bytes": rss, "bytes_per_student": size, "bytes_by_arm": {},
            "playlist_students": students, "engine_playlist_student_days_per_s": 2 * rate,
            "engine_playlist_student_days_per_cpu_s": 2 * rate,
            "mesa_days": 3 if ratio else 0, "mesa_seconds": 1.0 if ratio else None,
            "mesa_cpu_seconds": 1.0 if ratio else None,
            "mesa_student_days_per_s": 2 * rate / ratio if ratio else None,
            "mesa_student_days_per_cpu_s": 2 * rate / ratio if ratio else None, "ratio": ratio,
            "agreement": agreement if ratio else None}


E2E = {"scenario": "floor_strategies", "replicates": 2, "workers": 1,
       "reported_student_days": 25.3e6, "cpu_seconds": 2.0, "wall_seconds": 3.0,
       "student_days_per_cpu_s": 12.65e6}
SWEEP = {"sweep": "sweep_floor_sobol", "samples": 1000, "runs_in_analysis": 10_000,
         "design_drawn": {"samples": 1024, "runs": 10_240}, "runs_measured": 2,
         "run_ids": [5120, 5121], "once_cpu_seconds": 6.0, "run_cpu_seconds": [0.05, 0.07],
         "mean_run_cpu_s": 0.06, "core_minutes": (6.0 + 10_000 * 0.06) / 60}


def _report(rows, e2e=E2E, sweep=SWEEP):
    return {"results": rows, "end_to_end": e2e, "sweep": sweep,
            "goals": bench_goals.goals(rows, e2e, sweep)}


def test_every_goal_is_judged_with_its_target():
    fast = _report([_row(99_900, 12e6, 160.0, 650.0, 3e8),
                    _row(999_900, 11e6, None, 640.0, 1.2e9)])
    judged = {g["goal"]: g for g in fast["goals"]}
    assert list(judged) == ["end_to_end", "sweep", "arm_year", "mesa_ratio",
                            "bytes_per_student", "million_student_rss"]
    assert [judged[k]["target"] for k in judged] == [10e6, 16.0, 1.8, 100.0, 700, 1.5e9]
    assert all(g["met"] is True for g in fast["goals"])
    assert judged["arm_year"]["value"] == pytest.approx(1.4985)  # 99,900 x 180 / 12M
    assert judged["sweep"]["value"] == pytest.approx(10.1)
    json.dumps(fast)  # plsim bench --json prints it

    slow = _report([_row(99_900, 3e6, 28.0, 900.0, 3e8)],
                   {**E2E, "student_days_per_cpu_s": 0.99e6}, {**SWEEP, "core_minutes": 66.0})
    met = {g["goal"]: g["met"] for g in slow["goals"]}
    assert met == {"end_to_end": False, "sweep": False, "arm_year": False,
                   "mesa_ratio": False, "bytes_per_student": False,
                   "million_student_rss": None}  # no 1,000,000-student size measured


def test_goals_not_measured_are_none_not_failures():
    small = _report([_row(9_900, 12e6, 160.0, 650.0, 3e8)], None, None)
    assert all(g["met"] is None and g["value"] is None for g in small["goals"])
    text = bench.format_bench(small)
    assert text.count("not measured") == 6 and "NOT met" not in text
    assert "--sizes 100000" in text and "--sweep-runs" in text


def test_format_bench_reports_every_field():
    text = bench.format_bench(_report([_row(99_900, 12e6, 160.0, 650.0, 3e8),
                                       _row(999_900, 11e6, None, 640.0, 1.2e9)]))
    assert "99,900" in text and "160x" in text and "z = +0.00" in text
    assert "999,900" in text and "not run" in text and "1.20 GB" in text
    assert "1.50 CPU-s" in text and "12.00M student-days a CPU-second" in text  # arm-year
    assert "25.3M reported student-days in 2.0 CPU-s" in text and "12.65M per CPU-second" in text
    assert "10,000 runs" in text and "10.1 core-minutes" in text
    assert "NOT met" not in text and text.count(": met (") == 6
    slow = bench.format_bench(_report([_row(99_900, 3e6, 28.0, 900.0, 3e8)],
                                      {**E2E, "student_days_per_cpu_s": 0.99e6}))
    assert slow.count("NOT met") == 4 and "not measured (--sizes 1000000)" in slow


def test_measured_runs_spread_through_the_design_with_both_replicates():
    ids = bench_rates.measured_runs(runs_per_sample=5, samples=1024, replicates=2, runs=8)
    assert len(ids) == len(set(ids)) == 8
    points = sorted({i // 2 for i in ids})
    assert len(points) == 4 and all({p * 2, p * 2 + 1} <= set(ids) for p in points)
    assert points == [640, 1920, 3200, 4480]  # the middles of four stretches of 1,280
    assert bench_rates.measured_runs(5, 1024, 2, 3) == [5120, 5121]  # point 2,560 of 5,120


def test_time_year_measures_wall_and_cpu(started):
    _, reference = started
    scenario = bench.bench_scenario(STUDENTS)
    wall, cpu, days = bench.time_year(scenario, reference)
    assert days == scenario.calendar.days
    assert wall > 0 and cpu > 0


def test_end_to_end_counts_reported_student_days_over_cpu_seconds():
    """A small shipped run in a child process, as perf-throughput runs floor_strategies."""
    from sim.config.scenario import load_scenario
    from sim.engine.population import district_size

    before = dict(os.environ)
    r = bench_rates.end_to_end(1, "quick.toml", ("years=1",))
    assert dict(os.environ) == before
    quick = load_scenario("scenarios/quick.toml")
    scheduled = district_size(quick.district) * quick.calendar.days * len(quick.arms)
    assert 0.8 * scheduled < r["reported_student_days"] <= scheduled  # absences only
    assert r["cpu_seconds"] > 0 and r["wall_seconds"] > 0
    assert r["student_days_per_cpu_s"] == r["reported_student_days"] / r["cpu_seconds"]
    json.dumps(r)


def test_sobol_cost_prices_the_whole_analysis_from_a_few_runs():
    before = dict(os.environ)
    r = bench_rates.sobol_cost(2)
    assert dict(os.environ) == before  # its own cache folder, then the environment restored
    assert r["samples"] == 1000 and r["runs_in_analysis"] == 1000 * 5 * 2  # N (D + 2) x 2
    assert r["design_drawn"] == {"samples": 1024, "runs": 1024 * 5 * 2}
    assert r["runs_measured"] == len(r["run_cpu_seconds"]) == 2
    assert sorted(i % 2 for i in r["run_ids"]) == [0, 1]  # one point, both replicates
    assert all(s > 0 for s in r["run_cpu_seconds"]) and r["once_cpu_seconds"] > 0
    assert r["core_minutes"] == pytest.approx(
        (r["once_cpu_seconds"] + 10_000 * r["mean_run_cpu_s"]) / 60)
    json.dumps(r)


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


def test_playlist_ratio_is_of_cpu_rates():
    r = bench.playlist_vs_mesa(STUDENTS, mesa_days=2)
    assert r["mesa_days"] == 2 and r["mesa_cpu_seconds"] > 0 and r["mesa_seconds"] > 0
    n = r["playlist_students"]
    assert r["mesa_student_days_per_cpu_s"] == pytest.approx(n * 2 / r["mesa_cpu_seconds"])
    assert r["ratio"] == pytest.approx(r["engine_playlist_student_days_per_cpu_s"]
                                       / r["mesa_student_days_per_cpu_s"])
    json.dumps(r)
