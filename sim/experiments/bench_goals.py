"""The speed and memory goals (issue 28) judged on a ``plsim bench`` report.

Each goal is a dict: ``goal`` (its key), ``what`` (in words), ``target`` and
``direction`` (``"<="``, ``">="`` or ``"<"``), ``unit``, ``value`` (None where the
bench did not measure it) and ``met`` (True, False, or None: not measured).

The large district's goals (an arm-year, the Mesa ratio, the bytes a student) are
judged at the measured size within a tenth of ``LARGE`` students (``--sizes 100000``
gives 99,900: 111 schools of 900); the 1,000,000-student year's peak RSS at a size
of at least nine tenths of a million. The arm-year is in CPU-seconds of the bench's
process, the BLAS on one thread: the goal is for one core, and CPU time does not
grow when other work shares the machine, as wall time does.
"""

from __future__ import annotations

import operator

GOAL_E2E_RATE = 10e6  # reported student-days per CPU-second, floor_strategies x 2, one core
GOAL_SWEEP_MINUTES = 16.0  # core-minutes, a 1,000-sample Sobol of sweep_floor_sobol
GOAL_ARM_YEAR_S = 1.8  # CPU-seconds, one arm-year at LARGE students (10M student-days/s)
GOAL_RATIO = 100.0  # the engine over the per-agent Mesa reference, on the playlist
GOAL_BYTES = 700  # bytes a student, the largest arm's state and working arrays
GOAL_RSS = 1.5e9  # bytes, peak RSS of a 1,000,000-student year
LARGE, MILLION = 99_900, 1_000_000

COMPARE = {"<=": operator.le, ">=": operator.ge, "<": operator.lt}


def goal(key: str, what: str, direction: str, target: float, value, unit: str) -> dict:
    """One goal, judged (``met`` None when ``value`` is None)."""
    value = None if value is None else float(value)
    met = None if value is None else bool(COMPARE[direction](value, target))
    return {"goal": key, "what": what, "direction": direction, "target": target,
            "unit": unit, "value": value, "met": met}


def large_row(results: list[dict]) -> dict | None:
    """The size row within a tenth of ``LARGE`` students nearest it, if any."""
    near = [r for r in results if abs(r["students"] - LARGE) <= 0.1 * LARGE]
    return min(near, key=lambda r: abs(r["students"] - LARGE)) if near else None


def goals(results: list[dict], e2e: dict | None, sweep: dict | None) -> list[dict]:
    """Every goal of issue 28 judged on the bench's measurements (see the module)."""
    row = large_row(results) or {}
    at = f"{row['students']:,}" if row else f"{LARGE:,}"
    big = [r for r in results if r["students"] >= 0.9 * MILLION]
    return [
        goal("end_to_end", "reported student-days per CPU-second: floor_strategies, 2 "
             "replicates, one core, the whole process", ">=", GOAL_E2E_RATE,
             e2e and e2e["student_days_per_cpu_s"], "student-days/CPU-s"),
        goal("sweep", "core-minutes for a 1,000-sample Sobol of sweep_floor_sobol's design",
             "<=", GOAL_SWEEP_MINUTES, sweep and sweep["core_minutes"], "core-minutes"),
        goal("arm_year", f"CPU-seconds for one arm-year at {at} students (the mix's mean)",
             "<=", GOAL_ARM_YEAR_S, row.get("arm_year_cpu_seconds"), "CPU-s"),
        goal("mesa_ratio", f"the engine over the per-agent Mesa reference (playlist, {at} "
             "students)", ">=", GOAL_RATIO, row.get("ratio"), "x"),
        goal("bytes_per_student", f"bytes a student (largest arm, {at} students)", "<=",
             GOAL_BYTES, row.get("bytes_per_student"), "bytes"),
        goal("million_student_rss", "peak RSS of a 1,000,000-student year", "<", GOAL_RSS,
             big[0]["peak_rss_bytes"] if big else None, "bytes"),
    ]


HOW = {"end_to_end": " (drop --no-end-to-end)", "sweep": " (--sweep-runs N, at least 2)",
       "arm_year": " (--sizes 100000)", "mesa_ratio": " (--sizes 100000)",
       "bytes_per_student": " (--sizes 100000)", "million_student_rss": " (--sizes 1000000)"}


def goal_lines(judged: list[dict]) -> list[str]:
    """The goals in words: met, NOT met, or not measured (with the option that measures)."""
    lines = ["Goals:"]
    for g in judged:
        target = _show(g["target"], g["unit"])
        if g["met"] is None:
            verdict = f"not measured{HOW.get(g['goal'], '')}"
        else:
            verdict = f"{'met' if g['met'] else 'NOT met'} ({_show(g['value'], g['unit'])})"
        lines.append(f"  {g['what']} {g['direction']} {target}: {verdict}")
    return lines


def _show(x: float, unit: str) -> str:
    if unit == "student-days/CPU-s":
        return f"{x / 1e6:.2f}M"
    if unit == "bytes" and x >= 1e8:
        return f"{x / 1e9:.2f} GB"
    if unit == "x":
        return f"{x:.0f}x"
    if unit == "bytes":
        return f"{x:,.0f}"
    return f"{x:.2f} {unit}" if unit == "CPU-s" else f"{x:.1f} {unit}"
