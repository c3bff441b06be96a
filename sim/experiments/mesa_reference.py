"""A plain per-agent Mesa implementation of the personalized arm's school day.

The yardstick for the vectorised engine (``sim.district.model.District``) in
``plsim bench``: one ``StudentAgent`` per student, each living its own day
in pure Python on its own one-row arrays -- nothing is vectorised across
students. Every rule it applies is the engine's own rule in its plain Python
form (``.py_func`` of the compiled per-student function), so each rule has one
text. It implements the engine's daily rules for students on the playlist
(program grades under ``pacing = "personalized"``):

* ``StudentAgent.plan()`` -- attendance draw; playlist assignment (the
  frontier, ``records.frontier_of``; a grade-level review skill if it lies
  beyond the upper bound); modality rotation; the supervising member of the
  room's team;
* ``MesaDistrict.schedule()`` -- the rooms' scheduler: each room's teacher-led
  students in skill order form groups of one unit (``teachers.opens_group``), led
  by team members in runs (``teachers.group_leader``); each teacher's paces are the
  units of the students they teach (in rooms, those they lead teacher-led);
* ``StudentAgent.step()`` -- the learning rate (``learning.rate_of``: the
  teacher, the hand-off between team members and the room's costs,
  ``learning.continuity_of``, the capacity factor with the team's
  pooling in rooms, ``teachers.pooled_ratio``), readiness and learning
  (``learning.readiness``, ``learning.learn_skill``), the exit slip
  (``assessment.exit_slip``) and the record (``records.exit_slip_update``), the
  track (``outcomes.update_track``), affect (``affect.update_affect``) and the
  day's log (``outcomes.log_day``);
* ``StudentAgent.benchmark()`` -- the periodic benchmark correcting the record
  (``records.diagnose_loop``).

Groups and paces (distinct units each teacher runs) need every student's
assignment before anyone learns, so the model runs ``plan`` for all agents,
then the scheduler and the capacity factors, then ``step``.

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

from sim.engine import affect, assessment, learning, outcomes, records, teachers
from sim.engine.outcomes import TrackArrays, YearLog
from sim.engine.records import MAX_STEP_SCAN, MOVE_ON_NEVER, RecordArrays
from sim.engine.students import StudentRows
from sim.policies.pacing import SMALL_GROUP, WHOLE_CLASS, Playlist


@dataclass
class Inputs:
    """The engine's state at the start of the year, copied (numpy arrays, one row a student).

    Attributes:
        params: the validated ``Scenario``.
        regime: the arm's ``Regime`` (its limits give the daily skill bounds).
        students, record, tracks: the engine's bundles (``StudentRows``, ``RecordArrays``,
            ``TrackArrays``), copied.
        teacher, room: each student's teacher of record and room (-1 none).
        attendance: each student's P(present on a day).
        prereqs: (skills, max_prereqs) prerequisite ids padded with ``NO_SKILL``.
        diagnostic: the benchmark's ``records.DiagnosticTables``.
        Other arrays: per skill, teacher or room, as named in the engine.
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
    diagnostic: records.DiagnosticTables
    teacher_effect: np.ndarray
    teacher_trust: np.ndarray
    teacher_capacity: np.ndarray
    room_first_teacher: np.ndarray
    room_team_size: np.ndarray
    room_capacity: np.ndarray
    room_trust: np.ndarray
    pooling: float
    teacher: np.ndarray
    room: np.ndarray
    attendance: np.ndarray
    students: StudentRows
    record: RecordArrays
    tracks: TrackArrays

    @property
    def n_students(self) -> int:
        return self.teacher.size


def _copied(bundle):
    """The same bundle with every array copied."""
    return type(bundle)(*(a.copy() for a in bundle))


def _row(bundle, i: int):
    """Row ``i`` of every array of ``bundle`` (a private one-row copy, same dtypes)."""
    return type(bundle)(*(a[i:i + 1].copy() for a in bundle))


def snapshot(district) -> Inputs:
    """Copy a ``District``'s state after ``start_year()`` (before its first step).

    Raises:
        ValueError: if some student is not on the playlist (outside the program
            grades, another pacing rule, or tutoring supplements).
    """
    _check_playlist_only(district)
    st, cur = district.students, district.curriculum
    return Inputs(
        params=district.params, regime=district.regime, lowest_grade=cur.lowest_grade,
        skills_per_unit=cur.skills_per_unit, skills_per_grade=cur.skills_per_grade,
        skill_grade=cur.skill_grade.copy(), prereqs=cur.prereqs.copy(),
        ease=district._ease.copy(), position=cur.position_years().astype(np.float32),
        diagnostic=district.diagnostic.tables,
        teacher_effect=district.teacher_effect.copy(), teacher_trust=district.staff.trust.copy(),
        teacher_capacity=district.teacher_capacity.copy(),
        room_first_teacher=district.room_first_teacher.copy(),
        room_team_size=district.room_team_size.copy(),
        room_capacity=district.room_capacity.copy(), room_trust=district.room_trust.copy(),
        pooling=float(district.params.teams.capacity_pooling),
        teacher=st.teacher.copy(), room=st.room.copy(), attendance=st.attendance.copy(),
        students=_copied(st.rows()), record=_copied(district.record.arrays),
        tracks=_copied(district.tracks.arrays))


def _check_playlist_only(district) -> None:
    regime = district.regime
    if not (isinstance(regime.pacing, Playlist) and district.in_program.all()):
        raise ValueError("the Mesa reference implements the playlist only: every grade must be "
                         "a program grade of a 'personalized' arm")
    if regime.supplements:
        raise ValueError("the Mesa reference does not implement tutoring supplements")


class StudentAgent(Agent):
    """One student: one-row copies of the engine's bundles (``rows``, ``record``,
    ``tracks``, ``log``), read and written by the engine's rules in plain Python."""

    def __init__(self, model: MesaDistrict, slot: int, inputs: Inputs):
        super().__init__(model)
        self.slot = slot  # the engine's row: fixes modality rotation and review skill
        self.teacher, self.room = int(inputs.teacher[slot]), int(inputs.room[slot])
        self.attendance = float(inputs.attendance[slot])
        self.rows = _row(inputs.students, slot)
        self.record = _row(inputs.record, slot)
        self.tracks = _row(inputs.tracks, slot)
        self.log = YearLog(1).day_arrays  # the year log's daily accumulators, one row
        self.grade = int(self.rows.grade[0])
        self.present = False
        self.skill = self.modality = self.supervisor = -1
        self.exit_slips_passed = 0

    @property
    def days_present(self) -> int:
        return int(self.log.days_present[0])

    # --- before anyone learns: who is here, on what, with whom ---------------------------
    def plan(self) -> None:
        """Attendance, playlist skill, modality and supervising teacher for today."""
        m = self.model
        self.present = m.rng.random() < self.attendance
        if not self.present:
            return
        lo, hi = self._bounds()
        rec = self.record
        skill = int(records.frontier_of.py_func(rec.bits, rec.frontier, rec.frontier_bound,
                                                rec.stale, rec.advanced, 0, lo, m.n_skills,
                                                MAX_STEP_SCAN))
        if skill > hi:
            skill = m.first_skill(self.grade) + (self.slot + m.day) % m.skills_per_grade
        self.skill = skill
        self.modality = SMALL_GROUP + (self.slot + m.day) % 3
        self.supervisor = self._supervisor()

    @property
    def led(self) -> bool:
        """Whether today's modality is teacher-led (``learning.is_led``)."""
        return bool(learning.is_led.py_func(self.modality, self.model.rate_rules))

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

    # --- the block: the engine's rules, uncompiled ----------------------------------------
    def step(self) -> None:
        """Learning, exit slip, record, tracks, affect and log for today (if present)."""
        if not self.present:
            return
        m, s, rules = self.model, self.skill, self.model.rules
        rows, rec, t = self.rows, self.record, self.supervisor
        effect, trust = m.staff
        mult = learning.teacher_multiplier.py_func(effect[t], self.modality, m.rate_rules)
        team = m.room_team_size[self.room] if self.room >= 0 else 0
        continuity = learning.continuity_of.py_func(t, self.teacher, self.room, team,
                                                    self.modality, trust, m.rate_rules)
        rate = learning.rate_of.py_func(rows.learning_rate[0], rows.engagement[0], m.ease[s],
                                        m.modality_factor[self.modality], mult, continuity,
                                        m.capacity_factor(t, self.room, self.led),
                                        m.rate_rules)
        ready = learning.readiness.py_func(rows.mastery, 0, s, m.prereqs)
        already, gained = learning.learn_skill.py_func(
            rows.mastery, rows.familiarity, 0, s, rate, ready, np.float32(m.rng.random()),
            np.float32(m.rng.random()), rules.learning)
        passed = assessment.exit_slip.py_func(np.float32(m.rng.random()), already or gained,
                                              rules.pass_mastered, rules.pass_guess)
        verdict = records.update_streak.py_func(rec.run, rec.streak_skill, rec.days_on, 0, s,
                                                passed, MOVE_ON_NEVER, rules.record)
        records.mark_record.py_func(rec.bits, rec.frontier, rec.advanced, rec.stale, 0, s,
                                    verdict, m.prereqs)
        offset = np.int16(m.skill_grade[s] - self.grade)
        switched, change = outcomes.update_track.py_func(*self.tracks, 0, offset < 0,
                                                         m.position[s], rules.tracks)
        engagement = affect.update_affect.py_func(
            rows.engagement, rows.engagement_base, rows.anxiety, rows.anxiety_base, 0, already,
            ready[0], offset, change, rules.affect)
        outcomes.log_day.py_func(*self.log, 0, offset, already, switched, engagement)
        self.exit_slips_passed += bool(passed)

    # --- periodic ---------------------------------------------------------------------------
    def benchmark(self) -> None:
        """The adaptive diagnostic (``records.diagnose_loop``) for this student: skills
        near the estimated level are read (misread w.p. ``benchmark_error``), a skill
        read as mastered vouches for its prerequisites; the rest of the record stands."""
        m = self.model
        draws = (np.array([m.rng.standard_normal()], np.float32),
                 m.rng.random((1, m.n_skills), dtype=np.float32))
        scratch = (np.empty(m.n_skills, np.float32), *(np.empty(m.n_skills, bool)
                                                       for _ in range(3)),
                   np.empty(self.record.bits.shape[1], np.uint8))
        records.diagnose_loop.py_func(self.record.bits, np.zeros(1, np.int64),
                                      np.zeros(1, bool), self.rows.mastery > 0, draws,
                                      m.diagnostic, scratch)
        self.record.stale[0] = True

    def mastered_count(self) -> int:
        """Skills this student truly masters."""
        return int(np.count_nonzero(self.rows.mastery))


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
        self.students = [StudentAgent(self, i, inputs) for i in range(inputs.n_students)]

    def _set_constants(self, inputs: Inputs) -> None:
        """Parameters, curriculum and the rules' parameter bundles (read by every agent)."""
        from sim.engine.affect import affect_rules
        from sim.engine.learning import learning_rules
        from sim.engine.outcomes import TrackRules
        from sim.engine.school_day import DayRules

        p = inputs.params
        lp, tp, a, af = p.learning, p.teachers, p.assessment, p.affect
        self.regime = inputs.regime
        self.lowest_grade = inputs.lowest_grade
        self.skills_per_unit, self.skills_per_grade = (inputs.skills_per_unit,
                                                       inputs.skills_per_grade)
        self.n_skills = inputs.skill_grade.size
        self.highest_grade = self.lowest_grade + self.n_skills // self.skills_per_grade - 1
        self.skill_grade, self.prereqs, self.position = (inputs.skill_grade, inputs.prereqs,
                                                         inputs.position)
        self.diagnostic = inputs.diagnostic
        self.room_first_teacher = inputs.room_first_teacher.tolist()
        self.room_team_size = inputs.room_team_size.tolist()
        self.room_capacity = inputs.room_capacity.tolist()
        self.room_trust = inputs.room_trust.tolist()
        self.pooling = inputs.pooling
        self.staff = (inputs.teacher_effect, inputs.teacher_trust)
        self.teacher_capacity = inputs.teacher_capacity.tolist()
        self.capacity_elasticity = tp.capacity_elasticity
        self.ease = inputs.ease
        self.modality_factor = np.array([lp.modality_whole_class, lp.modality_small_group,
                                         lp.modality_peer, lp.modality_software], np.float32)
        self.rate_rules = learning.RateRules(
            float(lp.base_rate), float(lp.teacher_weight_unled), float(tp.typical_growth_sd),
            float(p.teams.handoff_loss), WHOLE_CLASS, SMALL_GROUP, float(p.teams.transition_loss),
            float(p.teams.unled_supervision_loss))
        self.group_size = int(p.teams.group_size)
        smoothing = 1.0 / max(af.level_smoothing_days, 1.0)
        self.rules = DayRules(
            learning_rules(lp), 1.0 - a.exit_slip_slip, float(a.exit_slip_guess),
            records.record_rules(a, False),
            TrackRules(np.float32(smoothing), int(af.switch_persist_days),
                       np.float32(af.switch_min_jump_years)), affect_rules(af))
        self.benchmark_every = p.calendar.benchmark_every_days
        self.floor = self.ceiling = math.inf
        self.units: list[set] = [set() for _ in self.teacher_capacity]
        self.room_units: list[set] = [set() for _ in self.room_capacity]
        self.own_ratio = [1.0] * len(self.teacher_capacity)

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
        self.units = [set() for _ in self.teacher_capacity]
        self.room_units = [set() for _ in self.room_capacity]
        self.agents.do("plan")
        self.schedule()
        self._capacity_factors()
        self.agents.shuffle_do("step")
        self.day += 1

    def schedule(self) -> None:
        """The rooms' scheduler, one room at a time: its present teacher-led students in
        skill order (ties by slot) are cut into groups (``teachers.opens_group``) and each
        group gets its leader (``teachers.group_leader``); then each student's unit is
        added to the paces of the teacher who teaches them (outside rooms every student,
        in rooms the teacher-led ones) and, teacher-led, to their room's."""
        rooms: dict[int, list[StudentAgent]] = {}
        for a in self.students:
            if a.present and a.room >= 0 and a.led:
                rooms.setdefault(a.room, []).append(a)
        spu = self.skills_per_unit
        for room, led in rooms.items():
            led.sort(key=lambda a: (a.skill, a.slot))
            group, members, groups = [], 0, 0
            for j, a in enumerate(led):
                if j > 0 and teachers.opens_group.py_func(
                        a.skill // spu == led[j - 1].skill // spu, members, self.group_size):
                    groups, members = groups + 1, 0
                members += 1
                group.append(groups)
            for a, g in zip(led, group, strict=True):
                a.supervisor = teachers.group_leader.py_func(
                    g, groups + 1, self.room_first_teacher[room], self.room_team_size[room])
                self.room_units[room].add(a.skill // spu)
        for a in self.students:
            if a.present and (a.room < 0 or a.led):
                self.units[a.supervisor].add(a.skill // spu)

    def _capacity_factors(self) -> None:
        """Each teacher's capacity over paces capped at 1 (paces: the distinct units the
        teacher runs today)."""
        self.own_ratio = [min(1.0, cap / max(len(units), 1))
                          for cap, units in zip(self.teacher_capacity, self.units, strict=True)]

    def capacity_factor(self, teacher: int, room: int, led: bool) -> float:
        """A student's capacity factor, ratio^elasticity: 1 for software and peer work in a
        room; else the supervising teacher's own ratio, or in a room with pooling the
        team's (``teachers.pooled_ratio``) against the room's distinct teacher-led units,
        as ``teachers.capacity_ratio`` gives the engine."""
        if room >= 0 and not led:
            return 1.0
        ratio = self.own_ratio[teacher]
        if room >= 0 and self.pooling > 0:
            ratio = teachers.pooled_ratio.py_func(ratio, self.room_capacity[room],
                                                  len(self.room_units[room]),
                                                  self.room_trust[room], self.pooling)
        return ratio ** self.capacity_elasticity
