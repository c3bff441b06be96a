"""``plsim bench``: speed and memory of the engine against a plain per-agent Mesa model.

For each district size the engine (``sim.district.model.District``, vectorised over
students) runs one full school year of the personalized arm with every
grade in the program, and a plain per-agent Mesa implementation of the same
daily rules (``sim.experiments.mesa_reference``) runs a few days from the same
starting state. Speeds are student-days per second of wall time, so the two
are comparable although the Mesa model runs fewer days.

An agreement check guards the comparison: at each size both implementations
run the Mesa model's days from the same inputs, and their mean mastery
gained per student-day and mean exit-slip pass rate are compared with a
two-sample z test, and with a paired one within students (the two use
different random draws, so they agree only in distribution).

Goals: ratio >= 50, >= 5 million engine student-days/s at 100,000 students,
<= 1 KB per student.
"""

from __future__ import annotations

import math
import time
import tracemalloc

import numpy as np

from sim.config.scenario import validate_scenario
from sim.district.model import District
from sim.district.reference import state_reference
from sim.engine.population import chunks, district_size
from sim.experiments import mesa_reference

ARM = {"label": "personalized", "pacing": "personalized"}
TARGET_MESA_SECONDS = 25.0  # default Mesa budget per size (s): rates need a few seconds
MIN_MESA_DAYS, MAX_MESA_DAYS = 2, 20
MESA_SEED_OFFSET = 1_000_003  # Mesa's draws are independent of the engine's streams
GOAL_RATIO, GOAL_RATE, GOAL_RATE_STUDENTS, GOAL_BYTES = 50.0, 5e6, 100_000, 1024




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


# --- the engine -----------------------------------------------------------------------
def time_engine(scenario, reference) -> tuple[float, int]:
    """Wall time (s) of ``start_year()`` plus every day of one year; and the days run."""
    district = new_district(scenario, reference)
    days = scenario.calendar.days
    t0 = time.perf_counter()
    district.start_year()
    for day in range(days):
        district.day = day
        district.step()
    return time.perf_counter() - t0, days


def engine_days(district, days: int) -> dict[str, np.ndarray]:
    """Run a started district ``days`` days; per-student outcomes (see ``_outcomes``)."""
    start = mastered_counts(district.students.mastery)
    passes = np.zeros(district.students.n, np.int64)
    original = district.record.exit_slips

    def counting(slots, skills, passed, *args, **kwargs):
        passes[slots] += passed  # slots are distinct: a plain fancy-index add is exact
        return original(slots, skills, passed, *args, **kwargs)

    district.record.exit_slips = counting  # this instance only; not in any timed run
    try:
        for day in range(days):
            district.day = day
            district.step()
    finally:
        del district.record.exit_slips
    gained = mastered_counts(district.students.mastery) - start
    return _outcomes(gained, days, passes, district.log.days_present)


def mastered_counts(mastery: np.ndarray) -> np.ndarray:
    """Skills truly mastered per student (chunked: no full-size temporary)."""
    out = np.empty(mastery.shape[0], np.int64)
    for part in chunks(mastery.shape[0]):
        out[part] = np.count_nonzero(mastery[part], axis=1)
    return out


def measure_memory(scenario, reference) -> float:
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
    district = new_district(scenario, reference)
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
              target_s: float = TARGET_MESA_SECONDS) -> tuple[float, int]:
    """Step the Mesa model; return (seconds of stepping, days run).

    Args:
        days: days to run; None runs at least ``MIN_MESA_DAYS`` and stops before
            ``target_s`` seconds (projected from the days so far) or at ``MAX_MESA_DAYS``.
    """
    elapsed, done = 0.0, 0
    while True:
        t0 = time.perf_counter()
        model.step()
        elapsed += time.perf_counter() - t0
        done += 1
        if days is not None:
            if done >= days:
                return elapsed, done
        elif done >= MAX_MESA_DAYS or (
                done >= MIN_MESA_DAYS and elapsed * (done + 1) / done > target_s):
            return elapsed, done


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
    time_mesa(model, days)
    result = compare(engine_days(district, days), mesa_outcomes(model, start, days))
    return {"students": district.students.n, "days": days, **result}


# --- the benchmark --------------------------------------------------------------------
def bench_size(students: int, mesa_days: int | None = None, seed: int = 0) -> dict:
    """Speed, memory and agreement at one district size (see ``run_bench``)."""
    scenario = bench_scenario(students, seed)
    reference = state_reference(scenario)  # cached per process; never timed
    engine_s, days = time_engine(scenario, reference)
    district = new_district(scenario, reference)
    district.start_year()
    n = district.students.n
    model = build_mesa(district, seed)
    start = mastered_counts(district.students.mastery)
    mesa_s, m_days = time_mesa(model, mesa_days)
    checked = compare(engine_days(district, m_days), mesa_outcomes(model, start, m_days))
    del model, district  # free the agents before the memory run
    engine_rate, mesa_rate = n * days / engine_s, n * m_days / mesa_s
    return {"students": n, "engine_days": days, "mesa_days": m_days,
            "engine_seconds": engine_s, "mesa_seconds": mesa_s,
            "engine_student_days_per_s": engine_rate, "mesa_student_days_per_s": mesa_rate,
            "ratio": engine_rate / mesa_rate,
            "bytes_per_student": measure_memory(scenario, reference),
            "agreement": {"students": n, "days": m_days, **checked}}


def run_bench(sizes=(10_000, 100_000), mesa_days: int | None = None, seed: int = 0) -> list[dict]:
    """Benchmark the engine against the per-agent Mesa reference at each size.

    Args:
        sizes: approximate numbers of students (whole schools are used).
        mesa_days: days the Mesa model runs at every size; None adapts to about
            ``TARGET_MESA_SECONDS`` s per size (2 to 20 days).
        seed: scenario seed.

    Returns:
        One JSON-serialisable dict per size: ``students``; ``engine_days`` (one
        year) and ``mesa_days``; ``engine_seconds``, ``mesa_seconds`` (wall, s);
        ``engine_student_days_per_s``, ``mesa_student_days_per_s``; ``ratio``
        (engine rate / Mesa rate); ``bytes_per_student`` (see
        ``measure_memory``); ``agreement`` (engine vs Mesa over ``mesa_days``
        days from the same inputs, see ``compare``).
    """
    return [bench_size(s, mesa_days, seed) for s in sizes]


# --- report ---------------------------------------------------------------------------
def format_bench(results: list[dict]) -> str:
    """A plain-text table of ``run_bench`` results, the agreement checks and the goals."""
    lines = [f"{'students':>9} {'engine days':>11} {'engine sd/s':>12} {'mesa days':>9} "
             f"{'mesa sd/s':>10} {'ratio':>7} {'bytes/student':>13}"]
    for r in results:
        lines.append(f"{r['students']:>9,} {r['engine_days']:>11} "
                     f"{r['engine_student_days_per_s']:>12,.0f} {r['mesa_days']:>9} "
                     f"{r['mesa_student_days_per_s']:>10,.0f} {r['ratio']:>6.0f}x "
                     f"{r['bytes_per_student']:>13,.0f}")
    lines.append("(sd/s: student-days per second of wall time)")
    lines += ["", "Agreement, engine vs Mesa over the same days from the same inputs "
                  "(mean +- standard error):"]
    for r in results:
        lines += _agreement_lines(r["agreement"])
    lines += ["", *_goal_lines(results)]
    return "\n".join(lines)


def _agreement_lines(a: dict) -> list[str]:
    out = [f"  {a['students']:,} students, {a['days']} days"]
    for name, c in a.items():
        if isinstance(c, dict):
            out.append(f"    {name}: engine {c['engine_mean']:.4f} +- {c['engine_se']:.4f}, "
                       f"mesa {c['mesa_mean']:.4f} +- {c['mesa_se']:.4f}, z = {c['z']:+.2f} "
                       f"(paired z = {c['paired_z']:+.2f})")
    return out


def _goal_lines(results: list[dict]) -> list[str]:
    """Verdicts on the goals.

    Speed and memory are judged at the largest size, where fixed working
    buffers (chunks of draws) no longer weigh on each student.
    """
    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    ratio = min(r["ratio"] for r in results)
    big = max(results, key=lambda r: r["students"])
    rate, size = big["engine_student_days_per_s"], big["bytes_per_student"]
    fast = rate >= GOAL_RATE and big["students"] >= 0.9 * GOAL_RATE_STUDENTS
    return ["Goals:",
            f"  ratio >= {GOAL_RATIO:.0f} at every size: {verdict(ratio >= GOAL_RATIO)} "
            f"(lowest {ratio:.0f}x)",
            f"  >= {GOAL_RATE / 1e6:.0f}M engine student-days/s at {GOAL_RATE_STUDENTS:,} "
            f"students: {verdict(fast)} ({rate / 1e6:.2f}M at {big['students']:,})",
            f"  <= {GOAL_BYTES} bytes per student: {verdict(size <= GOAL_BYTES)} "
            f"({size:,.0f} at {big['students']:,})"]
