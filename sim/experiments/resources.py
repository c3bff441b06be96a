"""Resource sense: a run's peak memory and time, estimated before anything is simulated.

``plsim check`` prints the estimate; ``plsim run`` and ``plsim sweep`` refuse a run whose
memory in all exceeds what this machine has available (``check_memory``), unless told to
ignore the check (a Dask cluster or a machine whose memory the check cannot see).

The estimate is a sum of measured parts (peak resident set sizes, bytes), taken on this
project's machine with ``/usr/bin/time -f %M`` around ``plsim run`` (see
``docs/performance.md``, "Memory and time before a run"):

* ``BASE_BYTES``: a process with the package imported (numpy, pandas, numba's cached
  kernels, Mesa): 353-354 MB after the imports, whatever the scenario.
* ``SKILL_PAIR_BYTES`` x skills²: the curriculum's prerequisite closure (``Record``'s
  skill x skill matrices) and the temporaries that build it, once per district; 165 MB at
  2,400 skills (tracemalloc peak of a district's build, less its student arrays).
* per student: ``STUDENT_BYTES + STUDENT_SKILL_BYTES`` x skills, for the larger of the
  district and the statewide reference (built, then freed, before the runs): the student
  arrays (mastery and familiarity, one byte a skill each; the record's bits), the day's
  working arrays and the arm's student-year rows until they are written, as resident memory
  (the allocator keeps freed pages): 3.6 kB a student at 200 skills, 32 kB at 2,400.
* the tables and figures written at the end, on top of the run: ``WRITE_BYTES`` +
  ``ROW_BYTES`` x one part's student-year rows (the tables are read a part, one arm x
  replicate, at a time: +46 MB at 1,440 rows a part, +55 MB at 10,800) + ``REPORT_ROW_BYTES``
  x every student-year row of the run (the report reads the program grades' rows, a third
  of a K-8 district's, a dozen 8-byte columns: computed, not measured).

Against the measured peak RSS of five serial runs (720 to 36,000 students, 200 to 2,400
skills) the estimate is 1% under to 24% over (over at the largest districts); 11% over
on a sixth, measured after the constants were set.

Worker processes are forked from a parent that has imported the package: their imported
pages are shared until written, so a worker adds ``WORKER_BYTES`` (its own pages: 95 MB
unique set size on the quick scenario, of which 38 MB its run) rather than a second
``BASE_BYTES``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.config.scenario import ScenarioError
from sim.experiments.executor import resolve_workers

MB = 1e6
GB = 1e9
BASE_BYTES = 360 * MB
SKILL_PAIR_BYTES = 29.0
STUDENT_BYTES = 1_000.0
STUDENT_SKILL_BYTES = 13.0
FIXED_RUN_BYTES = 24 * MB  # the first district's set-up beyond the students (caches, tables)
WRITE_BYTES = 45 * MB
ROW_BYTES = 960.0
REPORT_ROW_BYTES = 32.0
WORKER_BYTES = 60 * MB
SPIN_UP_SKILL_BYTES = 2.125  # a held spun-up start: mastery, familiarity, record bits (1/8)
SPIN_UP_STUDENT_BYTES = 100.0  # its per-student arrays (ids, grades, traits, record state)
# engine speed, student-days per second on one core: the mix of docs/performance.md's
# bench (2.0-4.8M on an idle core); a shared or loaded machine is slower
STUDENT_DAYS_PER_S = 2.0e6
START_SECONDS = 8.0  # imports, the statewide reference (cached after the first run)
TASK_SECONDS = 1.0  # each arm x replicate's set-up (district built, placement)


@dataclass(frozen=True)
class Estimate:
    """A run's estimated peak memory (bytes) and time (seconds)."""

    students: int  # students in one district
    skills: int
    tasks: int  # arm x replicate runs
    workers: int  # processes simulating at once
    per_worker: float  # bytes: one process simulating one arm x replicate
    in_all: float  # bytes: the parent and every worker at their peaks
    student_days: float
    seconds: float


def estimate(scenario, workers: int = 1, tasks: int | None = None) -> Estimate:
    """Peak memory and time of running ``scenario`` on ``workers`` processes (0 = all
    cores; 1 = serial, in this process). ``tasks``: runs of this size shared among the
    workers (default: the scenario's arms x replicates; a sweep's design points)."""
    cur, d = scenario.curriculum, scenario.district
    skills = (cur.highest_grade - cur.lowest_grade + 1) * cur.units_per_grade \
        * cur.skills_per_unit
    students = d.schools * len(d.grades) * d.classes_per_grade * d.class_size
    reference = scenario.assessment.reference_students_per_grade * len(d.grades)
    tasks = tasks or len(scenario.arms) * scenario.replicates
    procs = max(1, min(resolve_workers(workers, warn=False), tasks))  # as the executor
    per_student = STUDENT_BYTES + STUDENT_SKILL_BYTES * skills
    # the replicate's spun-up start held beside the district (district.spinup keeps one):
    # mastery and familiarity (a byte a skill each), the record's bits, the 1-D arrays
    held = SPIN_UP_SKILL_BYTES * skills + SPIN_UP_STUDENT_BYTES \
        if scenario.calendar.burn_in_years else 0.0
    one_run = (FIXED_RUN_BYTES + SKILL_PAIR_BYTES * skills ** 2
               + max(students * (per_student + held), reference * per_student))
    part_rows = students * scenario.years
    write = WRITE_BYTES + ROW_BYTES * part_rows + REPORT_ROW_BYTES * part_rows * tasks
    if procs == 1:
        per_worker = BASE_BYTES + one_run
        in_all = per_worker + write
    else:
        per_worker = WORKER_BYTES + one_run
        in_all = BASE_BYTES + write + procs * per_worker
    # the spin-up runs once per replicate (``district.spinup``), the reported years per task
    spin_ups = -(-tasks // len(scenario.arms)) * scenario.calendar.burn_in_years
    student_days = float(students) * scenario.calendar.days * (scenario.years * tasks + spin_ups)
    waves = -(-tasks // procs)  # tasks run in waves of ``procs``
    seconds = (START_SECONDS + waves * TASK_SECONDS
               + student_days / (STUDENT_DAYS_PER_S * procs))
    return Estimate(students, skills, tasks, procs, per_worker, in_all, student_days, seconds)


def available_bytes() -> int | None:
    """Memory this machine can give a new process without swapping (bytes); None when
    it cannot be read."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except (ImportError, OSError):
        pass
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def format_estimate(est: Estimate) -> str:
    """Two lines: memory (per worker and in all) and time."""
    procs = "serial" if est.workers == 1 else f"{est.workers} worker processes"
    return (f"memory: about {_size(est.per_worker)} per worker, {_size(est.in_all)} in all "
            f"({procs}; {est.students:,} students x {est.skills:,} skills a district, "
            f"{est.tasks:,} arm x replicate runs)\n"
            f"time: about {_duration(est.seconds)} ({est.student_days:,.0f} student-days at "
            f"{STUDENT_DAYS_PER_S / 1e6:g}M a second per core; a busy machine is slower)")


def check_memory(scenario, workers: int = 1, ignore: bool = False,
                 source: str = "<scenario>", tasks: int | None = None) -> Estimate:
    """The estimate; ScenarioError (status 2) naming the figures when it exceeds the memory
    available, unless ``ignore``."""
    est = estimate(scenario, workers, tasks)
    free = available_bytes()
    if not ignore and free is not None and est.in_all > free:
        raise ScenarioError(
            f"{source}: this run needs about {_size(est.in_all)} of memory "
            f"({_size(est.per_worker)} per worker; {est.students:,} students x "
            f"{est.skills:,} skills a district, {est.workers} process(es)), but this machine "
            f"has {_size(free)} available. Make the district smaller, use fewer --workers, "
            "or pass --ignore-memory-check if the check cannot see the memory the run will "
            "have")
    return est


def _size(n: float) -> str:
    return f"{n / GB:,.1f} GB" if n >= GB else f"{n / MB:,.0f} MB"


def _duration(s: float) -> str:
    if s < 120:
        return f"{s:.0f} s"
    if s < 2 * 3600:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:,.1f} h"
