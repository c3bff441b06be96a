"""The year's end under accountability: evaluation, sensemaking, leaders, review, turnover.

``Accountability`` reads and updates the teachers' state (the district's
``TeacherState``: effect, capacity, trust, stress, drift, novice, person id)
and, once a year after the state test, in this order:

1. evaluates every teacher (``sim.accountability.evaluation``), teacher of record or shared;
2. updates stress and next year's drift (``sim.accountability.sensemaking``);
3. records the school-year: proficiency, growth and the policies in force;
4. lets the district review the program school by school (``sim.accountability.review``)
   and each school's leader respond to a shortfall (``sim.accountability.leaders``);
   after the burn-in's last year, leaders weigh the results before the program;
5. adds a year of PD, a year of experience, of the program's practice and of trust
   (``Accountability._mature``), and replaces teachers who leave with novices.

During the burn-in years teachers are evaluated and may leave, but no
program exists yet; the burn-in's last year gives each school's "before"
share proficient and mean growth (as the review sees them) for the program review.
Teacher rows are written for the posts that teach this year (``sections`` > 0).

``Accountability`` is given what it keeps (the teachers' state, the schools,
the streams, the arm and the scenario's parameters) when the district is
built, and what it reads of each year as a ``YearEnd``; it never holds the
district.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from sim.accountability import leaders, review, sensemaking
from sim.accountability.evaluation import (
    RATINGS,
    evaluate,
    group_means,
    rating_of,
    residuals,
    true_points,
)
from sim.engine import teachers as rules
from sim.engine.students import StudentState
from sim.policies.regimes import Regime


class YearEnd(NamedTuple):
    """One year as its end reads it (built by ``District._end_of_year``)."""

    year: int                 # the district's year (streams' key; burn-in years included)
    reported_year: int        # 1 for the first year after the burn-in (the rows' year)
    burning_in: bool
    students: StudentState    # grades, schools, teachers, rooms, prior state scores (read only)
    state_score: np.ndarray   # this year's state test scores per slot (NaN if untested)
    cut_by_grade: np.ndarray  # the statewide proficiency cut per grade (scale points)
    personal: np.ndarray      # per slot: followed a personalized regime this year
    base_regime: Regime       # the regime outside the program (``traditional_regime``)


class Accountability:
    """Teachers' evaluation and behaviour, leaders and the program review for one district.

    Args:
        staff: the district's ``TeacherState`` (read and updated in place).
        schools: the district's ``School`` agents (leaders replace their regimes).
        streams: the district's named random streams.
        arm: the arm's settings; params: the scenario.
        replicate: the replicate number (written in the rows).
    """

    def __init__(self, staff, schools, streams, arm, params, replicate: int):
        self.staff, self.schools, self.streams = staff, schools, streams
        self.arm, self.params, self.replicate = arm, params, replicate
        n_s = len(schools)
        self.before = np.full(n_s, np.nan)         # share proficient the year before, as seen
        self.before_growth = np.full(n_s, np.nan)  # mean growth the year before, as seen (SD)
        self.before_true = self.before, self.before_growth  # the same before the review's noise
        self.years_active = np.zeros(n_s, int)
        self.turns: dict[int, int] = {}  # escalation step -> schools that took it (pilots)
        self.review = review.review_draws(streams.at("review", 0), n_s, arm.review)
        # the arm's program is a new practice for its teachers unless it is the pacing
        # guide they have always taught (their experience in it is all their experience)
        self.new_practice = arm.pacing != "traditional"

    # --- during the year ----------------------------------------------------------
    def start_year(self, burning_in: bool) -> None:
        """Effects and effective capacities for the year (after rooms and sections are set)."""
        staff = self.staff
        staff.effect = rules.effect_now(staff, self.practising(burning_in), self.params.teachers)
        capacity = rules.capacity_now(staff, self.params.teachers)
        structured = sensemaking.effective_capacity(capacity, self.arm.project_based,
                                                    self.params.sensemaking)
        staff.capacity_eff = np.where(self.program_teachers(burning_in), structured, capacity)

    def program_teachers(self, burning_in: bool) -> np.ndarray:
        """Teachers of program grades in schools running the program (none in the burn-in):
        where an arm's structures and PD apply."""
        if burning_in:
            return np.zeros(self.staff.n, bool)
        active = np.array([s.program_active for s in self.schools])[self.staff.school]
        return np.isin(self.staff.grade, self.params.district.program_grades) & active

    def practising(self, burning_in: bool) -> np.ndarray:
        """Program teachers whose program is a new practice (``new_practice``)."""
        return self.program_teachers(burning_in) & self.new_practice

    # --- after the last day -------------------------------------------------------
    def end_of_year(self, y: YearEnd,
                    students: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Run the year-end processes; return (teacher_years, school_years) rows.
        ``students``: the year's student rows (``engine.outcomes.student_year_rows``)."""
        prof_school, prof_program = self._proficiency(y)
        ev = self._evaluate(y)
        staff = self.staff
        drift_now, novice_now = staff.drift.copy(), staff.novice.copy()
        practising = self.practising(y.burning_in)  # before the review may drop the program
        pressure = self._pressure(prof_school)
        shared = self._shared(y) & (staff.room >= 0)
        sp = self.params.sensemaking
        staff.stress = sensemaking.update_stress(staff.stress, pressure, ev.rating, staff.trust,
                                                 shared, sp)
        staff.drift = sensemaking.drift_of(staff.stress, sp)
        exits = (self.streams.at("exits", y.year).random(staff.n)
                 < sensemaking.exit_probability(staff.stress, ev.rating, staff.experience,
                                                sp))
        growth = self._growth(students)
        seen_prof, seen_growth = self._as_seen(y.year, prof_program, growth)
        if y.burning_in:
            self.before_true = prof_program, growth  # as measured, before the review's noise
            self.before, self.before_growth = seen_prof, seen_growth
            teachers = schools = pd.DataFrame()
            if y.reported_year == 0:  # the last year before the program
                self._anticipate(y.year, prof_program)
        else:
            teachers = self._teacher_rows(y, ev, drift_now, novice_now, exits)
            schools = self._school_rows(y, growth, prof_program)
            self._leaders_and_review(y, prof_program, seen_prof, seen_growth, schools)
            self._develop(y)
        self._mature(practising)
        self._replace(y, exits)
        return teachers, schools

    def _proficiency(self, y: YearEnd) -> tuple[np.ndarray, np.ndarray]:
        """Share proficient per school: all tested grades, and the program grades."""
        st, score, cut = y.students, y.state_score, y.cut_by_grade
        tested = np.isfinite(score) & np.isfinite(cut[st.grade])
        prof = np.zeros(st.n)
        prof[tested] = score[tested] >= cut[st.grade[tested]]
        program = tested & np.isin(st.grade, self.params.district.program_grades)
        n_s = len(self.schools)
        return (group_means(prof, np.where(tested, st.school, -1), n_s)[0],
                group_means(prof, np.where(program, st.school, -1), n_s)[0])

    def _growth(self, students: pd.DataFrame) -> np.ndarray:
        """Mean growth (fall SD) of each school's program-grade students this year."""
        n_s = len(self.schools)
        if not len(students):
            return np.full(n_s, np.nan)
        prog = students[students.program_grade]
        return group_means(prog.growth_sd.to_numpy(float), prog.school.to_numpy(), n_s)[0]

    def resume_before(self, prof: np.ndarray, growth: np.ndarray, year: int) -> None:
        """The "before" values of a spin-up run elsewhere (``before_true`` of its last year,
        ``year``), as this arm's review sees them, and this arm's leaders' decision on them
        before program year 1 (``_anticipate``): the same as running that year here (the
        spin-up's own arm has no leaders)."""
        self.before, self.before_growth = self._as_seen(year, prof, growth)
        self._anticipate(year, prof)

    def _as_seen(self, year: int, prof: np.ndarray,
                 growth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Program-grade share proficient and mean growth as the district's review sees them,
        with each school-year's noise (``review`` stream, drawn whatever the settings)."""
        eps = self.streams.at("review", year, 1).standard_normal((2, len(self.schools)))
        r = self.arm.review
        if r is None:
            return prof, growth
        return prof + r.proficiency_noise_sd * eps[0], growth + r.growth_noise_sd * eps[1]

    def _evaluate(self, y: YearEnd):
        st, p = y.students, self.params
        resid = residuals(y.state_score, st.prior_state_score, st.grade)
        rng = self.streams.at("evaluation", y.year)
        z = self.staff.effect / max(p.teachers.effect_sd, 1e-9)
        return evaluate(resid, st.teacher, st.room, self.staff.room, bool(self._shared(y)), z,
                        rng, p.evaluation)

    def _on_playlist(self, y: YearEnd) -> np.ndarray:
        """Teachers whose students followed a personalized regime this year (drift applies)."""
        personal = np.bincount(y.students.teacher[y.personal], minlength=self.staff.n)
        return personal > 0

    def _shared(self, y: YearEnd) -> bool:
        return self.arm.evaluation == "shared" and not y.burning_in

    def _pressure(self, prof_school: np.ndarray) -> np.ndarray:
        """Each teacher's school shortfall as a share of the target (0-1)."""
        target = self.params.sensemaking.target_proficiency
        short = np.clip((target - np.nan_to_num(prof_school, nan=target)) / target, 0, 1)
        return short[self.staff.school]

    # --- rows ---------------------------------------------------------------------
    def _teacher_rows(self, y: YearEnd, ev, drift_now, novice_now, exits) -> pd.DataFrame:
        p, arm = self.params, self.arm
        cuts = p.evaluation.rating_cuts
        staff = self.staff
        true_z = staff.effect / max(p.teachers.effect_sd, 1e-9)
        rows = pd.DataFrame({
            "arm": arm.label, "replicate": self.replicate, "year": y.reported_year,
            "school": staff.school.copy(), "teacher": np.arange(staff.n),
            "person": staff.person.copy(), "grade": staff.grade.copy(),
            "team": staff.room.copy(), "evaluation": arm.evaluation,
            "true_effect": staff.effect.copy(), "va_estimate": ev.va_estimate,
            "observation": ev.observation, "composite": ev.composite,
            "rating": pd.Categorical(np.asarray(RATINGS)[ev.rating], categories=RATINGS),
            "true_rating": pd.Categorical(
                np.asarray(RATINGS)[rating_of(true_points(true_z, np.isfinite(ev.va_estimate),
                                                          p.evaluation), cuts)],
                categories=RATINGS),
            "linked_students": ev.linked, "stress": staff.stress.copy(),
            "program": self.program_teachers(y.burning_in),
            "trust": staff.trust.copy(), "drift": np.where(self._on_playlist(y), drift_now, 0.0),
            "exited": exits, "novice": novice_now, "capacity": staff.capacity_eff.copy(),
            "load": staff.load.copy(), "sections": staff.sections.copy(),
            "experience": staff.experience.copy(), "program_years": staff.program_years.copy(),
        })
        return rows[staff.sections > 0].reset_index(drop=True)

    def _school_rows(self, y: YearEnd, growth: np.ndarray,
                     prof_program: np.ndarray) -> pd.DataFrame:
        rv = self.arm.review
        dpw = self.params.calendar.days_per_week
        rows = []
        for s in self.schools:
            regime = s.regime if s.program_active else y.base_regime
            floor = regime.floor()
            rows.append({
                "arm": self.arm.label, "replicate": self.replicate, "year": y.reported_year,
                "school": s.index, "proficiency": prof_program[s.index],
                "mean_growth_sd": float(growth[s.index]),
                "test_prep_weeks": regime.window_days() / dpw,
                "floor": np.nan if np.isinf(floor) else floor,
                "tutoring": regime.tutoring_hours(),
                "gradual_floor": regime.gradual_floor(),
                "grade_level_first": regime.grade_level_first,
                "program_active": s.program_active, "response": "", "dropped": False,
                "first_review_year": (review.first_review(rv, self.review.offset[s.index])
                                      if rv is not None else -1),
                "reviewed": False, "review_case": np.nan})
        return pd.DataFrame(rows)

    # --- leaders, review, turnover, development ------------------------------------
    def _leaders_and_review(self, y: YearEnd, prof_program: np.ndarray, seen_prof: np.ndarray,
                            seen_growth: np.ndarray, rows: pd.DataFrame) -> None:
        u = self._draws(y.year)
        rv, draws = self.arm.review, self.review
        for s in self.schools:
            if not s.program_active:
                continue
            i = s.index
            if np.isnan(self.before[i]):  # no year before the program (no burn-in)
                self.before[i], self.before_growth[i] = seen_prof[i], seen_growth[i]
            self.years_active[i] += 1
            first = review.first_review(rv, draws.offset[i]) if rv is not None else 0
            if rv is not None and self.years_active[i] >= first:
                case = review.evidence_score(seen_prof[i] - self.before[i],
                                             seen_growth[i] - self.before_growth[i],
                                             draws.growth_weight[i], rv)
                rows.loc[i, "reviewed"] = True
                rows.loc[i, "review_case"] = case + rv.leniency_sd * draws.leniency[i]
                if review.fails_review(self.years_active[i], first, case, draws.leniency[i], rv):
                    s.program_active = False
                    rows.loc[i, "dropped"] = True
                    continue
            done = self._lead(s, self._shortfall(prof_program[i]), u[:, i],
                              self.years_active[i] + 1)
            rows.loc[i, "response"] = "+".join(done)

    def _shortfall(self, prof: float) -> float:
        """The program grades' shortfall below the target, as a share of the target (0-1;
        0 when the share is missing)."""
        target = self.params.sensemaking.target_proficiency
        return max(0.0, target - float(np.nan_to_num(prof, nan=target))) / target

    def _draws(self, year: int) -> np.ndarray:
        """The leaders' uniform draws of ``year``: row 0 for ``responses`` (key year, as
        before the second list existed), row 1 for ``supplements`` (key year, 1)."""
        n = len(self.schools)
        return np.stack([self.streams.at("leaders", year).random(n),
                         self.streams.at("leaders", year, 1).random(n)])

    def _anticipate(self, year: int, prof_program: np.ndarray) -> None:
        """Before program year 1: leaders weigh the shortfall of the year before the program,
        the district's ``year`` (times ``leadership.anticipation``)."""
        weight = self.params.leadership.anticipation
        if self.arm.leaders is None or weight <= 0:
            return
        u = self._draws(year)
        for s in self.schools:
            self._lead(s, weight * self._shortfall(prof_program[s.index]), u[:, s.index], 1)

    def _lead(self, s, pressure: float, u: np.ndarray, program_year: int) -> list[str]:
        """The leader of school ``s`` decides on each escalation list for ``program_year``
        (the program year the response will be in force); returns the responses taken."""
        lead = self.arm.leaders
        if lead is None:
            return []
        r = (lead.responsiveness if lead.responsiveness is not None
             else self.params.leadership.responsiveness)
        done = []
        for track, (entries, u_i) in enumerate(((lead.responses, u[0]),
                                                (lead.supplements, u[1]))):
            step = s.next_response if track == 0 else s.next_supplement
            take = leaders.next_step(entries, step, program_year, lead,
                                     s.regime.window_days() > 0,
                                     leaders.responds(pressure, u_i, r))
            if take is None:
                continue
            key = take if track == 0 else -1 - take
            turn = self.turns.get(key, 0)
            self.turns[key] = turn + 1
            action = leaders.alternative(entries[take], turn)
            s.regime = leaders.apply_response(s.regime, action, lead, self.params.calendar)
            if track == 0:
                s.next_response = take + 1
            else:
                s.next_supplement = take + 1
            done.append(action)
        return done

    def _develop(self, y: YearEnd) -> None:
        """A year of the arm's PD for program teachers."""
        gain = sensemaking.pd_gain(self.arm.pd, self.params.sensemaking)
        self.staff.capacity = self.staff.capacity + gain * self.program_teachers(y.burning_in)

    def _mature(self, practising: np.ndarray) -> None:
        """A year older: every teacher a year of experience, a teacher who practised the
        program a year of it, a member of a team room a year of working together (trust)."""
        staff = self.staff
        staff.experience += 1
        staff.program_years += practising
        staff.trust = rules.grow_trust(staff.trust, staff.room >= 0,
                                       self.params.teams.trust_growth)

    def _replace(self, y: YearEnd, exits: np.ndarray) -> None:
        """Teachers who leave are replaced by novices in the same classroom."""
        staff = self.staff
        staff.novice[:] = False
        idx = np.flatnonzero(exits)
        if idx.size == 0:
            return
        sp, tp = self.params.sensemaking, self.params.teachers
        rng = self.streams.at("novices", y.year)
        n = staff.n  # full-length draws: a classroom's novice is the same in every arm
        staff.ability[idx] = rng.normal(sp.novice_ability_mean, tp.effect_sd, n)[idx]
        # the capacity a novice will reach (capacity_now: novice_capacity in the first year)
        staff.capacity[idx] = np.maximum(1.0, rng.normal(tp.capacity_mean,
                                                         tp.capacity_sd / 2, n)[idx])
        staff.trust[idx], staff.stress[idx], staff.drift[idx] = sp.novice_trust, 0.0, 0.0
        staff.experience[idx] = staff.program_years[idx] = 0
        staff.effect[idx] = rules.effect_now(staff, np.zeros(n, bool), tp)[idx]  # 0 years
        staff.novice[idx] = True
        staff.person[idx] = staff.next_person + np.arange(idx.size)
        staff.next_person += idx.size
