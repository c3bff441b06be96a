"""The district: a Mesa model that runs school years day by day.

One ``step()`` is one instructional day. Its phases, in order, one call each:

1. **assessments** due today, before instruction: fall growth test (and the
   tutoring group chosen on it), benchmarks, state test, spring growth test
   (``_assessments``);
2. **draws**: each random process's uniforms for all students, keyed by
   (year, day) and made on first use (``_draw``: a ``DailyDraws``);
3. **attendance**: who is present (``_attend``);
4. **supervision**: who teaches each student today, a team member in rooms
   (``_supervise``); after the assignment, the rooms' scheduler gives each teacher-led
   student the team member leading their skill group (``_schedule``);
5. **assignment**: the regimes' (``_assign`` -> ``policies.regimes.assign_day``,
   reading a ``policies.day.DayContext``, never the district): each regime's
   limits and pacing pick its students' skill and modality, then teachers'
   drift and pace limits (below); the days off the common pace are logged;
6. **learning rate**: readiness aside, the daily hazard from the teacher,
   modality, engagement and capacity, where the distinct paces (content
   units) each teacher runs set the capacity factor (``_learning_rate``);
7. **the block** (``_teach``): learning (mastery gains, backfill of
   prerequisites, familiarity); the exit slip, from which the record (not
   the truth) is updated; affect (engagement and anxiety respond to mismatch
   and switches); the day added to the year's log;
8. **supplements**: tutoring and advisory sessions outside the block
   (``_supplements``).

Supervision comes before assignment, so a teacher under pressure can swap
playlist days for grade-level content (drift) and a teacher's distinct paces
can be held to their capacity (``limit_paces``).
After the last day, ``Accountability.end_of_year`` (given a ``YearEnd``)
evaluates teachers, updates their stress and drift, lets leaders respond and
the district review the program, and replaces teachers who leave.

``run()`` runs the burn-in, then each year's days, its tables
(``finish_year``) and the summer: loss of fresh mastery, promotion,
graduates and movers replaced.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from mesa import Model

from sim.accountability.sensemaking import experience_profile
from sim.accountability.year_end import Accountability, YearEnd
from sim.district import monitor as run_monitor
from sim.district.item_bank import item_bank
from sim.engine import (
    assessment,
    learning,
    outcomes,
    outside,
    portable_math,
    school_day,
    teachers,
)
from sim.engine.affect import affect_rules
from sim.engine.curriculum import generate_curriculum
from sim.engine.outcomes import Tracks, YearLog, student_year_rows
from sim.engine.population import (
    ClusterEffects,
    chunks,
    cohort_offsets,
    district_size,
    enrol,
    layout_slots,
    school_term,
)
from sim.engine.random_streams import DailyDraws, Streams, replicate_seed, uniform32
from sim.engine.records import Diagnostic, Record, record_rules
from sim.engine.schools import School, lines_per_room, section_line, sections_taught
from sim.engine.students import MASTERED_BEFORE, MASTERED_THIS_YEAR, StudentState
from sim.engine.teachers import EXPERIENCE_MAX, Teacher, Workforce, draw_teachers, team_totals
from sim.policies.day import DayContext
from sim.policies.pacing import SMALL_GROUP, WHOLE_CLASS, common_pace_skill
from sim.policies.regimes import assign_day, build_regime, traditional_regime
from sim.policies.supplements import Tutoring

DIFFICULTY_PIVOT_GRADE = 4  # skills of this grade have ease 1
START_PARTS = ("students", "staff", "record")  # what a spun-up start holds (``start_state``)
BASELINE, FALL, SPRING = 0, 1, 2  # growth-test occasions (random-stream keys)


class District(Model):
    """A synthetic district running one arm of a scenario.

    Args:
        scenario: a validated ``sim.config.scenario.Scenario``.
        arm: the arm's settings (one of ``scenario.arms``).
        replicate: replicate number; with the scenario seed it fixes every stream.
        reference: the statewide reference (cut and fall SDs), from
            ``sim.district.reference.state_reference`` (``district_for`` builds both).
        start: the replicate's spun-up state (``start_state`` of a district that ran the
            spin-up, ``sim.district.spinup.spun_up``): the district starts from it and runs
            no spin-up of its own. None: ``run`` runs the spin-up here.
    """

    def __init__(self, scenario, arm, replicate: int = 0, *, reference, start=None):
        root = replicate_seed(scenario.seed, replicate)
        super().__init__(rng=np.random.default_rng(root))
        self.params, self.arm, self.replicate = scenario, arm, replicate
        self.streams = Streams(root)
        self.year, self.day = 0, 0
        self._build()
        self.reference = reference
        if start is not None:
            self.resume(start)

    # --- construction -------------------------------------------------------------
    def _build(self) -> None:
        p = self.params
        c = p.curriculum
        self.curriculum = generate_curriculum(
            np.random.default_rng(c.seed), c.lowest_grade, c.highest_grade, c.units_per_grade,
            c.skills_per_unit, c.cross_grade_prereqs, c.extra_prereq_prob)
        d = p.district
        self.grades = sorted(d.grades)
        self.students = StudentState(district_size(d), self.curriculum.n_skills)
        layout_slots(self.students, d)
        rng = self.streams.at("population", 0)
        self.effects = ClusterEffects.draw(rng, d.schools, d.classes_per_grade)
        all_slots = np.arange(self.students.n)
        self._enrol(all_slots, rng)
        self.next_id = self.students.n
        self.students.student_id[:] = all_slots
        workforce = Workforce(experience_profile(p.sensemaking, EXPERIENCE_MAX),
                              p.sensemaking.novice_capacity)
        self.staff = draw_teachers(self.streams.teachers, self.streams.at("teachers", 1),
                                   p.teachers, (d.schools, self.grades, d.classes_per_grade),
                                   self.arm.trust, workforce)
        self.teachers = [Teacher(self, i) for i in range(self.staff.n)]
        self.regime = build_regime(self.arm, p.calendar, p.traditional)
        self.base_regime = traditional_regime(p.traditional)
        self.schools = [School(self, s, self.grades, d.program_grades, self.regime)
                        for s in range(d.schools)]
        self.accountability = Accountability(self.staff, self.schools, self.streams, self.arm,
                                             self.params, self.replicate)
        self.record = Record(self.students.n, self.curriculum.n_skills)
        a = p.assessment
        self.diagnostic = Diagnostic(self.curriculum, a.diagnostic_error_years,
                                     a.diagnostic_band_years, a.benchmark_error)
        self.in_program = np.zeros(self.students.n, bool)
        self.personal = np.zeros(self.students.n, bool)  # set each year by _group_by_regime
        # How easy each skill is to learn (a multiplier of the daily rate).
        self._ease = portable_math.exp(-p.learning.grade_difficulty
                                       * (self.curriculum.skill_grade - DIFFICULTY_PIVOT_GRADE))
        self._positions = self.curriculum.position_years().astype(np.float32)
        n_units = self.curriculum.n_grades * self.curriculum.units_per_grade
        self._pace_marks = np.zeros((self.staff.n, n_units), bool)
        rooms = d.schools * len(self.grades) * -(-d.classes_per_grade
                                                 // lines_per_room(d.class_size, d.room_size))
        self._room_marks = np.zeros((rooms, n_units), bool)

    def _enrol(self, slots: np.ndarray, rng: np.random.Generator) -> None:
        p = self.params
        known = cohort_offsets(self.students, slots, p.district, self.year,
                               p.calendar.burn_in_years)
        enrol(rng, self.students, slots, self.effects, self.curriculum,
              p.population, p.learning, p.district.mean_offset_sd, known)
        community = p.district.mean_offset_sd + school_term(slots, self.students, self.effects,
                                                            p.population, known)
        self.students.outside[slots] = outside.draw_intensity(
            self.streams.at("outside", self.year, 0), community, p.learning,
            p.population.share_between_schools)
        self.students.entry_year[slots] = self.year
        self.students.prior_state_score[slots] = np.nan

    @property
    def teacher_effect(self) -> np.ndarray:
        """True effect of each teacher (student SD of annual growth)."""
        return self.staff.effect

    @property
    def teacher_capacity(self) -> np.ndarray:
        """Effective capacity this year (paces), after load and structures."""
        return self.staff.capacity_eff

    # --- the school year --------------------------------------------------------------
    def run_days(self) -> None:
        """Start a school year and run all its instructional days (each reported year's
        day counted into the active run monitor, if any: the page's progress within runs;
        every day obeys its Cancel). Spin-up days are not counted: a replicate's spin-up
        runs once for all its arms, or not at all when it comes from the cache."""
        monitor = run_monitor.active()
        self.start_year()
        for day in range(self.params.calendar.days):
            self.day = day
            self.step()
            if monitor is not None:
                monitor.check() if self.burning_in else monitor.day_done()

    def burn_in(self) -> None:
        """Years of traditional pacing for everyone before the first reported year.

        The generated population's mastery profiles are smooth; a year of
        ordinary instruction gives them the structure the model's own dynamics
        produce (covered grades, recent gains fragile over the summer). Every
        arm runs the same burn-in on the same streams.
        """
        while self.year < self.params.calendar.burn_in_years:
            self.run_days()
            ref = self.reference  # the rows give the review its year-before growth
            self._end_of_year(student_year_rows(self, self.log, ref.cut_by_grade,
                                                ref.fall_sd_by_grade))
            self.summer()

    def start_state(self) -> dict[str, np.ndarray]:
        """What the spin-up leaves, as named arrays (``resume`` takes them): the students,
        teachers and record (each array of ``START_PARTS``), the year and next student id,
        and the last spin-up year's program-grade proficiency and growth by school (the
        program review's "before", as measured). Nothing in it depends on the arm: the
        spin-up has no program, no rooms and no shared evaluation, so trust (read only in
        rooms and under shared evaluation) is reset to the arm's own by ``resume``."""
        out = {"district.year": np.asarray(self.year), "district.next_id": np.asarray(self.next_id)}
        for part in START_PARTS:
            for name, value in vars(getattr(self, part)).items():
                if not isinstance(value, np.ndarray | int | float | bool | np.generic):
                    raise TypeError(f"{part}.{name} is not an array or a number: the spun-up "
                                    f"start cannot hold it")
                out[f"{part}.{name}"] = np.array(value, copy=True)
        prof, growth = self.accountability.before_true
        out["before.proficiency"], out["before.growth"] = np.asarray(prof), np.asarray(growth)
        return out

    def resume(self, state: dict[str, np.ndarray]) -> None:
        """Continue from a spun-up ``state`` (``start_state``), copied, never shared.

        Each teacher still in their first post takes the trust this arm drew for them
        (the arm's setting: prior working relationships); a novice keeps the novice trust
        the spin-up gave them. The review's "before" gets this arm's noise on the same
        stream as a spin-up run here."""
        arm_trust = self.staff.trust.copy()
        for key, value in state.items():
            part, name = key.split(".", 1)
            if part in START_PARTS:
                _put(getattr(self, part), name, value)
        self.year, self.next_id = int(state["district.year"]), int(state["district.next_id"])
        staff = self.staff
        staff.trust = np.where(staff.person < staff.n, arm_trust, staff.trust)
        self.accountability.resume_before(np.array(state["before.proficiency"]),
                                          np.array(state["before.growth"]), self.year - 1)

    @property
    def burning_in(self) -> bool:
        return self.year < self.params.calendar.burn_in_years

    @property
    def reported_year(self) -> int:
        """1 for the first year after the burn-in."""
        return self.year - self.params.calendar.burn_in_years + 1

    def start_year(self) -> None:
        st, d = self.students, self.params.district
        g_idx = st.grade - self.grades[0]
        lines = d.classes_per_grade
        sections = self._sections(st.grade)
        st.teacher[:] = ((st.school * len(self.grades) + g_idx) * lines
                         + section_line(st.line, sections))
        staff = self.staff
        staff.sections[:] = sections_taught(staff.line, self._sections(staff.grade), lines)
        active = np.array([s.program_active for s in self.schools])
        was_personal = self.personal
        self.in_program = (np.isin(st.grade, d.program_grades) & (not self.burning_in)
                           & active[st.school])
        self._group_by_regime()
        self._build_rooms(self.personal)
        self._measure_newcomers()
        # students who stay on a personalized regime keep the program's record; everyone
        # else is placed, as every student is in the spin-up (a class's record does not
        # follow it to next year's teacher, so business as usual stays as in the spin-up)
        stays = was_personal & self.personal & (st.entry_year < self.year)
        self.record.place(self.streams.at("placement", self.year), np.arange(st.n), self._truth,
                          self.diagnostic, keep=stays)
        self.log = YearLog(st.n)
        af = self.params.affect
        self.tracks = Tracks(st.n, af.switch_persist_days, af.switch_min_jump_years,
                             af.level_smoothing_days)
        self.mastered_at_start = self._mastered_count()
        self.tutored: dict[int, np.ndarray] = {}  # per tutoring supplement (by id)

    def _sections(self, grade: np.ndarray) -> np.ndarray:
        """Sections per teacher for each grade given: the arm's in program grades from year 1
        (the school's staffing, kept if the program is dropped), else 1."""
        program = np.isin(grade, self.params.district.program_grades) & (not self.burning_in)
        return np.where(program, self.arm.sections, 1)

    def _group_by_regime(self) -> None:
        """Students by the regime in force for them (schools share regime objects until
        a leader changes theirs)."""
        st = self.students
        regime_of_school = [s.regime if s.program_active else self.base_regime
                            for s in self.schools]
        self.groups = []
        self.personal = np.zeros(st.n, bool)
        self.move_on = np.full(st.n, np.iinfo(np.int16).max, np.int16)
        self.any_move_on = False
        for regime in {id(r): r for r in regime_of_school}.values():
            schools = [i for i, r in enumerate(regime_of_school) if r is regime]
            mask = self.in_program & np.isin(st.school, schools)
            if mask.any():
                self.groups.append((regime, mask))
                self.personal |= mask & regime.personalized
                if regime.move_on_days:
                    self.move_on[mask] = regime.move_on_days
                    self.any_move_on = True
        self.groups.append((self.base_regime, ~self.in_program))

    def _build_rooms(self, personal: np.ndarray) -> None:
        """Merge program lines into personalized rooms; their teachers form a team."""
        st, d = self.students, self.params.district
        lpr = lines_per_room(d.class_size, d.room_size)
        rooms_per_grade = -(-d.classes_per_grade // lpr)
        g_idx = st.grade - self.grades[0]
        room = (st.school * len(self.grades) + g_idx) * rooms_per_grade + st.line // lpr
        own_class = self._sections(st.grade) == 1  # a secondary teacher's sections stay classes
        st.room[:] = np.where(personal & own_class, room, -1)
        n_rooms = d.schools * len(self.grades) * rooms_per_grade
        # team of room r: lines [k*lpr, (k+1)*lpr) of its grade; teacher ids are consecutive
        k = np.arange(n_rooms) % rooms_per_grade
        base = (np.arange(n_rooms) // rooms_per_grade) * d.classes_per_grade
        self.room_first_teacher = base + k * lpr
        self.room_team_size = np.minimum(lpr, d.classes_per_grade - k * lpr)
        staff = self.staff
        staff.room[:] = -1
        for r in np.unique(st.room[st.room >= 0]):
            first = self.room_first_teacher[r]
            staff.room[first:first + self.room_team_size[r]] = r
        self._set_loads()

    def _set_loads(self) -> None:
        """Students each teacher is responsible for (a room's students shared by its team)."""
        st = self.students
        staff = self.staff
        own = np.bincount(st.teacher[st.room < 0], minlength=staff.n).astype(float)
        room_n = np.bincount(st.room[st.room >= 0], minlength=self.room_team_size.size)
        room = np.maximum(staff.room, 0)
        staff.load = own + np.where(staff.room >= 0, room_n[room] / self.room_team_size[room], 0.0)
        self.accountability.start_year(self.burning_in)
        # what each room's team brings to the capacity it may pool (sum) and its trust (mean)
        self.room_capacity = team_totals(self.room_first_teacher, self.room_team_size,
                                         staff.capacity_eff)
        self.room_trust = team_totals(self.room_first_teacher, self.room_team_size, staff.trust,
                                      mean=True)

    def _truth(self, rows: np.ndarray) -> np.ndarray:
        return self.students.mastery[rows] > 0

    def _mastered_count(self) -> np.ndarray:
        out = np.empty(self.students.n, np.int32)
        for part in chunks(self.students.n):
            out[part] = (self.students.mastery[part] > 0).sum(axis=1)
        return out

    def _measure_newcomers(self) -> None:
        """Starting level of students new this year, before any instruction.

        In the first reported year everyone is measured: the study's baseline
        comes after the burn-in, the same in every arm.
        """
        st = self.students
        first_reported = self.year == self.params.calendar.burn_in_years
        new = (st.entry_year == self.year) | first_reported
        if new.any():
            score, _ = self._growth_test(BASELINE, new, 0)
            level = assessment.scale_to_level(score, self.params.assessment)
            st.baseline_offset[new] = level[new] - st.grade[new]

    def _growth_test(self, occasion: int, sits: np.ndarray, day: int):
        """Adaptive vertical-scale scores and SEMs (scale points) of ``sits`` on ``day``."""
        p = self.params
        rng = self.streams.at("growth_test", self.year, occasion)
        return assessment.growth_test(rng, self.students, item_bank(p), p.assessment,
                                      p.learning.familiarity_saturation_days, sits,
                                      day / p.calendar.days)

    def step(self) -> None:
        """One instructional day: its phases in order, one call each (the module
        docstring says what each does)."""
        self.draws = None  # yesterday's draws: freed before today's tests
        self._assessments(self.day)
        draws = self._draw()
        present = self._attend(draws)
        teacher = self._supervise(present, draws["rotation"])
        skills, modality = self._assign(present, teacher)
        teacher = self._schedule(present, teacher, skills, modality)
        rate = self._learning_rate(present, modality, teacher, skills)
        self._teach(present, skills, rate, draws)
        self._supplements(present)

    def _draw(self) -> DailyDraws:
        """The day's draws, keyed by (year, day) and made on first use."""
        self.draws = DailyDraws(self.streams, self.year, self.day, self.students.n)
        return self.draws

    def _attend(self, draws: DailyDraws) -> np.ndarray:
        """Slots of the students present today (int64, ascending)."""
        return np.flatnonzero(draws["attendance"] < self.students.attendance)

    def _assign(self, present: np.ndarray, teacher: np.ndarray):
        """The regimes' assignment of the day (``policies.regimes.assign_day``: limits,
        pacing, drift, pace limits) and the days off the common pace in the year's log.
        ``teacher``: each present student's supervisor today. Returns (skills, modality)."""
        skills, modality, common = assign_day(self.groups, self._day_context(present, teacher))
        outcomes.count_off_pace(self.log.days_off_pace, np.asarray(present, np.int64), skills,
                                common)  # days_off_pace[present] += skills != common
        return skills, modality

    def _day_context(self, present: np.ndarray, teacher: np.ndarray) -> DayContext:
        """What the day's assignment reads: views of the district's arrays, no copies."""
        st = self.students
        return DayContext(day=self.day, calendar=self.params.calendar,
                          curriculum=self.curriculum, record=self.record, draws=self.draws,
                          grade=st.grade, teacher=st.teacher, line=st.line,
                          capacity=self.staff.capacity_eff, drift=self.staff.drift,
                          present=present, supervisor=teacher)

    def _supervise(self, present: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Teacher supervising each present student today (a team member in rooms;
        ``u``: the day's rotation draws, per student). Compiled (``teachers.supervise``)."""
        st = self.students
        return teachers.supervise(np.asarray(present, np.int64), u, st.teacher, st.room,
                                  self.room_first_teacher, self.room_team_size)

    def _schedule(self, present, teacher, skills, modality) -> np.ndarray:
        """The rooms' daily scheduler: each room's teacher-led students grouped by unit
        (at most ``teams.group_size`` a group), the groups shared among the team in runs of
        neighbouring units; the rest keep ``teacher`` (``teachers.schedule_groups``)."""
        led = (modality == WHOLE_CLASS) | (modality == SMALL_GROUP)
        return teachers.schedule_groups(
            np.asarray(teacher, np.int64), np.asarray(skills, np.int64), led,
            self.students.room[present], self.room_first_teacher, self.room_team_size,
            self.curriculum.skills_per_unit, int(self.params.teams.group_size))

    def _learning_rate(self, present, modality, teacher, skills) -> np.ndarray:
        """Daily hazard of mastering a ready skill, per present student (per day; the
        compiled rule ``learning.rate_of``)."""
        p, st = self.params, self.students
        lp, tp = p.learning, p.teachers
        mod_factor = np.array([lp.modality_whole_class, lp.modality_small_group,
                               lp.modality_peer, lp.modality_software], np.float32)
        teacher = np.asarray(teacher, np.int64)
        skills = np.asarray(skills, np.int64)
        room = st.room[present]
        rules = learning.RateRules(float(lp.base_rate), float(lp.teacher_weight_unled),
                                   float(tp.typical_growth_sd), float(p.teams.handoff_loss),
                                   WHOLE_CLASS, SMALL_GROUP, float(p.teams.transition_loss),
                                   float(p.teams.unled_supervision_loss))
        team_size = np.where(room >= 0, self.room_team_size[np.maximum(room, 0)], 0)
        led = (modality == WHOLE_CLASS) | (modality == SMALL_GROUP)
        return learning.learning_rate(
            np.asarray(present, np.int64), skills, modality,
            learning.Supervision(teacher, room, st.teacher[present], team_size),
            self._capacity_factor(teacher, skills, room, led), st.rows(),
            (self.teacher_effect, self.staff.trust),
            learning.RateTables(self._ease, mod_factor), rules)

    def _capacity_factor(self, teacher: np.ndarray, skills: np.ndarray, room: np.ndarray,
                         led: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(capacity / paces)^elasticity, capped at 1; paces = distinct units a teacher runs
        today across all their sections, in rooms only of the groups they lead teacher-led
        (``led``; software and peer work in rooms gets 1). In rooms, the team pools capacity
        by trust (``teachers.pooled_ratio``) against the room's distinct teacher-led units.
        Returns ``(factors, key)``: student ``i``'s factor is ``factors[key[i]]``, one per
        (supervising teacher, room) pair. The ratio compiled (``teachers.capacity_ratio``),
        the power in numpy on the pairs' values only (a few thousand instead of every
        student: the same power of the same values)."""
        ratio, key = teachers.capacity_ratio(
            np.asarray(teacher, np.int64), np.asarray(skills, np.int64)
            // self.curriculum.skills_per_unit, room, np.asarray(led, np.bool_),
            self.staff.capacity_eff,
            self._pace_marks, self._room_marks, self.room_capacity, self.room_trust,
            float(self.params.teams.capacity_pooling))
        return portable_math.power(ratio, self.params.teachers.capacity_elasticity), key

    def _teach(self, present, skills, rate, draws) -> np.ndarray:
        """Readiness, learning, exit slip, record, tracks, affect and log for the day's
        block (``school_day.day_block``: every step of one student before the next
        student's); returns whether each present student passed their exit slip."""
        st, cur, p = self.students, self.curriculum, self.params
        a = p.assessment
        day = school_day.DayInputs(np.asarray(present, np.int64), np.asarray(skills, np.int64),
                                   rate, draws["learn"], draws["backfill"], draws["exit_slip"],
                                   self.move_on)
        tables = school_day.CurriculumTables(cur.prereqs, cur.skill_grade, self._positions)
        rules = school_day.DayRules(learning.learning_rules(p.learning), 1.0 - a.exit_slip_slip,
                                    float(a.exit_slip_guess),
                                    record_rules(a, self.any_move_on), self.tracks.rules,
                                    affect_rules(p.affect))
        return school_day.day_block(day, tables, st.rows(), self.record.arrays,
                                    self.tracks.arrays, self.log.day_arrays, rules)

    # --- assessments and supplements ------------------------------------------------
    def _assessments(self, day: int) -> None:
        cal, a = self.params.calendar, self.params.assessment
        sat = self.params.learning.familiarity_saturation_days
        st = self.students
        everyone = np.ones(st.n, bool)
        if day == cal.fall_test_day:
            self.log.fall_score, self.fall_sem = self._growth_test(FALL, everyone, day)
            self._choose_tutored()
        if cal.benchmark_every_days and day > 0 and day % cal.benchmark_every_days == 0:
            self.record.benchmark(self.streams.at("benchmark", self.year, day), np.arange(st.n),
                                  self._truth, self.diagnostic)
        if day == cal.state_test_day:
            tested = np.isin(st.grade, a.tested_grades)
            rng = self.streams.at("state_test", self.year)
            self.log.state_score, self.state_sem = assessment.state_test(
                rng, st, self.curriculum, item_bank(self.params), a, sat, tested,
                day / cal.days)
        if day == cal.spring_test_day:
            self.log.spring_score, _ = self._growth_test(SPRING, everyone, day)

    def _choose_tutored(self) -> None:
        """Pick each tutoring supplement's group from the fall growth test."""
        st, a = self.students, self.params.assessment
        for regime, group in self.groups:
            for sup in regime.supplements:
                if not isinstance(sup, Tutoring) or sup.hours_per_week <= 0:
                    continue
                cand = np.flatnonzero(group & np.isin(st.grade, a.tested_grades))
                fall = assessment.scale_to_level(self.log.fall_score[cand], a) - st.grade[cand]
                cut = self.reference.cut_level_offset(st.grade[cand])
                chosen = np.zeros(st.n, bool)
                chosen[cand[sup.select(fall, cut)]] = True
                self.tutored[id(sup)] = chosen
                self.log.tutored |= chosen

    def _supplements(self, present: np.ndarray) -> None:
        for regime, group in self.groups:
            for k, sup in enumerate(regime.supplements):
                if not sup.session_on(self.day):
                    continue
                here = present[group[present]]
                if isinstance(sup, Tutoring):
                    chosen = self.tutored.get(id(sup))
                    if chosen is not None:
                        self._tutor(sup.effectiveness, here[chosen[here]], k, grade=True)
                else:
                    self._tutor(1.0, here, k, grade=False)

    def _tutor(self, effectiveness: float, slots: np.ndarray, k: int, grade: bool) -> None:
        """A session outside the block: grade-level tutoring on the first grade-level skill
        the record lacks, or advisory catch-up for students behind the common pace."""
        if slots.size == 0:
            return
        st, cur, lp = self.students, self.curriculum, self.params.learning
        start = cur.first_skill(st.grade[slots]).astype(np.int64)
        nxt = self.record.frontier_from(slots, start)
        if grade:
            end = start + cur.skills_per_grade
            skill = np.where(nxt < end, nxt, start + self.day % cur.skills_per_grade)
        else:
            behind = nxt < common_pace_skill(cur, self.params.calendar, st.grade[slots],
                                             self.day)
            slots, skill = slots[behind], nxt[behind]
            if slots.size == 0:
                return
        rate = (lp.base_rate * self._ease[skill] * effectiveness * lp.modality_small_group
                * st.learning_rate[slots] * st.engagement[slots]).astype(np.float32)
        # each supplement of a regime has its own draws (keyed by its place k)
        n, keys = st.n, (self.year, self.day)
        u_learn = self.streams.daily("tutor_learn", *keys, n, extra=k)[slots]
        u_back = self.streams.daily("tutor_backfill", *keys, n, extra=k)[slots]
        learning.learn(st, slots, skill, rate, (u_learn, u_back), cur.prereqs,
                       learning.learning_rules(lp))
        if grade:
            self.log.tutoring_sessions[slots] += 1
        else:
            self.log.advisory_sessions[slots] += 1

    # --- end of year ------------------------------------------------------------------
    def finish_year(self) -> dict[str, pd.DataFrame]:
        """The year's tables; then the year-end accountability processes."""
        self.log.skills_gained[:] = self._mastered_count() - self.mastered_at_start
        ref = self.reference
        students = student_year_rows(self, self.log, ref.cut_by_grade, ref.fall_sd_by_grade)
        teachers, schools = self._end_of_year(students)
        return {"student_years": students, "teacher_years": teachers, "school_years": schools}

    def _end_of_year(self, students: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The year-end accountability processes on the year's ``students`` rows; this
        year's state scores become next year's priors. Returns (teacher, school) rows."""
        year_end = YearEnd(year=self.year, reported_year=self.reported_year,
                           burning_in=self.burning_in, students=self.students,
                           state_score=self.log.state_score,
                           cut_by_grade=self.reference.cut_by_grade, personal=self.personal,
                           base_regime=self.base_regime)
        rows = self.accountability.end_of_year(year_end, students)
        self.students.prior_state_score[:] = self.log.state_score
        return rows

    def summer(self) -> None:
        """Summer loss, out-of-school learning, promotion, graduates and movers replaced by
        newcomers."""
        self._summer_loss()
        self._outside_learning()
        st, d = self.students, self.params.district
        lp = self.params.learning
        for x, x0 in ((st.engagement, st.engagement_base), (st.anxiety, st.anxiety_base)):
            x[:] = x0 + 0.5 * (x - x0)
        st.familiarity[:] = (st.familiarity * lp.summer_familiarity_keep).astype(np.uint8)
        leave = self.streams.at("mobility", self.year).random(st.n) < d.mobility
        st.grade += 1
        graduate = st.grade > self.grades[-1]
        st.grade[graduate] = self.grades[0]
        new = np.flatnonzero(graduate | leave)
        self.year += 1
        if new.size:
            st.student_id[new] = self.next_id + np.arange(new.size)
            self.next_id += new.size
            self._enrol(new, self.streams.at("population", self.year))

    def _summer_loss(self) -> None:
        lp, st = self.params.learning, self.students
        rng = self.streams.at("summer", self.year)
        for part in chunks(st.n):
            m = st.mastery[part]
            u = uniform32(rng, m.shape)
            lose = ((m == MASTERED_THIS_YEAR) & (u < lp.summer_loss_recent)) | (
                (m == MASTERED_BEFORE) & (u < lp.summer_loss_old))
            st.mastery[part] = np.where(lose, 0, np.minimum(m, MASTERED_BEFORE))

    def _outside_learning(self) -> None:
        """Each student's out-of-school change on their frontier (``engine.outside``)."""
        st, lp = self.students, self.params.learning
        u = self.streams.at("outside", self.year, 1).random(st.n)
        counts = outside.summer_counts(st.outside, self.curriculum.skills_per_grade, u)
        outside.apply_summer(st.mastery, st.familiarity, counts,
                             min(255, int(round(lp.familiarity_saturation_days))))

    def run(self) -> dict[str, pd.DataFrame]:
        """Burn in, then run all the scenario's years; return the tables."""
        self.burn_in()
        years = []
        for y in range(self.params.years):
            self.run_days()
            years.append(self.finish_year())
            if y < self.params.years - 1:  # no summer after the last reported year
                self.summer()
        return {k: pd.concat([y[k] for y in years], ignore_index=True) for k in years[0]}


def _put(owner, name: str, value: np.ndarray) -> None:
    """Set ``owner.name`` to a copy of ``value``: in place where an array of that shape and
    type is there (anything holding it sees the new values), a number as a number."""
    current = getattr(owner, name, None)
    if isinstance(current, np.ndarray) and current.shape == value.shape \
            and current.dtype == value.dtype:
        np.copyto(current, value)
    elif value.ndim == 0 and not isinstance(current, np.ndarray):
        setattr(owner, name, value.item())
    else:
        setattr(owner, name, np.array(value, copy=True))
