"""The year's end under accountability: evaluation, sensemaking, leaders, review, turnover.

``Accountability`` reads and updates the teachers' state (the district's
``TeacherState``: effect, capacity, trust, stress, drift, novice, person id)
and, once a year after the state test, in this order:

1. evaluates every teacher (``sim.accountability.evaluation``), teacher of record or shared;
2. updates stress and next year's drift (``sim.accountability.sensemaking``);
3. records the school-year: proficiency, growth and the policies in force;
4. lets each school's leader respond to a shortfall (``sim.accountability.leaders``) and the
   district review the program (from the first program year on);
5. replaces teachers who leave with novices, and adds a year of PD.

During the burn-in years teachers are evaluated and may leave, but no
program exists yet; the burn-in's last year gives each school's "before"
proficiency for the program review.
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
        self.before = np.full(n_s, np.nan)
        self.years_active = np.zeros(n_s, int)

    # --- during the year ----------------------------------------------------------
    def start_year(self) -> None:
        """Loads and effective capacities for the year (after rooms are set)."""
        m, staff = self.model, self.staff
        program = self.program_teachers()
        if m.arm.teacher_load is not None:
            staff.load = np.where(program, m.arm.teacher_load, staff.load)
        sp = m.params.sensemaking
        base = sensemaking.effective_capacity(staff.capacity, staff.load, False, sp)
        structured = sensemaking.effective_capacity(staff.capacity, staff.load,
                                                    m.arm.project_based, sp)
        staff.capacity_eff = np.where(program, structured, base)

    def program_teachers(self) -> np.ndarray:
        """Teachers of program grades in schools running the program (none in the burn-in):
        where an arm's load, structures and PD apply."""
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
        if m.burning_in:
            self.before = prof_program
            teachers = schools = pd.DataFrame()
        else:
            teachers = self._teacher_rows(ev, drift_now, novice_now, exits)
            schools = self._school_rows(students, prof_program)
            self._leaders_and_review(prof_program, schools)
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
        return pd.DataFrame({
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
            "load": staff.load.copy(),
        })

    def _school_rows(self, students: pd.DataFrame, prof_program: np.ndarray) -> pd.DataFrame:
        m = self.model
        prog = students[students.program_grade] if len(students) else students
        growth = prog.groupby("school").growth_sd.mean() if len(prog) else pd.Series(dtype=float)
        dpw = m.params.calendar.days_per_week
        rows = []
        for s in m.schools:
            regime = s.regime if s.program_active else m.base_regime
            floor = regime.floor()
            rows.append({
                "arm": m.arm.label, "replicate": m.replicate, "year": m.reported_year,
                "school": s.index, "proficiency": prof_program[s.index],
                "mean_growth_sd": float(growth.get(s.index, np.nan)),
                "test_prep_weeks": regime.window_days() / dpw,
                "floor": np.nan if np.isinf(floor) else floor,
                "tutoring": regime.tutoring_hours(),
                "program_active": s.program_active, "response": "", "dropped": False})
        return pd.DataFrame(rows)

    # --- leaders, review, turnover, development ------------------------------------
    def _leaders_and_review(self, prof_program: np.ndarray, rows: pd.DataFrame) -> None:
        m = self.model
        arm, cal = m.arm, m.params.calendar
        target = m.params.sensemaking.target_proficiency
        u = m.streams.at("leaders", m.year).random(len(m.schools))
        for s in m.schools:
            if not s.program_active:
                continue
            if np.isnan(self.before[s.index]):  # no year before the program (no burn-in)
                self.before[s.index] = prof_program[s.index]
            self.years_active[s.index] += 1
            if review.fails_review(self.years_active[s.index], prof_program[s.index],
                                    self.before[s.index], arm.review):
                s.program_active = False
                rows.loc[s.index, "dropped"] = True
                continue
            short = max(0.0, target - np.nan_to_num(prof_program[s.index], nan=target)) / target
            if (arm.leaders is not None and s.next_response < len(arm.leaders.responses)
                    and leaders.responds(short, u[s.index], arm.leaders.responsiveness)):
                action = arm.leaders.responses[s.next_response]
                s.regime = leaders.apply_response(s.regime, action, arm.leaders, cal)
                s.next_response += 1
                rows.loc[s.index, "response"] = action

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
