"""A plain per-agent Mesa implementation of the personalized arm's school day.

The yardstick for the vectorised engine (``sim.district.model.District``) in
``plsim bench``: one ``StudentAgent`` per student, each living its own day
in pure Python on scalars and on its own ``bytearray`` rows (one byte per
skill) -- nothing is vectorised across students. It implements the
engine's daily rules for students on the playlist (program grades under
``pacing = "personalized"``):

* ``StudentAgent.plan()`` -- attendance draw; playlist assignment (the
  frontier: first skill at or above the lower bound that the record does not
  show mastered; a grade-level review skill if it lies beyond the upper
  bound); modality rotation; the supervising member of the room's team; the
  day's unit is added to that teacher's paces;
* ``StudentAgent.step()`` -- learning rate (the formula of
  ``District._learning_rate``, capacity factor included), learning with
  readiness, readiness floor and backfill of the first missing prerequisite
  at its own readiness, familiarity; exit slip and record update (streaks,
  ``mastery_streak``, ``fail_limit``); tracks and affect; the day's log;
* ``StudentAgent.benchmark()`` -- the periodic benchmark correcting the record.

Paces (distinct units each teacher runs) need every student's assignment
before anyone learns, so the model runs ``plan`` for all agents, then turns
the paces into capacity factors, then runs ``step``.

Not implemented, because they change nothing the daily rules read: the
growth and state tests and the year log's scores. Tutoring and traditional
pacing are outside the benchmark (``snapshot`` refuses such districts).

Inputs come from a ``District`` after ``start_year()`` (``snapshot``), so
both implementations start from the same students, record and teachers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from mesa import Agent, Model

from sim.district.model import DIFFICULTY_PIVOT_GRADE
from sim.engine.curriculum import NO_SKILL
from sim.engine.students import FAMILIARITY_MAX, MASTERED_THIS_YEAR
from sim.policies.pacing import SMALL_GROUP, Playlist

# Per-student inputs copied from the engine: (name in Inputs, agent attribute).
SCALAR_FIELDS = ("grade", "teacher", "room", "learning_rate", "engagement", "engagement_base",
                 "anxiety", "anxiety_base", "attendance", "streak", "fails", "streak_skill",
                 "track_below", "track_position", "track_other_days", "track_first_other",
                 "track_level")
ROW_FIELDS = ("mastery", "familiarity", "believed")  # (students x skills), one byte each


@dataclass
class Inputs:
    """The engine's state at the start of the year, copied (numpy arrays, one row a student).

    Attributes:
        params: the validated ``Scenario``.
        regime: the arm's ``Regime`` (its limits give the daily skill bounds).
        mastery, familiarity, believed: (students, skills) uint8 / uint8 / bool.
        prereqs: (skills, max_prereqs) prerequisite ids padded with ``NO_SKILL``.
        ease: per-skill multiplier of the learning rate (1).
        position: per-skill position on the vertical scale (grade-years).
        Other arrays: per student or per teacher/room, as named in the engine.
    """

    params: object
    regime: object
    lowest_grade: int
    skills_per_unit: int
    skills_per_grade: int
    skill_grade: np.ndarray
    prereqs: np.ndarray
    ease: np.ndarray
    position: np.ndarray
    teacher_effect: np.ndarray
    teacher_capacity: np.ndarray
    room_first_teacher: np.ndarray
    room_team_size: np.ndarray
    grade: np.ndarray
    teacher: np.ndarray
    room: np.ndarray
    mastery: np.ndarray
    familiarity: np.ndarray
    believed: np.ndarray
    learning_rate: np.ndarray
    engagement: np.ndarray
    engagement_base: np.ndarray
    anxiety: np.ndarray
    anxiety_base: np.ndarray
    attendance: np.ndarray
    streak: np.ndarray
    fails: np.ndarray
    streak_skill: np.ndarray
    track_below: np.ndarray
    track_position: np.ndarray
    track_other_days: np.ndarray
    track_first_other: np.ndarray
    track_level: np.ndarray

    @property
    def n_students(self) -> int:
        return self.grade.size


def snapshot(district) -> Inputs:
    """Copy a ``District``'s state after ``start_year()`` (before its first step).

    Raises:
        ValueError: if some student is not on the playlist (outside the program
            grades, another pacing rule, or tutoring supplements).
    """
    _check_playlist_only(district)
    st, rec, tr, cur = district.students, district.record, district.tracks, district.curriculum
    ease = np.exp(-district.params.learning.grade_difficulty
                  * (cur.skill_grade - DIFFICULTY_PIVOT_GRADE))
    return Inputs(
        params=district.params, regime=district.regime, lowest_grade=cur.lowest_grade,
        skills_per_unit=cur.skills_per_unit, skills_per_grade=cur.skills_per_grade,
        skill_grade=cur.skill_grade.copy(), prereqs=cur.prereqs.copy(), ease=ease,
        position=cur.position_years().astype(np.float32),
        teacher_effect=district.teacher_effect.copy(),
        teacher_capacity=district.teacher_capacity.copy(),
        room_first_teacher=district.room_first_teacher.copy(),
        room_team_size=district.room_team_size.copy(),
        grade=st.grade.copy(), teacher=st.teacher.copy(), room=st.room.copy(),
        mastery=st.mastery.copy(), familiarity=st.familiarity.copy(),
        believed=rec.believed.copy(), learning_rate=st.learning_rate.copy(),
        engagement=st.engagement.copy(), engagement_base=st.engagement_base.copy(),
        anxiety=st.anxiety.copy(), anxiety_base=st.anxiety_base.copy(),
        attendance=st.attendance.copy(), streak=rec.streak.copy(), fails=rec.fails.copy(),
        streak_skill=rec.streak_skill.copy(), track_below=tr.below.copy(),
        track_position=tr.position.copy(), track_other_days=tr.other_days.copy(),
        track_first_other=tr.first_other.copy(), track_level=tr.level.copy())


def _check_playlist_only(district) -> None:
    regime = district.regime
    if not (isinstance(regime.pacing, Playlist) and district.in_program.all()):
        raise ValueError("the Mesa reference implements the playlist only: every grade must be "
                         "a program grade of a 'personalized' arm")
    if regime.supplements:
        raise ValueError("the Mesa reference does not implement tutoring supplements")


def p_master(rate: float, readiness: float, readiness_floor: float) -> float:
    """P(mastering a skill today) from the daily hazard (per day) and readiness (0-1)."""
    return 1.0 - math.exp(-rate * (readiness_floor + (1.0 - readiness_floor) * readiness))


class StudentAgent(Agent):
    """One student. Attributes mirror one row of the engine's arrays (see ``Inputs``)."""

    def __init__(self, model: MesaDistrict, slot: int, state: dict):
        super().__init__(model)
        self.slot = slot  # the engine's row: fixes modality rotation and review skill
        for name, value in state.items():
            setattr(self, name, value)
        self.present = False
        self.skill = self.modality = self.supervisor = -1
        # the day's log, as sim.engine.outcomes.YearLog.record_day keeps it
        self.days_present = self.days_grade_level = self.days_mastered = 0
        self.lowest_offset = 2 ** 15 - 1
        self.switches = self.exit_slips_passed = 0
        self.engagement_sum = 0.0

    # --- before anyone learns: who is here, on what, with whom ---------------------------
    def plan(self) -> None:
        """Attendance, playlist skill, modality and supervising teacher for today."""
        m = self.model
        self.present = m.rng.random() < self.attendance
        if not self.present:
            return
        lo, hi = self._bounds()
        skill = self.believed.find(0, lo)  # the frontier; -1 if the record shows all mastered
        if skill < 0 or skill > hi:
            skill = m.first_skill(self.grade) + (self.slot + m.day) % m.skills_per_grade
        self.skill = skill
        self.modality = SMALL_GROUP + (self.slot + m.day) % 3
        self.supervisor = self._supervisor()
        m.units[self.supervisor].add(skill // m.skills_per_unit)

    def _bounds(self) -> tuple[int, int]:
        """Skill-id range [lo, hi] from today's limits in years
        (``sim.policies.limits.skill_bounds``)."""
        m = self.model
        g, spg, last = self.grade - m.lowest_grade, m.skills_per_grade, m.n_skills - 1
        lo = 0 if math.isinf(m.floor) else min(max(round((g - m.floor) * spg), 0), last)
        hi = last if math.isinf(m.ceiling) else min(
            max(round((g + 1 + m.ceiling) * spg) - 1, 0), last)
        return lo, hi

    def _supervisor(self) -> int:
        """A team member of the student's room, drawn uniformly; else the teacher of record."""
        m = self.model
        if self.room < 0:
            return self.teacher
        team = m.room_team_size[self.room]
        return m.room_first_teacher[self.room] + min(int(m.rng.random() * team), team - 1)

    # --- the block ---------------------------------------------------------------------------
    def step(self) -> None:
        """Learning, exit slip, record, affect and log for today (if present)."""
        if not self.present:
            return
        m, s = self.model, self.skill
        already = self.mastery[s] > 0
        readiness, missing = self._prerequisite_status(s)
        self._learn(s, self._learning_rate(), readiness, missing, already)
        passed = m.rng.random() < (m.pass_if_mastered if self.mastery[s] else m.pass_if_not)
        self._update_record(s, passed)
        offset = m.skill_grade[s] - self.grade
        switched, change = self._update_track(offset < 0, m.position[s])
        self._update_affect(already, readiness, offset >= 0, change)
        self._log(offset, already, switched, passed)

    def _prerequisite_status(self, skill: int) -> tuple[float, int]:
        """Share of direct prerequisites truly mastered (1 if none), first missing one (-1)."""
        pre = self.model.prereqs[skill]
        if not pre:
            return 1.0, -1
        have, first = 0, -1
        for p in pre:
            if self.mastery[p]:
                have += 1
            elif first < 0:
                first = p
        return have / len(pre), first

    def _learning_rate(self) -> float:
        """Daily hazard of mastering a ready skill (per day), as ``District._learning_rate``."""
        m, t, mod = self.model, self.supervisor, self.modality
        weight = 1.0 if mod <= SMALL_GROUP else m.teacher_weight_unled  # teacher-led or not
        teacher_mult = max(0.1, 1.0 + weight * m.teacher_effect[t] / m.typical_growth_sd)
        return (m.base_rate * m.ease[self.skill] * self.learning_rate * self.engagement
                * m.modality_factor[mod] * teacher_mult * m.capacity_factor[t])

    def _learn(self, s: int, rate: float, readiness: float, missing: int, already: bool) -> None:
        """Mastery of the day's skill, backfill of its first missing prerequisite, familiarity."""
        m = self.model
        gained = not already and m.rng.random() < p_master(rate, readiness, m.readiness_floor)
        if missing >= 0:  # met in context, at that prerequisite's own readiness
            pre_ready, _ = self._prerequisite_status(missing)
            if m.rng.random() < p_master(rate * m.backfill_rate, pre_ready, m.readiness_floor):
                self.mastery[missing] = MASTERED_THIS_YEAR
        if gained:
            self.mastery[s] = MASTERED_THIS_YEAR
        self.familiarity[s] = min(self.familiarity[s] + 1, FAMILIARITY_MAX)

    def _update_record(self, s: int, passed: bool) -> None:
        """Streaks from the exit slip (``sim.engine.records.Record.exit_slips``)."""
        m = self.model
        new_skill = self.streak_skill != s
        self.streak_skill = s
        # consecutive: a pass ends a run of failures, a failure ends a run of passes
        streak = ((0 if new_skill else self.streak) + 1) if passed else 0
        fails = 0 if passed else (0 if new_skill else self.fails) + 1
        if streak >= m.mastery_streak:
            self.believed[s] = 1
            streak = 0
        if fails >= m.fail_limit:  # sent back: the record forgets the prerequisites
            for p in m.prereqs[s]:
                self.believed[p] = 0
            fails = 0
        self.streak, self.fails = streak, fails

    def _update_track(self, below: bool, position: float) -> tuple[bool, float]:
        """Sustained on/off switches and the working level (``sim.engine.affect.Tracks.update``);
        (switched, the working level's change in grade-years)."""
        m = self.model
        level = self.track_level
        new = position if math.isnan(level) else level + m.level_alpha * (position - level)
        change = 0.0 if math.isnan(level) else abs(new - level)
        self.track_level = new
        track = self.track_below
        off = track >= 0 and below != (track == 1)
        days = self.track_other_days + 1 if off else 0
        first = position if off and days == 1 else self.track_first_other
        jump = abs(first - self.track_position)
        moved = off and days >= m.switch_persist_days
        switched = moved and jump >= m.switch_min_jump
        if moved or not off:
            self.track_below, self.track_position = int(below), position
        self.track_other_days = 0 if moved else days
        self.track_first_other = first
        return switched, change

    def _update_affect(self, already: bool, readiness: float, at_grade: bool,
                       change: float) -> None:
        """Engagement and anxiety after the day (``sim.engine.affect.update_affect``)."""
        af = self.model.affect
        felt = change ** af.change_exponent
        e, e0 = self.engagement, self.engagement_base
        e = (e + af.recovery * (e0 - e) - af.boredom * already
             - af.frustration * (1.0 - readiness) - af.switch_engagement * felt)
        self.engagement = min(max(e, af.min_engagement), 1.0)
        a, a0 = self.anxiety, self.anxiety_base
        a = (a + af.recovery * (a0 - a) + af.switch_anxiety * felt
             + af.unfamiliar_anxiety * (at_grade and readiness < 1.0))
        self.anxiety = min(max(a, 0.0), 1.0)

    def _log(self, offset: int, already: bool, switched: bool, passed: bool) -> None:
        self.days_present += 1
        self.days_grade_level += offset == 0
        self.days_mastered += already
        self.lowest_offset = min(self.lowest_offset, offset)
        self.switches += switched
        self.engagement_sum += self.engagement
        self.exit_slips_passed += passed

    # --- periodic ---------------------------------------------------------------------------
    def benchmark(self) -> None:
        """The adaptive diagnostic (``sim.engine.records.Diagnostic``) for this student:
        skills near the estimated level are read (misread w.p. ``benchmark_error``), and a
        skill read as mastered vouches for its prerequisites."""
        m = self.model
        z = m.rng.standard_normal()
        u = m.rng.random(m.n_skills).tolist()  # one draw per skill of this student
        level = m.lowest_grade + (m.n_skills - self.mastery.count(0)) / m.skills_per_grade
        estimate = level + m.diagnostic_error * z
        read = {k: bool(self.mastery[k]) != (u[k] < m.benchmark_error)
                for k in range(m.n_skills) if abs(m.position[k] - estimate) <= m.diagnostic_band}
        implied, stack = set(), [k for k, mastered in read.items() if mastered]
        while stack:
            for q in m.prereqs[stack.pop()]:
                if q not in implied:
                    implied.add(q)
                    stack.append(q)
        for k in implied:
            if read.get(k, True):
                self.believed[k] = 1
        for k, mastered in read.items():
            self.believed[k] = 1 if mastered else 0

    def mastered_count(self) -> int:
        """Skills this student truly masters."""
        return len(self.mastery) - self.mastery.count(0)


class MesaDistrict(Model):
    """The district as a plain Mesa model: one ``StudentAgent`` per student.

    Args:
        inputs: the engine's starting state (``snapshot``).
        rng: seed or ``numpy.random.Generator`` for ``self.rng``.
    """

    def __init__(self, inputs: Inputs, rng=None):
        super().__init__(rng=rng)
        self.day = 0
        self._set_constants(inputs)
        self.students = self._create_agents(inputs)

    def _set_constants(self, inputs: Inputs) -> None:
        """Parameters and curriculum as plain Python numbers and lists (read by every agent)."""
        p = inputs.params
        lp, tp, a = p.learning, p.teachers, p.assessment
        self.regime, self.affect = inputs.regime, p.affect
        self.lowest_grade = inputs.lowest_grade
        self.skills_per_unit, self.skills_per_grade = (inputs.skills_per_unit,
                                                       inputs.skills_per_grade)
        self.n_skills = inputs.skill_grade.size
        self.highest_grade = self.lowest_grade + self.n_skills // self.skills_per_grade - 1
        self.skill_grade = inputs.skill_grade.tolist()
        self.prereqs = [[int(x) for x in row if x != NO_SKILL] for row in inputs.prereqs]
        self.ease, self.position = inputs.ease.tolist(), inputs.position.tolist()
        self.teacher_effect = inputs.teacher_effect.tolist()
        self.teacher_capacity = inputs.teacher_capacity.tolist()
        self.room_first_teacher = inputs.room_first_teacher.tolist()
        self.room_team_size = inputs.room_team_size.tolist()
        self.base_rate, self.readiness_floor = lp.base_rate, lp.readiness_floor
        self.backfill_rate, self.teacher_weight_unled = lp.backfill_rate, lp.teacher_weight_unled
        self.modality_factor = [lp.modality_whole_class, lp.modality_small_group,
                                lp.modality_peer, lp.modality_software]
        self.typical_growth_sd, self.capacity_elasticity = (tp.typical_growth_sd,
                                                            tp.capacity_elasticity)
        self.pass_if_mastered, self.pass_if_not = 1.0 - a.exit_slip_slip, a.exit_slip_guess
        self.mastery_streak, self.fail_limit = a.mastery_streak, a.fail_limit
        self.benchmark_error = a.benchmark_error
        self.diagnostic_error, self.diagnostic_band = (a.diagnostic_error_years,
                                                       a.diagnostic_band_years)
        self.benchmark_every = p.calendar.benchmark_every_days
        self.switch_persist_days = p.affect.switch_persist_days
        self.switch_min_jump = p.affect.switch_min_jump_years
        self.level_alpha = 1.0 / max(p.affect.level_smoothing_days, 1.0)
        self.floor = self.ceiling = math.inf
        self.units: list[set] = [set() for _ in self.teacher_effect]
        self.capacity_factor = [1.0] * len(self.teacher_effect)

    def _create_agents(self, inputs: Inputs) -> list[StudentAgent]:
        columns = {name: getattr(inputs, name).tolist() for name in SCALAR_FIELDS}
        agents = []
        for i in range(inputs.n_students):
            state = {name: col[i] for name, col in columns.items()}
            for name in ROW_FIELDS:  # a private copy of the student's row
                state[name] = bytearray(getattr(inputs, name)[i].tobytes())
            agents.append(StudentAgent(self, i, state))
        return agents

    def first_skill(self, grade: int) -> int:
        """Global id of the first skill of ``grade`` (``Curriculum.first_skill``)."""
        g = min(max(grade, self.lowest_grade), self.highest_grade + 1)
        return (g - self.lowest_grade) * self.skills_per_grade

    def step(self) -> None:
        """One instructional day: benchmark if due, plans, capacity factors, the block."""
        day = self.day
        if self.benchmark_every and day > 0 and day % self.benchmark_every == 0:
            self.agents.do("benchmark")
        self.floor, self.ceiling = self.regime.bounds_years(day)
        self.units = [set() for _ in self.teacher_effect]
        self.agents.do("plan")
        self._capacity_factors()
        self.agents.shuffle_do("step")
        self.day += 1

    def _capacity_factors(self) -> None:
        """(capacity / paces)^elasticity capped at 1; paces = distinct units a teacher runs."""
        e = self.capacity_elasticity
        self.capacity_factor = [min(1.0, cap / max(len(units), 1)) ** e
                                for cap, units in zip(self.teacher_capacity, self.units,
                                                      strict=True)]
