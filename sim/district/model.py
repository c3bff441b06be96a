"""The district: a Mesa model that runs school years day by day.

One ``step()`` is one instructional day. Its phases, in order:

1. **assessments** due today, before instruction: fall growth test (and the
   tutoring group chosen on it), benchmarks, state test, spring growth test;
2. **draws**: each random process's uniforms for all students, keyed by
   (year, day) and made on first use (``DailyDraws``);
3. **attendance**: who is present;
4. **supervision**: who teaches each student today (a team member in rooms);
5. **assignment**: each regime picks its students' skill and modality; then
   teachers' drift and pace limits (below); the distinct paces (content
   units) each teacher runs set the capacity factor of learning;
6. **learning**: mastery gains, backfill of prerequisites, familiarity;
7. **exit slip**: the record (not the truth) is updated from noisy slips;
8. **affect**: engagement and anxiety respond to mismatch and switches;
9. **log**: the day's assignment is added to the year's outcomes;
10. **supplements**: tutoring and advisory sessions outside the block.

Supervision comes before assignment, so a teacher under pressure can swap
playlist days for grade-level content (drift) and a teacher's distinct paces
can be held to their capacity (``limit_paces``).
After the last day, ``Accountability.end_of_year`` evaluates teachers,
updates their stress and drift, lets leaders respond and the district review
the program, and replaces teachers who leave.

``run()`` runs the burn-in, then each year's days, its tables
(``finish_year``) and the summer: loss of fresh mastery, promotion,
graduates and movers replaced.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from mesa import Model

from sim.accountability.year_end import Accountability
from sim.district import monitor as run_monitor
from sim.district.item_bank import item_bank
from sim.engine import affect, assessment, kernels, learning, portable_math
from sim.engine.curriculum import generate_curriculum
from sim.engine.outcomes import YearLog, student_year_rows
from sim.engine.population import (
    ClusterEffects,
    chunks,
    district_size,
    enrol,
    layout_slots,
)
from sim.engine.random_streams import DailyDraws, Streams, replicate_seed, uniform32
from sim.engine.records import Diagnostic, Record
from sim.engine.schools import School, lines_per_room, section_line, sections_taught
from sim.engine.students import FAMILIARITY_MAX, MASTERED_BEFORE, MASTERED_THIS_YEAR, StudentState
from sim.engine.teachers import (
    Teacher,
    draw_teachers,
    handoff_factor,
    pooled_ratio,
    team_totals,
)
from sim.policies.pacing import SMALL_GROUP, WHOLE_CLASS, common_pace_skill, limit_paces
from sim.policies.regimes import build_regime, traditional_regime
from sim.policies.supplements import Tutoring

DIFFICULTY_PIVOT_GRADE = 4  # skills of this grade have ease 1
BASELINE, FALL, SPRING = 0, 1, 2  # growth-test occasions (random-stream keys)


class District(Model):
    """A synthetic district running one arm of a scenario.

    Args:
        scenario: a validated ``sim.config.scenario.Scenario``.
        arm: the arm's settings (one of ``scenario.arms``).
        replicate: replicate number; with the scenario seed it fixes every stream.
        reference: the statewide reference (cut and fall SDs), from
            ``sim.district.reference.state_reference`` (``district_for`` builds both).
    """

    def __init__(self, scenario, arm, replicate: int = 0, *, reference):
        root = replicate_seed(scenario.seed, replicate)
        super().__init__(rng=np.random.default_rng(root))
        self.params, self.arm, self.replicate = scenario, arm, replicate
        self.streams = Streams(root)
        self.year, self.day = 0, 0
        self._build()
        self.reference = reference

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
        self.staff = draw_teachers(self.streams.teachers, self.streams.at("teachers", 1),
                                   p.teachers, d.schools, self.grades, d.classes_per_grade,
                                   self.arm.trust)
        self.teachers = [Teacher(self, i) for i in range(self.staff.n)]
        self.regime = build_regime(self.arm, p.calendar, p.traditional)
        self.base_regime = traditional_regime(p.traditional)
        self.schools = [School(self, s, self.grades, d.program_grades, self.regime)
                        for s in range(d.schools)]
        self.accountability = Accountability(self)
        self.record = Record(self.students.n, self.curriculum.n_skills)
        a = p.assessment
        self.diagnostic = Diagnostic(self.curriculum, a.diagnostic_error_years,
                                     a.diagnostic_band_years, a.benchmark_error)
        self.in_program = np.zeros(self.students.n, bool)
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
        enrol(rng, self.students, slots, self.effects, self.curriculum,
              p.population, p.learning, p.district.mean_offset_sd)
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
        """Start a school year and run all its instructional days (each counted into the
        active run monitor, if any: the page's progress within runs and its Cancel)."""
        monitor = run_monitor.active()
        self.start_year()
        for day in range(self.params.calendar.days):
            self.day = day
            self.step()
            if monitor is not None:
                monitor.day_done()

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
            self.accountability.end_of_year(student_year_rows(self, self.log, ref.cut_by_grade,
                                                              ref.fall_sd_by_grade))
            self.summer()

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
        was_in_program = self.in_program
        self.in_program = (np.isin(st.grade, d.program_grades) & (not self.burning_in)
                           & active[st.school])
        self._group_by_regime()
        self._build_rooms(self.personal)
        self._measure_newcomers()
        # students who stay in the program keep their record; everyone else is placed
        stays = was_in_program & self.in_program & (st.entry_year < self.year)
        self.record.place(self.streams.at("placement", self.year), np.arange(st.n), self._truth,
                          self.diagnostic, keep=stays)
        self.log = YearLog(st.n)
        af = self.params.affect
        self.tracks = affect.Tracks(st.n, af.switch_persist_days, af.switch_min_jump_years,
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
        self.accountability.start_year()
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
        """One instructional day (phases in the module docstring)."""
        self.draws = None  # yesterday's draws: freed before today's tests
        self._assessments(self.day)
        draws = self.draws = DailyDraws(self.streams, self.year, self.day, self.students.n)
        present = np.flatnonzero(draws["attendance"] < self.students.attendance)
        teacher_today = self._supervise(present, draws["rotation"])
        skills, modality = self._assign(present, teacher_today)
        rate = self._learning_rate(present, modality, teacher_today, skills)
        self._teach(present, skills, rate, draws)
        self._supplements(present)

    def _assign(self, present: np.ndarray, teacher: np.ndarray):
        """Each regime's skills and modalities; then teachers' drift and pace limits."""
        skills = np.empty(present.size, np.int64)
        modality = np.empty(present.size, np.int8)
        common = common_pace_skill(self, present, self.day)
        for regime, group in self.groups:
            mask = group[present]
            if not mask.any():
                continue
            sel = slice(None) if mask.all() else mask  # one group for everyone: no copies
            slots = present[sel]
            s, modality[sel] = regime.assign(self, slots, self.day)
            if regime.personalized:
                s = self._drift(slots, s, teacher[sel], common[sel])
            if regime.limit_paces:
                s = limit_paces(teacher[sel], s, common[sel],
                                self.staff.capacity_eff, self.curriculum.skills_per_unit)
            skills[sel] = s
        kernels.count_off_pace(self.log.days_off_pace, np.asarray(present, np.int64), skills,
                               common)  # days_off_pace[present] += skills != common
        return skills, modality

    def _drift(self, slots, skills, teacher, common) -> np.ndarray:
        """Teachers under pressure swap some playlist days for grade-level content.
        Compiled (``kernels.drift_to_common``); ``_drift_numpy`` is the same in numpy."""
        if not self.staff.drift.any():
            return skills
        return kernels.drift_to_common(np.asarray(skills, np.int64), np.asarray(slots, np.int64),
                                       np.asarray(teacher, np.int64), common, self.staff.drift,
                                       self.draws["drift"])

    def _drift_numpy(self, slots, skills, teacher, common) -> np.ndarray:
        """``_drift`` in plain numpy (the reference the kernel is tested against)."""
        drift = self.staff.drift[teacher]
        if not drift.any():
            return skills
        swap = self.draws["drift"][slots] < drift
        return np.where(swap, common, skills)

    def _supervise(self, present: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Teacher supervising each present student today (a team member in rooms;
        ``u``: the day's rotation draws, per student). Compiled (``kernels.supervise``);
        ``_supervise_numpy`` is the same in numpy."""
        st = self.students
        return kernels.supervise(np.asarray(present, np.int64), u, st.teacher, st.room,
                                 self.room_first_teacher, self.room_team_size)

    def _supervise_numpy(self, present: np.ndarray, u: np.ndarray) -> np.ndarray:
        """``_supervise`` in plain numpy (the reference the kernel is tested against)."""
        teacher = self.students.teacher[present].astype(np.int64)
        room = self.students.room[present]
        in_room = room >= 0
        r = room[in_room]
        u = u[present][in_room]
        pick = np.minimum((u * self.room_team_size[r]).astype(np.int64),
                          self.room_team_size[r] - 1)
        teacher[in_room] = self.room_first_teacher[r] + pick
        return teacher

    def _learning_rate(self, present, modality, teacher, skills) -> np.ndarray:
        """Daily hazard of mastering a ready skill, per present student (per day).

        Compiled (``kernels.learning_rate``, in numpy's precisions and order);
        ``_learning_rate_numpy`` is the same in plain numpy.
        """
        p, st = self.params, self.students
        lp, tp = p.learning, p.teachers
        mod_factor = np.array([lp.modality_whole_class, lp.modality_small_group,
                               lp.modality_peer, lp.modality_software], np.float32)
        teacher = np.asarray(teacher, np.int64)
        skills = np.asarray(skills, np.int64)
        room = st.room[present]
        factor, key = self._capacity_factor(teacher, skills, room)
        return kernels.learning_rate(
            np.asarray(present, np.int64), skills, modality, teacher, room,
            st.teacher[present], factor, key, float(lp.base_rate), self._ease, st.learning_rate,
            st.engagement, mod_factor, float(lp.teacher_weight_unled), self.teacher_effect,
            float(tp.typical_growth_sd), self.staff.trust, float(p.teams.handoff_loss),
            WHOLE_CLASS, SMALL_GROUP)

    def _capacity_factor(self, teacher: np.ndarray, skills: np.ndarray,
                         room: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(capacity / paces)^elasticity, capped at 1; paces = distinct units a teacher runs
        today across all their sections. In rooms, the team pools capacity by trust
        (``pooled_ratio``) against the room's distinct units. Returns ``(factors, key)``:
        student ``i``'s factor is ``factors[key[i]]``, one per (supervising teacher, room)
        pair. The ratio compiled (``kernels.capacity_ratio``), the power in numpy on
        the pairs' values only (a few thousand instead of every student: the same
        power of the same values); ``_capacity_factor_numpy`` is the same per student
        in plain numpy."""
        ratio, key = kernels.capacity_ratio(
            np.asarray(teacher, np.int64), np.asarray(skills, np.int64)
            // self.curriculum.skills_per_unit, room, self.staff.capacity_eff,
            self._pace_marks, self._room_marks, self.room_capacity, self.room_trust,
            float(self.params.teams.capacity_pooling))
        return portable_math.power(ratio, self.params.teachers.capacity_elasticity), key

    def _learning_rate_numpy(self, present, modality, teacher, skills) -> np.ndarray:
        """``_learning_rate`` in plain numpy (the reference the kernel is tested against)."""
        p, st = self.params, self.students
        lp, tp = p.learning, p.teachers
        mod_factor = np.array([lp.modality_whole_class, lp.modality_small_group,
                               lp.modality_peer, lp.modality_software], np.float32)[modality]
        led = (modality == WHOLE_CLASS) | (modality == SMALL_GROUP)
        weight = np.where(led, 1.0, lp.teacher_weight_unled)
        teacher_mult = np.maximum(0.1, 1.0 + weight * self.teacher_effect[teacher]
                                  / tp.typical_growth_sd)
        room = st.room[present]
        continuity = handoff_factor(teacher, st.teacher[present], room >= 0, self.staff.trust,
                                    p.teams.handoff_loss)
        return (lp.base_rate * self._ease[skills] * st.learning_rate[present]
                * st.engagement[present] * mod_factor * teacher_mult * continuity
                * self._capacity_factor_numpy(teacher, skills, room)).astype(np.float32)

    def _capacity_factor_numpy(self, teacher: np.ndarray, skills: np.ndarray,
                               room: np.ndarray) -> np.ndarray:
        """``_capacity_factor`` in plain numpy."""
        cur = self.curriculum
        unit = skills // cur.skills_per_unit
        marks = self._pace_marks
        marks[:] = False
        marks[teacher, unit] = True
        paces = marks.sum(axis=1)
        ratio = np.minimum(1.0, self.staff.capacity_eff[teacher]
                           / np.maximum(paces[teacher], 1))
        in_room = room >= 0
        pooling = self.params.teams.capacity_pooling
        if pooling > 0 and in_room.any():
            r = room[in_room]
            marks = self._room_marks
            marks[:] = False
            marks[r, unit[in_room]] = True
            room_paces = marks.sum(axis=1)
            ratio[in_room] = pooled_ratio(ratio[in_room], self.room_capacity[r], room_paces[r],
                                          self.room_trust[r], pooling)
        return portable_math.power(ratio, self.params.teachers.capacity_elasticity)

    def _teach(self, present, skills, rate, draws) -> np.ndarray:
        """Readiness, learning, exit slip, record, affect and log for the day's block;
        returns whether each present student passed their exit slip.

        Compiled and fused (``kernels.day_block``): every step of one student before
        the next student's, so each student's rows are walked once a day instead of
        once per step. ``_teach_numpy`` is the same step by step in plain numpy (what
        the kernel is tested against).
        """
        st, cur, p = self.students, self.curriculum, self.params
        a, lp, af = p.assessment, p.learning, p.affect
        rec, tr, log, f32 = self.record, self.tracks, self.log, np.float32
        return kernels.day_block(
            st.mastery, st.familiarity, np.asarray(present, np.int64),
            np.asarray(skills, np.int64), rate, f32(lp.readiness_floor),
            f32(1.0 - lp.readiness_floor), f32(lp.backfill_rate),
            draws["learn"], draws["backfill"], MASTERED_THIS_YEAR, FAMILIARITY_MAX,
            draws["exit_slip"], 1.0 - a.exit_slip_slip, float(a.exit_slip_guess),
            rec.bits, rec.run, rec.streak_skill, rec.days_on, rec.frontier, rec.advanced,
            rec.stale, cur.prereqs, int(a.mastery_streak), int(a.fail_limit),
            self.move_on, self.any_move_on, cur.skill_grade, st.grade, self._positions,
            tr.level, tr.below, tr.position, tr.other_days, tr.first_other, tr.alpha,
            int(tr.persist_days), f32(tr.min_jump), f32(af.change_exponent),
            st.engagement, st.engagement_base, st.anxiety, st.anxiety_base,
            f32(af.recovery), float(af.boredom), f32(af.frustration),
            f32(af.switch_engagement), float(af.min_engagement), f32(af.switch_anxiety),
            float(af.unfamiliar_anxiety), log.days_present, log.days_grade_level,
            log.days_mastered, log.lowest_offset, log.switches, log.engagement_sum)

    def _teach_numpy(self, present, skills, rate, draws) -> np.ndarray:
        """``_teach`` step by step in plain numpy (the reference the kernels are tested
        against)."""
        st, cur, p = self.students, self.curriculum, self.params
        a, lp = p.assessment, p.learning
        readiness, missing = learning.prerequisite_status_numpy(st.mastery, present, skills,
                                                                cur.prereqs)
        already, gained = learning.learn_numpy(
            st, present, skills, rate, readiness, missing, draws["learn"][present],
            draws["backfill"][present], lp.readiness_floor, lp.backfill_rate, cur.prereqs)
        passed = assessment.exit_slip(draws["exit_slip"][present], already | gained,
                                      a.exit_slip_guess, a.exit_slip_slip)
        self.record.exit_slips(present, skills, passed, cur.prereqs, a.mastery_streak,
                               a.fail_limit, self.move_on[present] if self.any_move_on else None)
        offset = (cur.skill_grade[skills] - st.grade[present]).astype(np.int16)
        below = offset < 0
        position = self._positions[skills]
        switched, change = self.tracks.update(present, below, position)
        affect.update_affect(st, present, already, readiness, offset >= 0, change, p.affect)
        self.log.record_day(present, offset, already, switched, st.engagement[present])
        return passed

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
            behind = nxt < common_pace_skill(self, slots, self.day)
            slots, skill = slots[behind], nxt[behind]
            if slots.size == 0:
                return
        rate = (lp.base_rate * self._ease[skill] * effectiveness * lp.modality_small_group
                * st.learning_rate[slots] * st.engagement[slots]).astype(np.float32)
        readiness, missing = learning.prerequisite_status(st.mastery, slots, skill, cur.prereqs)
        # each supplement of a regime has its own draws (keyed by its place k)
        n, keys = st.n, (self.year, self.day, k)
        u_learn = uniform32(self.streams.at("tutor_learn", *keys), n)[slots]
        u_back = uniform32(self.streams.at("tutor_backfill", *keys), n)[slots]
        learning.learn(st, slots, skill, rate, readiness, missing, u_learn, u_back,
                       lp.readiness_floor, lp.backfill_rate, cur.prereqs)
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
        teachers, schools = self.accountability.end_of_year(students)
        return {"student_years": students, "teacher_years": teachers, "school_years": schools}

    def summer(self) -> None:
        """Summer loss, promotion, graduates and movers replaced by newcomers."""
        self._summer_loss()
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
