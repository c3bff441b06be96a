"""Model parameters: every mechanism's knobs, their units and defaults.

These pydantic models are the single source of truth for parameter names,
units (in each field's description) and defaults. ``docs/model.md`` lists
them; scenario files set any of them. Unknown keys, NaN, infinities and
out-of-range values are rejected.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Strict(BaseModel):
    """Base for every parameter block: unknown keys and NaN are errors."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, validate_assignment=True,
                              strict=True)


class CurriculumParams(Strict):
    seed: int = Field(7, ge=0, description="seed of the prerequisite graph: the curriculum is "
                                           "the state's, the same in every replicate")
    lowest_grade: int = Field(0, ge=0, le=12, description="first grade with skills (0 = K)")
    highest_grade: int = Field(
        9, ge=0, le=12, description="last grade with skills (one above the top enrolled grade "
                                    "leaves room for students above grade)")
    units_per_grade: int = Field(4, ge=1, le=12, description="units per grade")
    skills_per_unit: int = Field(5, ge=1, le=20, description="skills per unit")
    cross_grade_prereqs: int = Field(
        1, ge=0, le=5, description="prerequisites drawn from the same unit one grade below")
    extra_prereq_prob: float = Field(
        0.3, ge=0, le=1, description="probability of one extra earlier prerequisite")

    @model_validator(mode="after")
    def _order(self):
        if self.highest_grade < self.lowest_grade:
            raise ValueError("highest_grade must be >= lowest_grade")
        return self


class DistrictParams(Strict):
    schools: int = Field(5, ge=1, le=2000, description="number of schools")
    grades: list[int] = Field(default_factory=lambda: list(range(0, 9)),
                              description="grades every school serves (0 = K)")
    classes_per_grade: int = Field(3, ge=1, le=50, description="classrooms per grade per school")
    class_size: int = Field(25, ge=1, le=200, description="students per classroom (students)")
    program_grades: list[int] = Field(default_factory=lambda: [6, 7, 8],
                                      description="grades where the arm's regime applies")
    room_size: int = Field(100, ge=1, le=400,
                           description="students per personalized room; classes are merged "
                                       "into rooms of at most this size, their teachers a team")
    mean_offset_sd: float = Field(
        -0.9, ge=-4, le=4,
        description="district mean starting achievement, in SD of the statewide reference")
    mobility: float = Field(0.08, ge=0, le=1,
                            description="share of students replaced by newcomers each summer")
    cohort_offsets_sd: list[list[float]] = Field(
        default_factory=list,
        description="known schools (from `plsim district import`): one row per school, one "
                    "offset per grade (SD of starting achievement, added to mean_offset_sd) "
                    "for the cohort in that grade in reported year 1; when set, it replaces "
                    "the random school effect; empty = schools drawn at random")

    @model_validator(mode="after")
    def _cohort_offsets(self):
        rows = self.cohort_offsets_sd
        if rows and (len(rows) != self.schools
                     or any(len(r) != len(self.grades) for r in rows)):
            raise ValueError(f"cohort_offsets_sd must have one row per school ({self.schools}) "
                             f"of one offset per grade ({len(self.grades)}), or be empty")
        if any(not -6 <= x <= 6 for r in rows for x in r):
            raise ValueError("cohort_offsets_sd values must be between -6 and 6 (SD)")
        return self

    @model_validator(mode="after")
    def _grades(self):
        if not self.grades or sorted(set(self.grades)) != sorted(self.grades):
            raise ValueError("grades must be a non-empty list of distinct grades")
        if sorted(self.grades) != list(range(min(self.grades), max(self.grades) + 1)):
            raise ValueError("grades must be consecutive (students are promoted grade by grade)")
        missing = set(self.program_grades) - set(self.grades)
        if missing:
            raise ValueError(f"program_grades {sorted(missing)} are not among grades")
        return self


class PopulationParams(Strict):
    share_within_class: float = Field(0.62, gt=0, lt=1,
                                      description="share of achievement variance within classrooms")
    share_between_teachers: float = Field(
        0.18, ge=0, lt=1, description="share between classrooms of one school")
    share_between_schools: float = Field(0.20, ge=0, lt=1, description="share between schools")
    sd_years_intercept: float = Field(
        0.3, gt=0, le=5, description="SD of starting achievement at grade 0 (grade-years)")
    sd_years_per_grade: float = Field(
        0.35, ge=0, le=1, description="increase of that SD per grade (grade-years per grade)")
    mastery_spread_years: float = Field(
        0.35, gt=0, le=3,
        description="logistic scale of a student's mastery profile around their level "
                    "(grade-years): larger means more gaps below and islands above")
    learning_rate_sd: float = Field(0.3, ge=0, le=2, description="SD of log learning rate")
    learning_rate_achievement_corr: float = Field(
        0.5, ge=-1, le=1, description="correlation of log learning rate with starting "
                                      "achievement (z, district offset included): the "
                                      "conditions behind a gap persist")
    engagement_mean: float = Field(0.8, gt=0, lt=1, description="mean baseline engagement (0-1)")
    engagement_concentration: float = Field(
        20, gt=0, description="Beta concentration of baseline engagement")
    attendance_mean: float = Field(0.93, gt=0, le=1, description="mean daily attendance (share)")
    attendance_concentration: float = Field(40, gt=0,
                                            description="Beta concentration of attendance")
    anxiety_mean: float = Field(0.3, gt=0, lt=1, description="mean baseline test anxiety (0-1)")
    anxiety_concentration: float = Field(8, gt=0, description="Beta concentration of anxiety")

    @model_validator(mode="after")
    def _shares(self):
        total = self.share_within_class + self.share_between_teachers + self.share_between_schools
        if abs(total - 1) > 1e-6:
            raise ValueError(f"variance shares must sum to 1 (they sum to {total:.3f})")
        return self


class TeacherParams(Strict):
    effect_sd: float = Field(0.15, ge=0, le=1,
                             description="SD of teacher effects (student SD of annual growth)")
    typical_growth_sd: float = Field(
        0.6, gt=0, le=3, description="annual growth of a mean teacher's students (student SD); "
                                     "converts an effect into a learning-rate multiplier")
    capacity_mean: float = Field(5.0, gt=0, le=50,
                                 description="distinct paces (units) a teacher runs well at once")
    capacity_sd: float = Field(1.5, ge=0, le=20, description="SD of capacity (paces)")
    capacity_elasticity: float = Field(
        0.3, ge=0, le=3, description="exponent of the learning penalty (capacity/paces)^e")
    experience_gain_early: float = Field(
        0.08, ge=0, le=1, description="effectiveness a teacher gains in their first years "
                                      "(student SD of annual growth), reached at the pace "
                                      "of experience_early_years (Rockoff 2004; Papay & "
                                      "Kraft 2015)")
    experience_early_years: float = Field(
        1.5, gt=0, le=20, description="time constant of the early gain (years): "
                                      "1 - exp(-years / this)")
    experience_gain_late: float = Field(
        0.05, ge=0, le=1, description="effectiveness gained, linearly, over the first "
                                      "experience_late_years of a career on top of the early "
                                      "gain (student SD of annual growth; Papay & Kraft 2015)")
    experience_late_years: float = Field(
        10, gt=0, le=40, description="years over which the later gain accrues (years)")
    specific_experience_share: float = Field(
        0.26, ge=0, le=1, description="share of the returns to experience specific to the "
                                      "practice taught: a teacher starting the program's new "
                                      "practice starts that share from 0 years (Ost 2014: "
                                      "teachers who repeat their assignment improve 35% "
                                      "faster; 0.35 / 1.35)")


class CalendarParams(Strict):
    days: int = Field(180, ge=20, le=260, description="instructional days per year")
    fall_test_day: int = Field(0, ge=0, description="day of the fall growth test (0 = first)")
    spring_test_day: int = Field(175, ge=0, description="day of the spring growth test")
    state_test_day: int = Field(150, ge=0, description="day of the state test")
    benchmark_every_days: int = Field(
        45, ge=0, description="days between benchmark tests feeding the playlist (0 = none)")
    days_per_week: int = Field(5, ge=1, le=7, description="instructional days per week")
    burn_in_years: int = Field(
        8, ge=0, le=30, description="spin-up: years of traditional pacing for everyone before "
                                    "year 1 (not reported; run once per replicate, shared by "
                                    "every arm); 8 for K-8 reach the model's own steady state "
                                    "(docs/model.md §5): every student of year 1 who did not "
                                    "move in was taught by the model since kindergarten")

    @model_validator(mode="after")
    def _days(self):
        for name in ("fall_test_day", "spring_test_day", "state_test_day"):
            if getattr(self, name) >= self.days:
                raise ValueError(f"{name} must be within the year (0..{self.days - 1})")
        if self.fall_test_day >= self.spring_test_day:
            raise ValueError("fall_test_day must come before spring_test_day")
        return self


class LearningParams(Strict):
    base_rate: float = Field(0.55, gt=0, le=5,
                             description="daily hazard of mastering a ready skill (per day)")
    grade_difficulty: float = Field(
        0.05, ge=0, le=2, description="later grades' skills are harder: the rate is multiplied "
                                      "by exp(-grade_difficulty * (skill grade - 4))")
    readiness_floor: float = Field(
        0.15, ge=0, le=1, description="learning factor when no prerequisite is mastered")
    backfill_rate: float = Field(
        0.5, ge=0, le=5, description="hazard of learning a missing prerequisite met in context, "
                                     "relative to the day's rate")
    modality_whole_class: float = Field(1.0, gt=0, le=3, description="learning factor, whole class")
    modality_small_group: float = Field(1.2, gt=0, le=3,
                                        description="learning factor, teacher-led small group")
    modality_peer: float = Field(0.95, gt=0, le=3, description="learning factor, peer work")
    modality_software: float = Field(0.95, gt=0, le=3, description="learning factor, software")
    teacher_weight_unled: float = Field(
        0.5, ge=0, le=1, description="share of the teacher effect reaching peer/software work")
    familiarity_saturation_days: float = Field(
        6, gt=0, le=100, description="days of exposure at which familiarity is full")
    summer_loss_recent: float = Field(0.25, ge=0, le=1,
                                      description="summer loss probability, skills mastered "
                                                  "this school year")
    summer_loss_old: float = Field(0.005, ge=0, le=1,
                                   description="summer loss probability, older skills")
    summer_familiarity_keep: float = Field(0.5, ge=0, le=1,
                                           description="share of familiarity kept over summer")
    outside_sd_years: float = Field(
        0.3, ge=0, le=2, description="out-of-school learning: SD across students of the "
                                      "persistent change it makes each summer on the "
                                      "student's frontier (grade-years per summer; 0: off; "
                                      "fitted to the calibration facts, docs/model.md §10)")
    outside_community_weight: float = Field(
        0.7, ge=0, le=1, description="out-of-school learning: weight of the district's and "
                                     "school's achievement offset (SD) in a student's "
                                     "intensity (SD units): 1 = a district 1 SD below the "
                                     "state is 1 SD below it out of school too")


class AffectParams(Strict):
    recovery: float = Field(0.05, ge=0, le=1,
                            description="daily pull of engagement/anxiety back to baseline")
    boredom: float = Field(0.004, ge=0, le=1,
                           description="engagement lost per day on already-mastered content")
    frustration: float = Field(0.008, ge=0, le=1,
                               description="engagement lost per day on content with no "
                                           "prerequisites mastered (scaled by the share missing)")
    switch_engagement: float = Field(
        0.04, ge=0, le=10, description="engagement lost per day per (grade-year of change in "
                                       "the working level)^change_exponent")
    switch_anxiety: float = Field(
        0.05, ge=0, le=10, description="anxiety gained per day per (grade-year of change in "
                                       "the working level)^change_exponent")
    change_exponent: float = Field(
        1.0, ge=1, le=4, description="how the cost of a change grows with its size (1: in "
                                     "proportion; 2: a change twice as large costs four times)")
    level_smoothing_days: float = Field(
        10.0, ge=1, le=60, description="days over which a student's working level follows "
                                      "their content (exponential smoothing)")
    unfamiliar_anxiety: float = Field(
        0.005, ge=0, le=1, description="anxiety gained per day on content at or above grade "
                                       "level whose prerequisites are not all mastered")
    min_engagement: float = Field(0.2, ge=0, le=1, description="engagement never falls below")
    switch_min_jump_years: float = Field(
        1.0, ge=0, le=12, description="reported switches: a change of track between "
                                      "below-grade and grade-level content is counted when it "
                                      "jumps at least this far (grade-years)")
    switch_persist_days: int = Field(
        5, ge=1, le=60, description="reported switches: days in a row on the other side of "
                                    "grade level before a change of track is counted")


class TraditionalParams(Strict):
    """A whole class on the pacing guide, with the differentiation one teacher can give."""

    extension_share: float = Field(
        0.5, ge=0, le=1, description="P(a student whose record shows the day's skill mastered "
                                     "works on their next skill (at most extension_years "
                                     "ahead) instead)")
    extension_years: int = Field(
        1, ge=0, le=12, description="how many grades above the enrolled grade extension may "
                                    "reach (grades; 1 = to the end of the next grade)")
    reteach_group_size: int = Field(
        6, ge=0, le=40, description="students in the teacher's daily reteach group (teacher-led "
                                    "small group on a missing prerequisite of the day's skill)")
    reteach_depth_years: float = Field(
        1.0, ge=0, le=12, description="how far below the enrolled grade a reteach prerequisite "
                                      "may lie (grade-years)")
    reteach_min_capacity: float = Field(
        2.0, ge=1, le=50, description="effective capacity (paces) a teacher needs to run a "
                                      "reteach group beside the class")


class AssessmentParams(Strict):
    exit_slip_guess: float = Field(0.25, ge=0, le=1, description="P(pass exit slip | not mastered)")
    exit_slip_slip: float = Field(0.1, ge=0, le=1, description="P(fail exit slip | mastered)")
    mastery_streak: int = Field(2, ge=1, le=10,
                                description="consecutive passed exit slips to mark mastered")
    fail_limit: int = Field(4, ge=1, le=50, description="consecutive failed exit slips before the "
                                                        "playlist sends the student back to "
                                                        "the skill's prerequisites")
    benchmark_error: float = Field(0.1, ge=0, le=0.5,
                                   description="P(the diagnostic misreads one skill it tests)")
    diagnostic_error_years: float = Field(
        0.3, ge=0, le=3, description="SD of the placement/benchmark diagnostic's estimate of a "
                                     "student's level (grade-years)")
    diagnostic_band_years: float = Field(
        0.5, ge=0, le=9, description="half-width of the band of skills around the estimated "
                                     "level the diagnostic tests directly (grade-years)")
    bank_seed: int = Field(11, ge=0, description="seed of the item bank's own difficulties: "
                                                 "the bank is the state's, the same in every "
                                                 "replicate")
    items_per_skill: int = Field(6, ge=1, le=50, description="items in the bank per skill")
    state_form_items: int = Field(
        60, ge=1, le=500, description="items on the state test's fixed form, drawn from the "
                                      "bank's items on the enrolled grade's skills, evenly "
                                      "spaced in difficulty (at most all of them)")
    item_guess: float = Field(0.2, ge=0, lt=1,
                              description="lower asymptote of every item (P(right) by guessing)")
    item_difficulty_sd: float = Field(0.5, ge=0, le=5,
                                      description="SD of items' own difficulty (logits)")
    knowledge_logits: float = Field(
        5.0, gt=0, le=30, description="logits between no knowledge and full knowledge of an "
                                      "item's skill in the response model")
    knowledge_threshold: float = Field(
        0.6, ge=0, le=1, description="knowledge at which an item of average difficulty is "
                                      "right half-way between guessing and certainty")
    own_skill_weight: float = Field(
        0.6, ge=0, le=1, description="weight of the item's own skill in knowledge; the rest "
                                     "is on the skills it builds on")
    ancestor_decay: float = Field(
        0.5, gt=0, le=1, description="weight of a prerequisite per grade below the item's "
                                     "skill (relative to same-grade prerequisites)")
    familiarity_weight: float = Field(
        0.0, ge=0, le=1, description="knowledge credit of full familiarity with an "
                                     "unmastered skill, beyond what exposure teaches (its "
                                     "prerequisites): an assumption the fit searches, 0 none")
    unseen_anxiety_penalty: float = Field(
        0.6, ge=0, le=1, description="relative loss of the guessing asymptote on never-seen "
                                     "skills, times anxiety ('I've never seen this')")
    growth_stages: int = Field(3, ge=1, le=10, description="stages of the adaptive growth test")
    growth_items_per_stage: int = Field(15, ge=1, le=100,
                                        description="items per growth-test stage")
    growth_prior_sd_years: float = Field(
        3.0, gt=0, le=20, description="SD of the growth test's EAP prior around the grade's "
                                      "expected level (grade-years): wide, so scores are "
                                      "close to ML estimates")
    growth_window_years: float = Field(
        0.5, gt=0, le=5, description="a stage's items spread over +- this around the "
                                     "student's current estimate (grade-years)")
    scale_intercept: float = Field(150, description="vertical scale score at achievement 0")
    scale_points_per_year: float = Field(10, gt=0, description="scale points per grade-year")
    tested_grades: list[int] = Field(default_factory=lambda: [3, 4, 5, 6, 7, 8],
                                     description="grades that sit the state test")
    reference_proficient_share: float = Field(
        0.5, gt=0, lt=1, description="share proficient in the statewide reference population; "
                                     "fixes the cut")
    reference_students_per_grade: int = Field(
        3000, ge=100, le=100000, description="size of the statewide reference cohort per grade")


class EvaluationParams(Strict):
    """Teacher evaluation: value added on the state test plus an observation, each on a
    1-4 points scale, rated by fixed cuts on their weighted composite."""

    va_weight: float = Field(0.5, ge=0, le=1, description="weight of value added in the "
                                                            "composite (the rest: observation)")
    observation_noise_sd: float = Field(
        1.0, ge=0, le=10, description="SD of observation error (SD of true effects)")
    observation_mean: float = Field(
        3.3, ge=1, le=4, description="mean observation score (points, 1-4): evaluators' "
                                     "leniency")
    observation_sd: float = Field(
        0.4, ge=0, le=3, description="SD of observation scores between teachers (points)")
    va_mean: float = Field(3.0, ge=1, le=4, description="value-added points of an average "
                                                        "teacher (expected growth)")
    va_sd: float = Field(0.5, ge=0, le=3, description="value-added points per SD of "
                                                      "value-added estimates")
    rating_cuts: list[float] = Field(
        default_factory=lambda: [1.75, 2.5, 3.5],
        description="composite cut points (points, 1-4) between ineffective / developing / "
                    "effective / highly effective")
    min_students: int = Field(5, ge=1, le=1000,
                              description="linked students needed for a value-added estimate")

    @model_validator(mode="after")
    def _ascending(self):
        if len(self.rating_cuts) != 3 or sorted(self.rating_cuts) != self.rating_cuts:
            raise ValueError("rating_cuts must be three ascending numbers")
        return self


class SensemakingParams(Strict):
    """How teachers respond to accountability: stress, drift, exits, development."""

    target_proficiency: float = Field(
        0.35, gt=0, le=1, description="the school's accountability target (share proficient)")
    stress_decay: float = Field(0.5, ge=0, le=1, description="share of last year's stress kept")
    pressure_stress: float = Field(
        0.5, ge=0, le=2, description="stress from the school's shortfall (shortfall / target)")
    low_rating_stress: float = Field(0.3, ge=0, le=2,
                                     description="stress from an ineffective/developing rating")
    shared_resentment: float = Field(
        0.3, ge=0, le=2, description="stress from shared evaluation in a team without trust "
                                     "(times 1 - trust)")
    trust_buffer: float = Field(
        0.6, ge=0, le=1, description="share of stress a fully trusting team absorbs under "
                                     "shared evaluation")
    drift_sensitivity: float = Field(
        0.3, ge=0, le=2, description="share of a teacher's student-days swapped to grade-level "
                                     "content per unit of stress")
    max_drift: float = Field(0.5, ge=0, le=1, description="cap on drift (share of student-days)")
    exit_base: float = Field(0.11, ge=0, le=1,
                             description="yearly exit probability of a mid-career teacher")
    exit_novice: float = Field(
        0.09, ge=0, le=1, description="added exit probability in a teacher's first "
                                      "novice_exit_years years")
    novice_exit_years: int = Field(3, ge=0, le=40,
                                   description="years of experience below which exit_novice "
                                               "applies")
    exit_late: float = Field(0.05, ge=0, le=1,
                             description="added exit probability from late_exit_years of "
                                         "experience on (retirement)")
    late_exit_years: int = Field(25, ge=0, le=60,
                                 description="years of experience from which exit_late applies")
    exit_low_rating: float = Field(0.1, ge=0, le=1,
                                   description="added exit probability after a low rating")
    exit_stress: float = Field(0.15, ge=0, le=1,
                               description="added exit probability per unit of stress")
    novice_ability_mean: float = Field(
        0.0, ge=-1, le=1, description="mean stable ability of a novice replacement (student SD "
                                      "of annual growth); a novice's lower effect comes from "
                                      "experience 0 (teachers.experience_*)")
    novice_capacity: float = Field(3.0, gt=0, le=50, description="capacity of a novice (paces)")
    novice_trust: float = Field(0.2, ge=0, le=1, description="trust of a novice in the team")
    pd_targeted_gain: float = Field(0.6, ge=0, le=10,
                                    description="capacity gained per year of targeted pacing "
                                                "PD (paces)")
    pd_generic_gain: float = Field(0.1, ge=0, le=10,
                                   description="capacity gained per year of generic PD (paces)")
    project_based_gain: float = Field(
        0.3, ge=0, le=3, description="relative capacity gain from project-based structures")


Target = Literal["near_cut", "furthest_behind", "all"]
Response = Literal["test_prep", "tutoring", "raise_floor", "test_prep_days", "gradual_floor",
                   "grade_level_first"]
PILOTS = ("gradual_floor", "grade_level_first")  # the program's later strategies (seed 000)
Alternatives = Annotated[list[Response], Field(min_length=1, max_length=len(Response.__args__))]


class Leaders(Strict):
    """School leaders' rule-based responses to the school's results (which compromises an arm's
    leaders may make; how readily they make them is ``[leadership]``, ``LeadershipParams``)."""

    responses: list[Response | Alternatives] = Field(
        default_factory=lambda: ["test_prep", "tutoring", "raise_floor", "test_prep_days"],
        min_length=1, description="changes to the program's content, in the order a leader "
                                  "escalates through them; an entry that is a list holds "
                                  "alternatives the program spreads across its schools in "
                                  "turn")
    supplements: list[Response] = Field(
        default_factory=list, description="a second escalation list, decided separately each "
                                          "year: structures outside the program (tutoring)")
    responsiveness: float | None = Field(
        None, ge=0, le=100, description="P(respond) = 1 - exp(-responsiveness x shortfall / "
                                        "target); None = leadership.responsiveness")
    pilots_from_year: int = Field(
        1, ge=1, le=30, description="program year from which the program offers gradual_floor "
                                    "and grade_level_first (a leader whose next response is "
                                    "not yet offered waits)")
    test_prep_weeks: float = Field(6, gt=0, le=30, description="window a leader asks for (weeks)")
    tutoring_hours: float = Field(2, gt=0, le=20, description="tutoring a leader adds (h/week)")
    tutoring_target: Target = Field("near_cut", description="who the added tutoring targets")
    floor_step: float = Field(1, gt=0, le=12, description="years a raised floor moves up")
    test_prep_days: int = Field(5, ge=1, le=60,
                                description="grade-level-only days a leader adds before the test")


class LeadershipParams(Strict):
    """How readily school leaders respond to a shortfall (behaviour, calibrated to the case's
    timeline of compromises; which responses an arm allows is ``[arms.leaders]``)."""

    responsiveness: float = Field(
        3.0, ge=0, le=100, description="P(respond) = 1 - exp(-responsiveness x shortfall / "
                                       "target), each year and each escalation list")
    anticipation: float = Field(
        0.6, ge=0, le=5, description="weight of the shortfall before the program (the last "
                                     "burn-in year) in leaders' decision before program year 1 "
                                     "(0 = no response before a year under the program)")


class TeamParams(Strict):
    """How a team works together in a personalized room (handoffs and pooling scale with
    trust), how its scheduler groups teacher-led students, and what a room costs."""

    handoff_loss: float = Field(
        0.15, ge=0, le=1, description="share of a day's learning lost when the supervising team "
                                      "member is not the student's own teacher, in a pair "
                                      "without trust (times 1 - the pair's mean trust)")
    capacity_pooling: float = Field(
        0.5, ge=0, le=1, description="weight of the team's pooled capacity (sum of members' "
                                     "capacities against the room's distinct paces) at full "
                                     "trust (times the team's mean trust); the rest is the "
                                     "member's own capacity against their own paces")
    trust_growth: float = Field(
        0.2, ge=0, le=1, description="share of the gap to full trust a team member closes in "
                                     "each year the team works together (an assumption)")
    group_size: int = Field(
        6, ge=1, le=100, description="most students in one teacher-led group of the room's "
                                     "daily scheduler (groups are of one unit; a larger unit "
                                     "makes several groups)")
    transition_loss: float = Field(
        0.05, ge=0, le=1, description="share of a room student's day lost to moving between "
                                      "modalities (assumption)")
    unled_supervision_loss: float = Field(
        0.05, ge=0, le=1, description="share of a software or peer day lost in a room of a "
                                      "team, whose adults lead groups while the rest of the "
                                      "room works unled (assumption)")


Evidence = Literal["proficiency", "growth", "both"]


class ProgramReview(Strict):
    """The district reviews the program school by school and drops it where the evidence
    has not improved in time."""

    after_years: int = Field(3, ge=1, le=30, description="years of the program before review")
    min_improvement: float = Field(
        0.05, ge=-1, le=1, description="required gain in the school's share proficient over "
                                       "the year before the program (share)")
    evidence: Evidence = Field(
        "proficiency", description="what the review weighs: the school's share proficient, "
                                   "its mean growth, or both (each school's weight on growth "
                                   "drawn uniformly)")
    min_growth_gain: float = Field(
        0.0, ge=-3, le=3, description="required gain in the school's mean growth over the year "
                                      "before the program (fall SD)")
    proficiency_scale: float = Field(
        0.05, gt=0, le=1, description="gain in share proficient counted as one unit of evidence "
                                      "(share): weighs proficiency against growth and scales "
                                      "leniency")
    growth_scale: float = Field(
        0.1, gt=0, le=3, description="gain in mean growth counted as one unit of evidence "
                                     "(fall SD)")
    proficiency_noise_sd: float = Field(
        0.02, ge=0, le=0.5, description="SD of the noise in each school's share proficient as "
                                        "the district sees it, each year (share)")
    growth_noise_sd: float = Field(
        0.03, ge=0, le=1, description="SD of the noise in each school's mean growth as the "
                                      "district sees it, each year (fall SD)")
    leniency_sd: float = Field(
        0.5, ge=0, le=5, description="SD of each school's leniency: evidence units added to its "
                                     "case before the threshold (drawn once per school)")
    timing_spread: int = Field(
        1, ge=0, le=10, description="each school's first review falls after_years + an offset "
                                    "drawn uniformly from -timing_spread..timing_spread years "
                                    "(at least 1)")
    late_share: float = Field(
        0.0, ge=0, le=1, description="share of schools whose first review comes a year later "
                                     "still (drawn once per school; a delay only postpones)")


class Tutoring(Strict):
    hours_per_week: float = Field(ge=0, le=20, description="supplemental grade-level hours/week "
                                                           "(0: none)")
    target: Target = Field("near_cut", description="who is tutored")
    share: float = Field(0.25, gt=0, le=1, description="share of program students tutored "
                                                       "(ignored for target 'all')")
    session_hours: float = Field(1.5, gt=0, le=8, description="hours per session")
    effectiveness: float = Field(1.0, gt=0, le=3,
                                 description="learning factor of a tutoring session")


class GradualFloor(Strict):
    """A floor that rises from ``start_floor`` years below grade to grade level,
    linearly (or in ``steps`` equal steps) between ``start_day`` and ``grade_level_day``."""

    start_floor: float = Field(3.0, ge=0, le=12, description="floor at the start (years below)")
    start_day: int = Field(0, ge=0, description="day the floor starts rising")
    grade_level_day: int | None = Field(
        None, ge=0, description="day the floor reaches grade level (default: one week "
                                "before the state test)")

    def reaches_grade_level(self, calendar) -> int:
        """The day the floor reaches grade level (days)."""
        if self.grade_level_day is not None:
            return self.grade_level_day
        return max(self.start_day + 1, calendar.state_test_day - calendar.days_per_week)

    steps: int = Field(0, ge=0, le=100,
                       description="0 = rises continuously; N = rises in N equal steps")


Pacing = Literal["traditional", "personalized", "grade_level_first", "teacher_paced",
                 "extra_time", "move_on"]
GRADE_PACED = frozenset({"traditional", "teacher_paced", "extra_time"})  # a whole class, one pace


class ArmSettings(Strict):
    label: str = Field(min_length=1, max_length=60, pattern=r"^[A-Za-z0-9_.\-]+$")
    pacing: Pacing = "traditional"
    floor: float | None = Field(None, ge=0, le=12,
                                description="years below grade content may go (None = no floor)")
    ceiling: float | None = Field(None, ge=0, le=12,
                                  description="years above grade content may go (None = none)")
    test_prep_weeks: float = Field(0, ge=0, le=52,
                                   description="grade-level-only weeks before the state test")
    gradual_floor: GradualFloor | None = None
    tutoring: Tutoring | None = None
    evaluation: Literal["teacher_of_record", "shared"] = Field(
        "teacher_of_record", description="teacher of record, or the team's estimate for all")
    trust: float = Field(0.5, ge=0, le=1, description="mean trust within teams (prior "
                                                      "working relationships)")
    pd: Literal["none", "generic", "targeted"] = Field("none", description="yearly PD")
    leaders: Leaders | None = None
    review: ProgramReview | None = None
    limit_paces: bool = Field(False, description="teachers run at most their effective "
                                                 "capacity of distinct paces; the rest of their "
                                                 "students follow the common pace")
    sections: int = Field(
        1, ge=1, le=10, description="classroom lines (sections, one period each) a teacher of a "
                                    "program grade teaches from year 1: 1 = one class "
                                    "(elementary); 5 = five sections (secondary)")
    project_based: bool = Field(False, description="project-based structures raise capacity")
    move_on_days: int = Field(5, ge=1, le=60,
                              description="move_on pacing: days on a skill before moving on")
    advisory_hours_per_week: float = Field(
        0, ge=0, le=20, description="advisory/extended-day catch-up time for students behind "
                                    "the common pace (h/week)")

    @model_validator(mode="after")
    def _paths_for_floors_and_teams(self):
        """Floors bound individual paths, and shared evaluation needs team rooms: neither
        applies to a whole class on the pacing guide."""
        if self.pacing in GRADE_PACED and (self.floor is not None
                                           or self.gradual_floor is not None):
            raise ValueError(f"arm '{self.label}': floors apply to individual paths only "
                             f"(not {self.pacing} pacing)")
        if self.evaluation == "shared" and self.pacing in GRADE_PACED:
            raise ValueError(f"arm '{self.label}': shared evaluation needs team rooms, which "
                             f"individual paths set up (not {self.pacing} pacing)")
        if self.evaluation == "shared" and self.sections > 1:
            raise ValueError(f"arm '{self.label}': sections = {self.sections} gives each teacher "
                             "their own sections, not a team room: shared evaluation needs "
                             "sections = 1")
        return self

    def check_against(self, cal: CalendarParams, d: DistrictParams) -> None:
        """The arm's checks that need the scenario's calendar and district (the
        scenario's validator calls it, so a failure names the scenario)."""
        window_days = self.test_prep_weeks * cal.days_per_week
        if window_days > cal.state_test_day:
            raise ValueError(
                f"arm '{self.label}': test_prep_weeks={self.test_prep_weeks} is "
                f"{window_days:g} days, longer than the {cal.state_test_day} days before the "
                "state test")
        gf = self.gradual_floor
        if gf is not None:
            end = gf.reaches_grade_level(cal)
            if end > cal.state_test_day or gf.start_day >= end:
                raise ValueError(
                    f"arm '{self.label}': gradual_floor must start before it reaches grade level "
                    f"and reach it by the state test (start_day={gf.start_day}, "
                    f"grade_level_day={end}, state_test_day={cal.state_test_day})")
        if (self.sections > 1 and self.pacing not in GRADE_PACED
                and d.room_size // d.class_size > 1):
            raise ValueError(
                f"arm '{self.label}': sections = {self.sections} keeps each section a class with "
                f"its own teacher, but district.room_size = {d.room_size} merges classes of "
                f"{d.class_size} into team rooms; set room_size below {2 * d.class_size} or "
                "sections = 1")
