"""Teachers: their state as arrays (one owner), and Mesa agents as views over it.

A teacher is tied to one classroom line of one grade in one school. Under
traditional pacing they are their students' teacher of record; in a
personalized room they are one member of the room's team. Everything a
teacher has lives in ``TeacherState`` (arrays indexed by teacher), which the
daily cycle and the year-end processes read and write whole; a ``Teacher``
agent only reads and writes its own row, so no copy can fall out of step.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from sim.engine import portable_math
from sim.engine.agents import Agent

TRUST_SD = 0.1  # spread of teachers' trust around their team's mean
EXPERIENCE_MAX = 45  # years of teaching a career can reach (the profile's support: 0..44)


class Workforce(NamedTuple):
    """Who holds the posts when the model starts: the steady state of the exits.

    ``profile``: the share of teachers with 0, 1, ... ``EXPERIENCE_MAX - 1`` years (the
    stationary distribution of experience under the exits' hazard by experience,
    ``sim.accountability.sensemaking.experience_profile``); ``novice_capacity``: a
    novice's mean capacity (paces)."""

    profile: np.ndarray
    novice_capacity: float


class TeacherState:
    """Every teacher's state (arrays of length ``n``, indexed by teacher).

    Attributes:
        school, grade, line: the classroom each teacher holds.
        ability: the person's stable effectiveness (student SD of annual growth), drawn once.
        effect: this year's true effectiveness (student SD of annual growth; mean about 0):
            ability plus the returns to experience (``effect_now``).
        capacity: distinct paces (content units) a teacher runs well once experienced, PD
            gains included; this year's is ``capacity_now`` (lower in the first years).
        capacity_eff: this year's effective capacity (paces), after experience and structures.
        workforce_return: the starting workforce's mean return to experience (student SD),
            taken off every effect so that the workforce's effects have mean about 0.
        workforce_share: the starting workforce's mean share of the full return
            (``experience_share``), the centre of the capacity's experience term.
        capacity_gap: paces the capacity grows from a novice's to the full return.
        experience: years of teaching (0 for a novice in their first year).
        program_years: years taught in the arm's program (0 until the first has ended).
        room: personalized room the teacher is a team member of (-1 none).
        load: students the teacher is responsible for this year, across their
            sections (a room's students shared equally by its team).
        sections: classroom lines the teacher teaches this year (1 for a class
            or a team member; several for a secondary teacher; 0 for a post
            left without sections by that structure).
        trust: trust in the team (0-1).
        stress: stress from evaluation pressure (0-1), after the last evaluation.
        drift: share of supervised student-days swapped to grade-level content.
        novice: replaced a leaver this year.
        person: id of the person holding the post (new for each replacement).
    """

    def __init__(self, school, grade, line, ability, capacity, experience, trust):
        self.n = len(school)
        self.school = np.asarray(school, np.int64)
        self.grade = np.asarray(grade, np.int64)
        self.line = np.asarray(line, np.int64)
        self.ability = np.asarray(ability, float)
        self.effect = self.ability.copy()
        self.capacity = np.asarray(capacity, float)
        self.capacity_eff = self.capacity.copy()
        self.experience = np.asarray(experience, np.int64)
        self.program_years = np.zeros(self.n, np.int64)
        self.room = np.full(self.n, -1, np.int64)
        self.load = np.zeros(self.n)
        self.sections = np.ones(self.n, np.int64)
        self.trust = np.asarray(trust, float)
        self.stress = np.zeros(self.n)
        self.drift = np.zeros(self.n)
        self.novice = np.zeros(self.n, bool)
        self.person = np.arange(self.n)
        self.next_person = self.n
        # set by draw_teachers from the workforce's profile; these leave effect and capacity
        # as given (a hand-built staff)
        self.workforce_return, self.workforce_share, self.capacity_gap = 0.0, 0.0, 0.0


def draw_teachers(rng: np.random.Generator, trust_rng: np.random.Generator, params,
                  shape: tuple[int, list[int], int], trust: float,
                  workforce: Workforce) -> TeacherState:
    """One teacher per (school, grade, line) of ``shape`` (schools, grades, lines), in
    that order.

    Abilities, capacities and experience come from ``rng`` (drawn per teacher in that
    order; experience from ``workforce.profile``, the exits' steady state, so the
    workforce does not age or grow younger in the first years); trust from
    ``trust_rng`` around the arm's mean ``trust``. The effect is the ability plus the
    returns to the drawn experience (``effect_now``); the capacity grows with it
    (``capacity_now``).
    """
    schools, grades, lines = shape
    rows = [(s, g, line) for s in range(schools) for g in grades for line in range(lines)]
    years = np.arange(EXPERIENCE_MAX)
    ability, capacity, experience = [], [], []
    for _ in rows:
        ability.append(rng.normal(0.0, params.effect_sd))
        capacity.append(max(1.0, rng.normal(params.capacity_mean, params.capacity_sd)))
        experience.append(int(rng.choice(years, p=workforce.profile)))
    school, grade, line = (np.array(c) for c in zip(*rows, strict=True))
    trust_of = np.clip(trust + TRUST_SD * trust_rng.standard_normal(len(rows)), 0, 1)
    staff = TeacherState(school, grade, line, ability, capacity, experience, trust_of)
    # exactly rounded sums (math.fsum): a BLAS dot product adds in the CPU's order
    staff.workforce_return = math.fsum(workforce.profile * experience_return(years, params))
    staff.workforce_share = math.fsum(workforce.profile * experience_share(years, params))
    # a novice (share 0) has novice_capacity on average, the workforce capacity_mean
    staff.capacity_gap = max(0.0, params.capacity_mean - workforce.novice_capacity) \
        / max(staff.workforce_share, 1e-9)
    staff.effect = effect_now(staff, np.zeros(staff.n, bool), params)
    return staff


# --- growing with the years: experience, the program's practice, trust ----------------------
def experience_return(years: np.ndarray, params) -> np.ndarray:
    """Effectiveness gained from ``years`` of teaching (student SD of annual growth):
    ``experience_gain_early x (1 - exp(-years / experience_early_years))`` (steep in the
    first years) ``+ experience_gain_late x min(years, experience_late_years) /
    experience_late_years`` (slower, over a career's first decade); 0 at 0 years."""
    y = np.asarray(years, float)
    p = params
    # portable_math's exp: numpy's expm1 picks its loop by the CPU (docs/model.md §7.12)
    early = p.experience_gain_early * (1.0 - portable_math.exp(-y / p.experience_early_years))
    return early + p.experience_gain_late * np.minimum(y, p.experience_late_years) \
        / p.experience_late_years


def experience_share(years: np.ndarray, params) -> np.ndarray:
    """Share of a career's full return to experience reached after ``years`` (0 at 0
    years, 1 at ``EXPERIENCE_MAX``): the shape capacity grows along."""
    return experience_return(years, params) / experience_return(EXPERIENCE_MAX, params)


def capacity_now(staff: TeacherState, params) -> np.ndarray:
    """This year's capacity (paces, at least 1): the experienced capacity (PD in) less what
    experience has not yet brought, ``capacity + capacity_gap x (share(experience) -
    workforce_share)``. The literature measures the returns to experience in student
    achievement, not in paces; capacity is assumed to grow along the same curve (a
    novice's lower capacity, ``sensemaking.novice_capacity``, closes as the novice's
    effect does), so the workforce's capacity does not erode with each year's novices."""
    share = experience_share(staff.experience, params)
    return np.maximum(1.0, staff.capacity + staff.capacity_gap
                      * (share - staff.workforce_share))


def effect_now(staff: TeacherState, practising: np.ndarray, params) -> np.ndarray:
    """This year's true effect of every teacher (student SD of annual growth).

    ``ability + (1 - s) x r(experience) + s x r(years in the practice) - workforce_return``
    with ``r = experience_return`` and ``s = specific_experience_share``: part of what
    experience brings is specific to the practice taught (Ost 2014). A teacher
    ``practising`` the arm's program (a new practice) has taught it ``program_years``;
    everyone else teaches the practice of their whole career (``experience``).
    """
    s = params.specific_experience_share
    in_practice = np.where(practising, staff.program_years, staff.experience)
    return (staff.ability + (1.0 - s) * experience_return(staff.experience, params)
            + s * experience_return(in_practice, params) - staff.workforce_return)


def grow_trust(trust: np.ndarray, together: np.ndarray, growth: float) -> np.ndarray:
    """Trust after a year working together (0-1): a team member's trust closes ``growth``
    of its gap to full trust (``trust + growth x (1 - trust)``); others' is unchanged."""
    return np.where(together, trust + growth * (1.0 - trust), trust)


@njit(cache=True, nogil=True, inline="always")
def handoff_factor(supervisor, own, in_room, trust, loss):
    """Share of the day's learning kept when a student is handed between team members.

    In a room, a day supervised by a team member other than the student's own
    teacher (the one who knows them) keeps ``1 - loss x (1 - pair trust)``, the
    pair's trust being the mean of the two teachers' trust: a trusting pair
    passes on what they know about the student, a pair without trust does not.
    Outside rooms, or with their own teacher, nothing is lost (factor 1).

    Args:
        supervisor, own: teacher index of today's supervisor and of the student's own teacher.
        in_room: whether the student is in a team room.
        trust: every teacher's trust (0-1).
        loss: ``teams.handoff_loss`` (share of the day's learning).
    """
    if in_room and supervisor != own:
        return 1.0 - loss * (1.0 - 0.5 * (trust[supervisor] + trust[own]))
    return 1.0


def team_totals(first: np.ndarray, size: np.ndarray, values: np.ndarray,
                mean: bool = False) -> np.ndarray:
    """Sum (or mean) of ``values`` over each room's team (members ``first .. first+size-1``)."""
    total = np.zeros(first.size)
    for k in range(int(size.max(initial=0))):
        member = k < size
        total[member] += values[first[member] + k]
    return total / np.maximum(size, 1) if mean else total


@njit(cache=True, nogil=True, inline="always")
def pooled_ratio(own_ratio, team_capacity, room_paces, team_trust, pooling):
    """Capacity over paces for a student in a room, with the team's capacity pooled by trust.

    ``(1 - w) x min(1, own) + w x min(1, team capacity / room's distinct paces)`` with
    ``w = pooling x team trust``: a trusting team runs the room's paces together with
    the sum of its members' capacities; without trust each member runs the paces of the
    students they supervise with their own capacity (``own_ratio``).
    """
    w = pooling * team_trust
    team = min(1.0, team_capacity / max(room_paces, 1))
    return (1.0 - w) * min(1.0, own_ratio) + w * team


@njit(cache=True, nogil=True, inline="always")
def room_cost(led, in_room, team_size, transition_loss, unled_loss):
    """Share of the day's learning a room keeps for its costs beside capacity and handoffs.

    In a room (students rotate modalities) ``1 - transition_loss`` (time lost moving
    between modalities); in a room of a team (more than one teacher) a software or peer
    day (not ``led``) also keeps ``1 - unled_loss`` (the adults are leading groups, so
    the rest of the room works with little supervision). Outside rooms 1.

    Args:
        led: whether today's modality is teacher-led.
        in_room: whether the student is in a room; team_size: the room's team (teachers).
        transition_loss, unled_loss: ``teams.transition_loss``, ``teams.unled_supervision_loss``.
    """
    if not in_room:
        return 1.0
    keep = 1.0 - transition_loss
    if team_size > 1 and not led:
        keep *= 1.0 - unled_loss
    return keep


@njit(cache=True, nogil=True, inline="always")
def opens_group(same_unit, members, group_max):
    """Whether the next teacher-led student of a room, in skill order, starts a new
    group: their unit differs from the group's, or the group has ``group_max`` members."""
    return (not same_unit) or members >= group_max


@njit(cache=True, nogil=True, inline="always")
def group_leader(group, groups, first, size):
    """The team member leading a room's ``group``-th teacher-led group (0-based, in skill
    order) of ``groups``: ``first + group x size // groups``, so each member leads a run of
    neighbouring groups, floor or ceil of ``groups / size`` of them."""
    return first + (group * size) // max(groups, 1)


@njit(cache=True, nogil=True)
def schedule_groups(supervisor, skills, led, room, room_first, room_size, skills_per_unit,
                    group_max):
    """The program's daily scheduler: who leads each teacher-led student of a room.

    A room's teacher-led students (``led``), in skill order (ties by position), form
    groups of one unit (``skills // skills_per_unit``) and at most ``group_max`` students
    (``opens_group``); the groups are shared among the team in runs of neighbouring
    groups (``group_leader``). Everyone else keeps ``supervisor`` (the rotation's team
    member in rooms, the teacher of record outside). Per present slot; a new int64 array.
    """
    out = supervisor.copy()
    idx = np.flatnonzero(led & (room >= 0))
    m = idx.size
    if m == 0:
        return out
    top = np.int64(skills.max()) + 1
    order = idx[np.argsort(room[idx] * top + skills[idx], kind="mergesort")]
    group = np.empty(m, np.int64)
    n_groups = np.zeros(room_first.size, np.int64)
    g, members = np.int64(0), np.int64(0)
    for j in range(m):
        i = order[j]
        r, unit = room[i], skills[i] // skills_per_unit
        if j == 0 or room[order[j - 1]] != r:
            g, members = 0, 0
        elif opens_group(unit == skills[order[j - 1]] // skills_per_unit, members, group_max):
            g, members = g + 1, 0
        members += 1
        group[j] = g
        n_groups[r] = g + 1
    for j in range(m):
        i = order[j]
        r = room[i]
        out[i] = group_leader(group[j], n_groups[r], room_first[r], room_size[r])
    return out


# --- the day's supervision, drift and capacity, compiled -------------------------------------
@njit(cache=True, nogil=True)
def supervise(slots, u, teacher, room, room_first, room_size):
    """The teacher supervising each present slot (int64): the student's own teacher, or
    in a room the team member ``room_first + min(int(u x size), size - 1)`` (``u``: per
    student; the product in float64, as numpy multiplies float32 by int64)."""
    k = slots.size
    out = np.empty(k, np.int64)
    for i in range(k):
        r = slots[i]
        rm = room[r]
        if rm >= 0:
            size = room_size[rm]
            out[i] = room_first[rm] + min(np.int64(np.float64(u[r]) * np.float64(size)),
                                          size - 1)
        else:
            out[i] = teacher[r]
    return out


@njit(cache=True, nogil=True)
def drift_to_common(skills, slots, teacher, common, drift, u):
    """Teachers' drift: where ``u`` (per student) < the supervising teacher's ``drift``
    (float64, as numpy compares float32 with float64), the slot's skill becomes the
    common pace's. A new array."""
    out = skills.copy()
    for i in range(slots.size):
        if np.float64(u[slots[i]]) < drift[teacher[i]]:
            out[i] = common[i]
    return out


NO_PAIR = -2  # capacity_ratio: no (teacher, room) pair seen yet


@njit(cache=True, nogil=True)
def capacity_ratio(teacher, unit, room, led, capacity, pace_marks, room_marks, room_capacity,
                   room_trust, pooling):
    """Capacity over distinct paces, before the elasticity (float64), as
    ``District._capacity_factor`` uses it: a teacher's paces are the distinct units
    of the students they teach today (``pace_marks``, cleared and refilled): all their
    students outside rooms, in rooms only those they lead teacher-led (``led``; software
    and peer work draws on no teacher's paces, its ratio is 1). In rooms, with
    ``pooling`` > 0, a teacher-led student gets the team's pooled ratio
    (``teachers.pooled_ratio``) against the room's distinct teacher-led units
    (``room_marks``).

    The ratio is a function of the (supervising teacher, room) pair, a few thousand
    a day against 100,000 students, so it is returned once per pair: ``(values,
    key)``, ``values[key[i]]`` being student ``i``'s ratio (``key`` int32; entry 0 is
    the ratio 1 of unled room students). The caller raises only ``values`` to the
    elasticity (the same power of the same float64 values as raising every student's).
    Each teacher's last pair seen is kept (a teacher seen in several rooms gets one
    entry per change, so duplicates are possible and harmless)."""
    k = teacher.size
    pace_marks[:] = False
    paces = np.zeros(pace_marks.shape[0], np.int64)
    any_room = False
    for i in range(k):
        if room[i] >= 0:
            any_room = True
            if not led[i]:
                continue
        t, u = teacher[i], unit[i]
        if not pace_marks[t, u]:
            pace_marks[t, u] = True
            paces[t] += 1
    pooled = pooling > 0 and any_room
    room_paces = np.zeros(room_marks.shape[0], np.int64)
    if pooled:
        room_marks[:] = False
        for i in range(k):
            r = room[i]
            if r >= 0 and led[i] and not room_marks[r, unit[i]]:
                room_marks[r, unit[i]] = True
                room_paces[r] += 1
    last_room = np.full(paces.size, NO_PAIR, np.int64)  # per teacher: the last pair's
    last_key = np.empty(paces.size, np.int32)             # room (-1: none) and its key
    values = np.empty(k + 1, np.float64)
    values[0] = 1.0  # unled room students
    key = np.empty(k, np.int32)
    n = 1
    for i in range(k):
        if room[i] >= 0 and not led[i]:
            key[i] = 0
            continue
        t = teacher[i]
        r = room[i] if pooled and room[i] >= 0 else -1
        if last_room[t] != r:
            ratio = min(1.0, capacity[t] / max(paces[t], 1))
            if r >= 0:
                ratio = pooled_ratio(ratio, room_capacity[r], room_paces[r], room_trust[r],
                                     pooling)
            values[n] = ratio
            last_room[t], last_key[t] = r, n
            n += 1
        key[i] = last_key[t]
    return values[:n].copy(), key  # a copy: the k-long scratch is freed


def _column(name: str, kind: type, doc: str) -> property:
    """A property reading and writing this agent's row of ``TeacherState.<name>``."""
    def get(self):
        return kind(getattr(self.model.staff, name)[self.index])

    def set_(self, value):
        getattr(self.model.staff, name)[self.index] = value

    return property(get, set_, doc=doc)


class Teacher(Agent):
    """One math teacher: a view of row ``index`` of the district's ``TeacherState``."""

    school = _column("school", int, "school index")
    grade = _column("grade", int, "grade taught")
    line = _column("line", int, "classroom line within the grade")
    effect = _column("effect", float, "this year's true effectiveness (student SD of annual "
                                      "growth)")
    capacity = _column("capacity", float, "distinct paces run well at once")
    experience = _column("experience", int, "years of teaching")
    program_years = _column("program_years", int, "years taught in the arm's program")
    room = _column("room", int, "personalized room of the teacher's team (-1 none)")
    load = _column("load", float, "students this teacher is responsible for this year")
    sections = _column("sections", int, "classroom lines (sections) taught this year")
    trust = _column("trust", float, "trust in the team (0-1)")
    stress = _column("stress", float, "stress from evaluation pressure (0-1)")
    drift = _column("drift", float, "share of supervised student-days swapped to grade level")

    def __init__(self, model, index: int):
        super().__init__(model)
        self.index = index

    def students(self) -> np.ndarray:
        """Slots of the students this teacher is teacher of record for this year."""
        return np.flatnonzero(self.model.students.teacher == self.index)
