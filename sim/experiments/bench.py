"""``plsim bench``: speed and memory of the engine, against a plain per-agent Mesa model.

At each district size (100,000 students by default, 99,900 in whole schools;
10,000 or 1,000,000 with ``--sizes``) the bench measures, in a fresh process per
size, the BLAS on one thread:

* **the engine on the representative mix** -- one school year of each arm
  of ``scenarios/floor_strategies.toml`` (traditional, playlist, floors,
  test-prep window, gradual floor, grade-level-first units, tutoring; its
  district shape scaled to the size, no burn-in), every teacher drifting
  ``MIX_DRIFT`` of their playlist student-days to grade-level content:
  student-days per second of the full daily cycle (``engine_student_days_per_s``),
  per arm too; bytes per student (peak of state and working arrays, the
  largest arm, ``measure_memory``); the process's peak RSS;
* **engine and Mesa on the playlist** -- the per-agent Mesa reference
  (``sim.experiments.mesa_reference``) implements the playlist's rules only,
  so the like-for-like ratio and the agreement in distribution are taken on
  the personalized arm with every grade in the program (``bench_scenario``):
  the engine's rate there, the Mesa model's rate over a few days from the same
  starting state, their ``ratio``, and the agreement check below.

The compiled kernels are loaded before anything is timed (``warm_up``).
Speeds are student-days per second, of wall time and of CPU time (this process,
one thread), so the two are comparable although the Mesa model runs fewer days;
the ratio is of CPU rates, which other work on the machine hardly moves. Above
``MESA_MAX_STUDENTS`` the Mesa model is not built (its agents take about 2 KB
each); its per-agent rate does not depend on the district's size.

The agreement check: both implementations run the Mesa model's days from the
same inputs, and their mean mastery gained per student-day and mean
exit-slip pass rate are compared with a two-sample z test, and with a paired
one within students (the two use different random draws, so they agree only
in distribution).

Beside the sizes, ``bench_report`` measures a shipped scenario end to end and a
Sobol sweep's cost, in CPU-seconds (``sim.experiments.bench_rates``), and judges
the goals (``sim.experiments.bench_goals``, issue 28): at least 10 million reported
student-days per CPU-second end to end, at most 16 core-minutes for a
1,000-sample Sobol, one arm-year at 99,900 students in at most 1.8 CPU-seconds
(10 million student-days a second), the Mesa ratio >= 100, <= 700 bytes per
student, a 1,000,000-student year under 1.5 GB peak RSS.
"""

from __future__ import annotations

import gc
import math
import multiprocessing
import resource
import sys
import time
import tracemalloc
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

import sim
from sim.config.scenario import ScenarioError, read_toml, validate_scenario
from sim.district.model import District
from sim.district.reference import state_reference
from sim.engine.population import chunks, district_size
from sim.experiments import bench_goals, bench_rates, mesa_reference

ARM = {"label": "personalized", "pacing": "personalized"}
TARGET_MESA_SECONDS = 25.0  # default Mesa budget per size (s): rates need a few seconds
MIN_MESA_DAYS, MAX_MESA_DAYS = 2, 20
MESA_SEED_OFFSET = 1_000_003  # Mesa's draws are independent of the engine's streams
MIX_FILE = "floor_strategies.toml"  # the representative mix: that scenario's arms
MIX_DRIFT = 0.15  # share of playlist student-days a teacher swaps (stress 0.5 x sensitivity 0.3)
MESA_MAX_STUDENTS = 200_000
DEFAULT_SIZES = (100_000,)  # 99,900 students: the large district's goals; others opt-in
WARM_UP_STUDENTS = 900  # the district that loads the compiled kernels before timing




# --- inputs ---------------------------------------------------------------------------
def bench_scenario(students: int, seed: int = 0):
    """A validated scenario with about ``students`` students, every grade on the playlist.

    No burn-in year: the bench times the personalized daily cycle, and the
    first ``start_year()`` must already be a program year.
    """
    base = validate_scenario({"name": "bench", "arms": [ARM]}).district
    per_school = district_size(base.model_copy(update={"schools": 1}))
    schools = max(1, round(students / per_school))
    return validate_scenario({
        "name": "bench", "seed": seed, "calendar": {"burn_in_years": 0},
        "district": {"schools": schools, "program_grades": list(base.grades)},
        "arms": [ARM]}, "<bench>")


def new_district(scenario, reference) -> District:
    """The personalized arm's district (built, year not started)."""
    return District(scenario, scenario.arms[0], reference=reference)


def mix_scenario(students: int, seed: int = 0):
    """``floor_strategies``' arms and district shape at about ``students`` students:
    one year, one replicate, no burn-in (the bench times school days, not set-up)."""
    path = Path(sim.__file__).resolve().parents[1] / "scenarios" / MIX_FILE
    if not path.is_file():
        raise ScenarioError(f"{path}: the bench's mix needs this scenario file (plsim bench "
                            "runs from a source checkout)")
    data = read_toml(path)
    data.update(seed=seed, years=1, replicates=1)
    data.setdefault("calendar", {})["burn_in_years"] = 0
    shape = validate_scenario(data, str(path)).district
    per_school = district_size(shape.model_copy(update={"schools": 1}))
    data["district"]["schools"] = max(1, round(students / per_school))
    return validate_scenario(data, str(path))


def mix_district(scenario, arm_index: int, reference) -> District:
    """One arm of the mix, built, with every teacher drifting ``MIX_DRIFT``."""
    district = District(scenario, scenario.arms[arm_index], reference=reference)
    district.staff.drift[:] = MIX_DRIFT
    return district


# --- the engine -----------------------------------------------------------------------
def time_engine(scenario, reference, district=None) -> tuple[float, int]:
    """Wall time (s) of ``start_year()`` plus every day of one year; and the days run.

    ``district``: a built district of ``scenario`` (default: the playlist one).
    """
    wall, _, days = time_year(scenario, reference, district)
    return wall, days


def time_year(scenario, reference, district=None) -> tuple[float, float, int]:
    """Wall and CPU time (s, this process) of ``start_year()`` plus every day of one
    year; and the days run (see ``time_engine``)."""
    district = new_district(scenario, reference) if district is None else district
    days = scenario.calendar.days
    t0, c0 = time.perf_counter(), time.process_time()
    district.start_year()
    for day in range(days):
        district.day = day
        district.step()
    return time.perf_counter() - t0, time.process_time() - c0, days


def engine_days(district, days: int) -> dict[str, np.ndarray]:
    """Run a started district ``days`` days; per-student outcomes (see ``_outcomes``)."""
    start = mastered_counts(district.students.mastery)
    passes = np.zeros(district.students.n, np.int64)
    original = district._teach

    def counting(present, *args):
        passed = original(present, *args)
        passes[present] += passed  # present students are distinct: a fancy-index add is exact
        return passed

    district._teach = counting  # this instance only; not in any timed run
    try:
        for day in range(days):
            district.day = day
            district.step()
    finally:
        del district._teach
    gained = mastered_counts(district.students.mastery) - start
    return _outcomes(gained, days, passes, district.log.days_present)


def mastered_counts(mastery: np.ndarray) -> np.ndarray:
    """Skills truly mastered per student (chunked: no full-size temporary)."""
    out = np.empty(mastery.shape[0], np.int64)
    for part in chunks(mastery.shape[0]):
        out[part] = np.count_nonzero(mastery[part], axis=1)
    return out


def measure_memory(scenario, reference, district=None) -> float:
    """Peak bytes per student of the engine's state and working memory over one year.

    Measured as ``(S + P) / n``: ``S`` is the ``nbytes`` of the persistent
    per-student arrays allocated while the district is built
    (``StudentState`` and ``Record``); ``P`` is the ``tracemalloc`` peak of
    everything allocated after the build -- ``start_year()`` (placement,
    tracks, year log) and every daily step (draws, masks, gathers) -- over
    one full year. Teachers, curriculum, the reference and the interpreter
    itself are not counted. Run apart from the timings: tracing slows
    allocation.
    """
    district = new_district(scenario, reference) if district is None else district
    state = district.students.nbytes() + _nbytes(district.record)
    tracemalloc.start()
    try:
        district.start_year()
        for day in range(scenario.calendar.days):
            district.day = day
            district.step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return (state + peak) / district.students.n


def _nbytes(obj) -> int:
    return sum(v.nbytes for v in vars(obj).values() if isinstance(v, np.ndarray))


# --- the Mesa reference -----------------------------------------------------------------
def build_mesa(district, seed: int = 0):
    """A Mesa model started from a started district's state (before its first step)."""
    ref = mesa_reference
    return ref.MesaDistrict(ref.snapshot(district),
                            rng=np.random.default_rng(seed + MESA_SEED_OFFSET))


def time_mesa(model, days: int | None = None,
              target_s: float = TARGET_MESA_SECONDS) -> tuple[float, float, int]:
    """Step the Mesa model; return (wall seconds of stepping, CPU-seconds, days run).

    Args:
        days: days to run; None runs at least ``MIN_MESA_DAYS`` and stops before
            ``target_s`` seconds (projected from the days so far) or at ``MAX_MESA_DAYS``.
    """
    elapsed, cpu, done = 0.0, 0.0, 0
    while True:
        t0, c0 = time.perf_counter(), time.process_time()
        model.step()
        elapsed += time.perf_counter() - t0
        cpu += time.process_time() - c0
        done += 1
        if days is not None:
            if done >= days:
                return elapsed, cpu, done
        elif done >= MAX_MESA_DAYS or (
                done >= MIN_MESA_DAYS and elapsed * (done + 1) / done > target_s):
            return elapsed, cpu, done


def mesa_outcomes(model, start: np.ndarray, days: int) -> dict[str, np.ndarray]:
    """Per-student outcomes of the Mesa model after ``days`` days (see ``_outcomes``)."""
    agents = model.students
    gained = np.array([a.mastered_count() for a in agents]) - start
    passes = np.array([a.exit_slips_passed for a in agents])
    present = np.array([a.days_present for a in agents])
    return _outcomes(gained, days, passes, present)


# --- agreement ------------------------------------------------------------------------
def _outcomes(gained, days, passes, present) -> dict[str, np.ndarray]:
    """Per-student mastery gained per day (skills/day) and exit-slip pass rate.

    The pass rate is over days present; NaN for a student never present.
    """
    present = np.asarray(present, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(present > 0, np.asarray(passes, float) / present, np.nan)
    return {"mastery_gained_per_student_day": np.asarray(gained, float) / days,
            "exit_slip_pass_rate": rate}


def compare(engine: dict[str, np.ndarray], mesa: dict[str, np.ndarray]) -> dict[str, dict]:
    """Engine vs Mesa for each per-student outcome (students never present left out).

    Returns:
        Per outcome: means and standard errors of each implementation, the
        two-sample ``z`` of the difference in means, and ``paired_z``, the
        same difference tested within students (both started from the same
        student, so this removes between-student variance: a sharper check).
    """
    out = {}
    for name, x in engine.items():
        y = mesa[name]
        x_ok, y_ok = x[~np.isnan(x)], y[~np.isnan(y)]
        se_x, se_y = _se(x_ok), _se(y_ok)
        diff = (x - y)[~np.isnan(x) & ~np.isnan(y)]
        out[name] = {"engine_mean": float(x_ok.mean()), "engine_se": se_x,
                     "mesa_mean": float(y_ok.mean()), "mesa_se": se_y,
                     "z": _z(x_ok.mean() - y_ok.mean(), math.hypot(se_x, se_y)),
                     "paired_z": _z(diff.mean(), _se(diff))}
    return out


def _z(difference: float, se: float) -> float:
    return float(difference / se) if se > 0 else 0.0


def _se(x: np.ndarray) -> float:
    return float(x.std(ddof=1) / math.sqrt(x.size)) if x.size > 1 else 0.0


def agreement(students: int = 10_000, days: int = 10, seed: int = 0,
              reference=None) -> dict:
    """Run engine and Mesa ``days`` days from the same inputs; compare (see ``compare``).

    Returns:
        ``{"students", "days", <outcome>: {engine_mean, engine_se, mesa_mean, mesa_se, z}}``.
    """
    scenario = bench_scenario(students, seed)
    reference = state_reference(scenario) if reference is None else reference
    district = new_district(scenario, reference)
    district.start_year()
    model = build_mesa(district, seed)
    start = mastered_counts(district.students.mastery)
    time_mesa(model, days)  # (its timings are not needed here)
    result = compare(engine_days(district, days), mesa_outcomes(model, start, days))
    return {"students": district.students.n, "days": days, **result}


# --- the benchmark --------------------------------------------------------------------
def time_mix(scenario, reference) -> dict:
    """The engine on every arm of the mix: one year each, timed, then its memory traced.

    Returns ``students``, ``engine_days``, ``engine_seconds`` and ``engine_cpu_seconds``
    (all arms), ``arm_year_seconds`` and ``arm_year_cpu_seconds`` (their mean a year of
    one arm), ``engine_student_days_per_s`` and ``engine_student_days_per_cpu_s`` (all
    arms' student-days over their wall and CPU time),
    ``engine_by_arm`` (student-days/s), ``peak_rss_bytes`` (this process, after the
    timed years: the engine alone), ``bytes_per_student`` (the largest arm) and
    ``bytes_by_arm``.
    """
    seconds, cpu, rates, n, days = 0.0, 0.0, {}, 0, scenario.calendar.days
    for a, arm in enumerate(scenario.arms):
        district = mix_district(scenario, a, reference)
        n = district.students.n
        s, c, days = time_year(scenario, reference, district)
        seconds += s
        cpu += c
        rates[arm.label] = n * days / s
        del district
        gc.collect()  # its arrays sit in reference cycles (agents <-> model): free them now
    rss = peak_rss_bytes()
    memory = {}
    for a, arm in enumerate(scenario.arms):
        district = mix_district(scenario, a, reference)
        memory[arm.label] = measure_memory(scenario, reference, district)
        del district
        gc.collect()
    return {"students": n, "engine_days": days, "engine_seconds": seconds,
            "engine_cpu_seconds": cpu, "arm_year_seconds": seconds / len(rates),
            "arm_year_cpu_seconds": cpu / len(rates),
            "engine_student_days_per_s": n * days * len(rates) / seconds,
            "engine_student_days_per_cpu_s": n * days * len(rates) / cpu,
            "engine_by_arm": rates, "peak_rss_bytes": rss,
            "bytes_per_student": max(memory.values()), "bytes_by_arm": memory}


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far (bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # Linux: KB


def playlist_vs_mesa(students: int, mesa_days: int | None = None, seed: int = 0) -> dict:
    """Engine and Mesa on the playlist from the same inputs: rates, ratio, agreement.

    The ratio is of CPU-seconds (both in this process, one thread each): on an idle
    core the same as of wall time, and it does not move when other work shares the
    machine for part of the measurement (the Mesa model's few days, say)."""
    scenario = bench_scenario(students, seed)
    reference = state_reference(scenario)  # cached; never timed
    engine_s, engine_cpu, days = time_year(scenario, reference)
    district = new_district(scenario, reference)
    district.start_year()
    n = district.students.n
    engine_rate = n * days / engine_s
    out = {"playlist_students": n, "engine_playlist_student_days_per_s": engine_rate,
           "engine_playlist_student_days_per_cpu_s": n * days / engine_cpu}
    if n > MESA_MAX_STUDENTS:
        return {**out, "mesa_days": 0, "mesa_seconds": None, "mesa_cpu_seconds": None,
                "mesa_student_days_per_s": None, "mesa_student_days_per_cpu_s": None,
                "ratio": None, "agreement": None}
    model = build_mesa(district, seed)
    start = mastered_counts(district.students.mastery)
    mesa_s, mesa_cpu, m_days = time_mesa(model, mesa_days)
    checked = compare(engine_days(district, m_days), mesa_outcomes(model, start, m_days))
    mesa_cpu_rate = n * m_days / mesa_cpu
    return {**out, "mesa_days": m_days, "mesa_seconds": mesa_s, "mesa_cpu_seconds": mesa_cpu,
            "mesa_student_days_per_s": n * m_days / mesa_s,
            "mesa_student_days_per_cpu_s": mesa_cpu_rate,
            "ratio": out["engine_playlist_student_days_per_cpu_s"] / mesa_cpu_rate,
            "agreement": {"students": n, "days": m_days, **checked}}


def warm_up(seed: int = 0) -> None:
    """Load the compiled kernels into this process before any timing: a year of a
    small mix district, every arm (numba loads each kernel from
    its cache on first call, about 0.3 s per process, or compiles it the first time
    on a machine; neither is the daily cycle's time)."""
    small = mix_scenario(WARM_UP_STUDENTS, seed)
    reference = state_reference(small)
    for a in range(len(small.arms)):
        district = mix_district(small, a, reference)
        district.start_year()
        for day in range(small.calendar.days):
            district.day = day
            district.step()


def bench_size(students: int, mesa_days: int | None = None, seed: int = 0) -> dict:
    """Speed, memory and agreement at one district size (see ``run_bench``), in this process,
    the BLAS on one thread (as every run sets it: the goals are for one core)."""
    with threadpool_limits(limits=1, user_api="blas"):
        return _bench_size(students, mesa_days, seed)


def _bench_size(students: int, mesa_days: int | None, seed: int) -> dict:
    warm_up(seed)
    mix = mix_scenario(students, seed)
    row = time_mix(mix, state_reference(mix))
    row.update(playlist_vs_mesa(students, mesa_days, seed))
    mesa = row["mesa_student_days_per_cpu_s"]
    row["mix_over_mesa_playlist"] = row["engine_student_days_per_cpu_s"] / mesa if mesa else None
    row["mix"] = (f"engine: one year of each arm of {MIX_FILE} "
                  f"({', '.join(a.label for a in mix.arms)}), drift {MIX_DRIFT}")
    row["playlist"] = ("ratio and agreement: engine vs per-agent Mesa on the playlist "
                       "(personalized, every grade in the program), the rules the Mesa "
                       "reference implements")
    return row


def run_bench(sizes=DEFAULT_SIZES, mesa_days: int | None = None, seed: int = 0,
              fresh_process: bool = True) -> list[dict]:
    """Benchmark the engine (on the mix) and against the per-agent Mesa reference (on the
    playlist) at each size.

    Args:
        sizes: approximate numbers of students (whole schools are used).
        mesa_days: days the Mesa model runs at every size; None adapts to about
            ``TARGET_MESA_SECONDS`` s per size (2 to 20 days).
        seed: scenario seed.
        fresh_process: measure each size in a new process (so its peak RSS is its own).

    Returns:
        One JSON-serialisable dict per size: ``students``; ``engine_days`` (one
        year); ``engine_seconds`` (wall, s, all arms of the mix);
        ``engine_student_days_per_s`` (the mix) and ``engine_by_arm``;
        ``peak_rss_bytes``; ``bytes_per_student`` (see ``measure_memory``; the
        largest arm) and ``bytes_by_arm``; on the playlist: ``playlist_students``,
        ``engine_playlist_student_days_per_s``, ``mesa_days``, ``mesa_seconds``,
        ``mesa_student_days_per_s`` (wall), their ``..._per_cpu_s`` and
        ``mesa_cpu_seconds``, ``ratio`` (engine rate / Mesa rate in CPU-seconds, the
        same inputs and rules), ``agreement`` (see ``compare``);
        ``mix_over_mesa_playlist`` (the mix's rate over Mesa's playlist rate, CPU,
        for information); ``mix`` and
        ``playlist`` say in words what was timed.
    """
    if not fresh_process:
        return [bench_size(s, mesa_days, seed) for s in sizes]
    return [in_fresh_process(bench_size, s, mesa_days, seed) for s in sizes]


def in_fresh_process(fn, *args):
    """``fn(*args)`` in a new (spawned) process: its own memory, peak RSS and start."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def bench_report(sizes=DEFAULT_SIZES, sweep_runs: int = bench_rates.DEFAULT_SWEEP_RUNS,
                 end_to_end: bool = True, mesa_days: int | None = None,
                 seed: int = 0) -> dict:
    """``plsim bench``: the large district at each size, a shipped scenario end to end,
    a Sobol sweep's cost, and the goals judged on them.

    Args:
        sizes: see ``run_bench`` (each in a fresh process).
        sweep_runs: runs of the sweep to measure (``bench_rates.sobol_cost``, in a fresh
            process); 0 leaves the sweep out.
        end_to_end: run ``floor_strategies`` end to end (``bench_rates.end_to_end``).

    Returns:
        ``{"results": run_bench's rows, "end_to_end": dict | None, "sweep": dict | None,
        "goals": bench_goals.goals(...)}``, JSON-serialisable.
    """
    results = run_bench(sizes, mesa_days, seed)
    e2e = bench_rates.end_to_end() if end_to_end else None
    sweep = in_fresh_process(bench_rates.sobol_cost, sweep_runs) if sweep_runs else None
    return {"results": results, "end_to_end": e2e, "sweep": sweep,
            "goals": bench_goals.goals(results, e2e, sweep)}


# --- report ---------------------------------------------------------------------------
def _num(x, fmt: str, missing: str = "n/a") -> str:
    return missing if x is None else format(x, fmt)


def format_bench(report: dict) -> str:
    """``bench_report``'s report as plain text: the large district's tables, the agreement
    checks, the end-to-end and sweep rates, and the goals."""
    results = report["results"]
    lines = ["Engine on the mix (one year of each arm of floor_strategies, teachers drifting):",
             f"{'students':>10} {'engine sd/s':>12} {'bytes/student':>13} {'peak RSS':>10}"]
    for r in results:
        lines.append(f"{r['students']:>10,} {r['engine_student_days_per_s']:>12,.0f} "
                     f"{r['bytes_per_student']:>13,.0f} {r['peak_rss_bytes'] / 1e6:>8,.0f}MB")
    for r in results:
        arms = ", ".join(f"{k} {v / 1e6:.2f}M" for k, v in r.get("engine_by_arm", {}).items())
        lines.append(f"  {r['students']:,}: {arms}")
    lines += ["", "Engine vs per-agent Mesa on the playlist (the rules the Mesa reference "
                  "implements; same inputs):",
              f"{'students':>10} {'engine sd/CPU-s':>15} {'mesa days':>9} "
              f"{'mesa sd/CPU-s':>13} {'ratio':>7}"]
    for r in results:
        lines.append(f"{r['playlist_students']:>10,} "
                     f"{r['engine_playlist_student_days_per_cpu_s']:>15,.0f} "
                     f"{r['mesa_days']:>9} "
                     f"{_num(r['mesa_student_days_per_cpu_s'], '>13,.0f', 'not run'):>13} "
                     f"{_num(r['ratio'], '>6.0f'):>6}x")
    lines.append("(sd/s: student-days per second of wall time; sd/CPU-s: per CPU-second, "
                 "what the ratio compares)")
    lines += ["", "Agreement, engine vs Mesa over the same days from the same inputs "
                  "(mean +- standard error):"]
    for r in results:
        if r.get("agreement"):
            lines += _agreement_lines(r["agreement"])
    lines += ["", *_arm_year_lines(results),
              *bench_rates.rate_lines(report.get("end_to_end"), report.get("sweep")),
              "", *bench_goals.goal_lines(report["goals"])]
    return "\n".join(lines)


def _agreement_lines(a: dict) -> list[str]:
    out = [f"  {a['students']:,} students, {a['days']} days"]
    for name, c in a.items():
        if isinstance(c, dict):
            out.append(f"    {name}: engine {c['engine_mean']:.4f} +- {c['engine_se']:.4f}, "
                       f"mesa {c['mesa_mean']:.4f} +- {c['mesa_se']:.4f}, z = {c['z']:+.2f} "
                       f"(paired z = {c['paired_z']:+.2f})")
    return out


def _arm_year_lines(results: list[dict]) -> list[str]:
    lines = ["One arm-year (the mix's mean, BLAS on one thread):"]
    for r in results:
        lines.append(f"  {r['students']:,} students: {r['arm_year_cpu_seconds']:.2f} CPU-s "
                     f"({r['arm_year_seconds']:.2f} s wall), "
                     f"{r['engine_student_days_per_cpu_s'] / 1e6:.2f}M student-days a CPU-second")
    return lines
