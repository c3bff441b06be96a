"""The year's end under accountability: evaluation, sensemaking, leaders, review, turnover.

``Accountability`` reads and updates the teachers' state (the district's
``TeacherState``: effect, capacity, trust, stress, drift, novice, person id)
and, once a year after the state test, in this order:

1. evaluates every teacher (``sim.accountability.evaluation``), teacher of record or shared;
2. updates stress and next year's drift (``sim.accountability.sensemaking``);
3. records the school-year: proficiency, growth and the policies in force;
4. lets the district review the program school by school (``sim.accountability.review``)
   and each school's leader respond to a shortfall (``sim.accountability.leaders``);
5. replaces teachers who leave with novices, and adds a year of PD.

During the burn-in years teachers are evaluated and may leave, but no
program exists yet; the burn-in's last year gives each school's "before"
share proficient and mean growth (as the review sees them) for the program review.
Teacher rows are written for the posts that teach this year (``sections`` > 0).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.accountability import leaders, review, sensemaking
from sim.accountability.evaluation import RATINGS, evaluate, group_means, rating_of, residuals


class Accountability:
    """Teachers' evaluation and behaviour, leaders and the program review for one district."""

    def __init__(self, model):
        self.model = model
        self.staff = model.staff
        n_s = len(model.schools)
        self.before = np.full(n_s, np.nan)         # share proficient the year before, as seen
        self.before_growth = np.full(n_s, np.nan)  # mean growth the year before, as seen (SD)
        self.years_active = np.zeros(n_s, int)
        self.review = review.review_draws(model.streams.at("review", 0), n_s, model.arm.review)

    # --- during the year ----------------------------------------------------------
    def start_year(self) -> None:
        """Effective capacities for the year (after rooms and sections are set)."""
        m, staff = self.model, self.staff
        structured = sensemaking.effective_capacity(staff.capacity, m.arm.project_based,
                                                    m.params.sensemaking)
        staff.capacity_eff = np.where(self.program_teachers(), structured, staff.capacity)

    def program_teachers(self) -> np.ndarray:
        """Teachers of program grades in schools running the program (none in the burn-in):
        where an arm's structures and PD apply."""
        m = self.model
        if m.burning_in:
            return np.zeros(self.staff.n, bool)
        active = np.array([s.program_active for s in m.schools])[self.staff.school]
        return np.isin(self.staff.grade, m.params.district.program_grades) & active

    # --- after the last day -------------------------------------------------------
    def end_of_year(self, students: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Run the year-end processes; return (teacher_years, school_years) rows."""
        m = self.model
        prof_school, prof_program = self._proficiency()
        ev = self._evaluate()
        staff = self.staff
        drift_now, novice_now = staff.drift.copy(), staff.novice.copy()
        pressure = self._pressure(prof_school)
        shared = self._shared() & (staff.room >= 0)
        sp = m.params.sensemaking
        staff.stress = sensemaking.update_stress(staff.stress, pressure, ev.rating, staff.trust,
                                                 shared, sp)
        staff.drift = sensemaking.drift_of(staff.stress, sp)
        exits = (m.streams.at("exits", m.year).random(staff.n)
                 < sensemaking.exit_probability(staff.stress, ev.rating, sp))
        growth = self._growth(students)
        seen_prof, seen_growth = self._as_seen(prof_program, growth)
        if m.burning_in:
            self.before, self.before_growth = seen_prof, seen_growth
            teachers = schools = pd.DataFrame()
        else:
            teachers = self._teacher_rows(ev, drift_now, novice_now, exits)
            schools = self._school_rows(growth, prof_program)
            self._leaders_and_review(prof_program, seen_prof, seen_growth, schools)
            self._develop()
        self._replace(exits)
        m.students.prior_state_score[:] = m.log.state_score
        return teachers, schools

    def _proficiency(self) -> tuple[np.ndarray, np.ndarray]:
        """Share proficient per school: all tested grades, and the program grades."""
        m = self.model
        st, score = m.students, m.log.state_score
        cut = m.reference.cut_by_grade
        tested = np.isfinite(score) & np.isfinite(cut[st.grade])
        prof = np.zeros(st.n)
        prof[tested] = score[tested] >= cut[st.grade[tested]]
        program = tested & np.isin(st.grade, m.params.district.program_grades)
        n_s = len(m.schools)
        return (group_means(prof, np.where(tested, st.school, -1), n_s)[0],
                group_means(prof, np.where(program, st.school, -1), n_s)[0])

    def _growth(self, students: pd.DataFrame) -> np.ndarray:
        """Mean growth (fall SD) of each school's program-grade students this year."""
        n_s = len(self.model.schools)
        if not len(students):
            return np.full(n_s, np.nan)
        prog = students[students.program_grade]
        return group_means(prog.growth_sd.to_numpy(float), prog.school.to_numpy(), n_s)[0]

    def _as_seen(self, prof: np.ndarray, growth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Program-grade share proficient and mean growth as the district's review sees them,
        with each school-year's noise (``review`` stream, drawn whatever the settings)."""
        m = self.model
        eps = m.streams.at("review", m.year, 1).standard_normal((2, len(m.schools)))
        r = m.arm.review
        if r is None:
            return prof, growth
        return prof + r.proficiency_noise_sd * eps[0], growth + r.growth_noise_sd * eps[1]

    def _evaluate(self):
        m = self.model
        st = m.students
        resid = residuals(m.log.state_score, st.prior_state_score, st.grade)
        rng = m.streams.at("evaluation", m.year)
        z = self.staff.effect / max(m.params.teachers.effect_sd, 1e-9)
        return evaluate(resid, st.teacher, st.room, self.staff.room, bool(self._shared()), z, rng,
                        m.params.evaluation)

    def _on_playlist(self) -> np.ndarray:
        """Teachers whose students followed a personalized regime this year (drift applies)."""
        m = self.model
        st = m.students
        personal = np.bincount(st.teacher[m.personal], minlength=self.staff.n)
        return personal > 0

    def _shared(self) -> bool:
        return self.model.arm.evaluation == "shared" and not self.model.burning_in

    def _pressure(self, prof_school: np.ndarray) -> np.ndarray:
        """Each teacher's school shortfall as a share of the target (0-1)."""
        target = self.model.params.sensemaking.target_proficiency
        short = np.clip((target - np.nan_to_num(prof_school, nan=target)) / target, 0, 1)
        return short[self.staff.school]

    # --- rows ---------------------------------------------------------------------
    def _teacher_rows(self, ev, drift_now, novice_now, exits) -> pd.DataFrame:
        m = self.model
        cuts = m.params.evaluation.rating_cuts
        staff = self.staff
        true_z = staff.effect / max(m.params.teachers.effect_sd, 1e-9)
        rows = pd.DataFrame({
            "arm": m.arm.label, "replicate": m.replicate, "year": m.reported_year,
            "school": staff.school.copy(), "teacher": np.arange(staff.n),
            "person": staff.person.copy(), "grade": staff.grade.copy(),
            "team": staff.room.copy(), "evaluation": m.arm.evaluation,
            "true_effect": staff.effect.copy(), "va_estimate": ev.va_estimate,
            "observation": ev.observation, "composite": ev.composite,
            "rating": pd.Categorical(np.asarray(RATINGS)[ev.rating], categories=RATINGS),
            "true_rating": pd.Categorical(np.asarray(RATINGS)[rating_of(true_z, cuts)],
                                          categories=RATINGS),
            "linked_students": ev.linked, "stress": staff.stress.copy(),
            "program": self.program_teachers(),
            "trust": staff.trust.copy(), "drift": np.where(self._on_playlist(), drift_now, 0.0),
            "exited": exits, "novice": novice_now, "capacity": staff.capacity_eff.copy(),
            "load": staff.load.copy(), "sections": staff.sections.copy(),
        })
        return rows[staff.sections > 0].reset_index(drop=True)

    def _school_rows(self, growth: np.ndarray, prof_program: np.ndarray) -> pd.DataFrame:
        m = self.model
        rv = m.arm.review
        dpw = m.params.calendar.days_per_week
        rows = []
        for s in m.schools:
            regime = s.regime if s.program_active else m.base_regime
            floor = regime.floor()
            rows.append({
                "arm": m.arm.label, "replicate": m.replicate, "year": m.reported_year,
                "school": s.index, "proficiency": prof_program[s.index],
                "mean_growth_sd": float(growth[s.index]),
                "test_prep_weeks": regime.window_days() / dpw,
                "floor": np.nan if np.isinf(floor) else floor,
                "tutoring": regime.tutoring_hours(),
                "program_active": s.program_active, "response": "", "dropped": False,
                "first_review_year": (review.first_review(rv, self.review.offset[s.index])
                                      if rv is not None else -1),
                "reviewed": False, "review_case": np.nan})
        return pd.DataFrame(rows)

    # --- leaders, review, turnover, development ------------------------------------
    def _leaders_and_review(self, prof_program: np.ndarray, seen_prof: np.ndarray,
                            seen_growth: np.ndarray, rows: pd.DataFrame) -> None:
        m = self.model
        arm, cal = m.arm, m.params.calendar
        target = m.params.sensemaking.target_proficiency
        u = m.streams.at("leaders", m.year).random(len(m.schools))
        rv, draws = arm.review, self.review
        for s in m.schools:
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
            short = max(0.0, target - np.nan_to_num(prof_program[i], nan=target)) / target
            if (arm.leaders is not None and s.next_response < len(arm.leaders.responses)
                    and leaders.responds(short, u[i], arm.leaders.responsiveness)):
                action = arm.leaders.responses[s.next_response]
                s.regime = leaders.apply_response(s.regime, action, arm.leaders, cal)
                s.next_response += 1
                rows.loc[i, "response"] = action

    def _develop(self) -> None:
        m = self.model
        gain = sensemaking.pd_gain(m.arm.pd, m.params.sensemaking)
        self.staff.capacity = self.staff.capacity + gain * self.program_teachers()

    def _replace(self, exits: np.ndarray) -> None:
        """Teachers who leave are replaced by novices in the same classroom."""
        m, staff = self.model, self.staff
        staff.novice[:] = False
        idx = np.flatnonzero(exits)
        if idx.size == 0:
            return
        sp, tp = m.params.sensemaking, m.params.teachers
        rng = m.streams.at("novices", m.year)
        n = staff.n  # full-length draws: a classroom's novice is the same in every arm
        staff.effect[idx] = rng.normal(sp.novice_effect_mean, tp.effect_sd, n)[idx]
        staff.capacity[idx] = np.maximum(1.0, rng.normal(sp.novice_capacity,
                                                         tp.capacity_sd / 2, n)[idx])
        staff.trust[idx], staff.stress[idx], staff.drift[idx] = sp.novice_trust, 0.0, 0.0
        staff.experience[idx] = 0
        staff.novice[idx] = True
        staff.person[idx] = staff.next_person + np.arange(idx.size)
        staff.next_person += idx.size
