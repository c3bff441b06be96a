"""Curriculum as data: grades, units, skills and a prerequisite graph.

Skills are numbered in *global pacing order*: grade by grade, unit by unit,
skill by skill. Every prerequisite of a skill has a smaller number, so the
numbering is a topological order of the prerequisite graph. That one fact is
used throughout: "the first skill not yet mastered" is always a skill whose
prerequisites are mastered.

Grades are integers, kindergarten is grade 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NO_SKILL = -1  # padding in the prerequisite and ancestor tables


@dataclass(frozen=True)
class Curriculum:
    """The skills of grades ``lowest_grade`` .. ``highest_grade``.

    Attributes:
        lowest_grade: first grade with skills (0 = kindergarten).
        n_grades: number of grades with skills.
        units_per_grade: units per grade.
        skills_per_unit: skills per unit.
        skill_grade: grade of each skill, shape (n_skills,).
        skill_unit: unit of each skill within its grade, shape (n_skills,).
        prereqs: prerequisite skill ids, padded with ``NO_SKILL``, shape (n_skills, max_prereqs).
        ancestors: all transitive prerequisites in increasing order, padded, (n_skills, max_anc).
    """

    lowest_grade: int
    n_grades: int
    units_per_grade: int
    skills_per_unit: int
    skill_grade: np.ndarray
    skill_unit: np.ndarray
    prereqs: np.ndarray
    ancestors: np.ndarray

    @property
    def skills_per_grade(self) -> int:
        return self.units_per_grade * self.skills_per_unit

    @property
    def n_skills(self) -> int:
        return self.skill_grade.size

    @property
    def highest_grade(self) -> int:
        return self.lowest_grade + self.n_grades - 1

    def first_skill(self, grade: np.ndarray | int) -> np.ndarray | int:
        """Global id of the first skill of ``grade`` (clipped to the curriculum)."""
        g = np.clip(grade, self.lowest_grade, self.highest_grade + 1)
        return (g - self.lowest_grade) * self.skills_per_grade

    def unit_skills(self, grade: int, unit: int) -> np.ndarray:
        """Ids of the skills of one unit of one grade, in pacing order."""
        start = self.first_skill(grade) + unit * self.skills_per_unit
        return np.arange(start, start + self.skills_per_unit)

    def position_years(self) -> np.ndarray:
        """Where each skill sits on the vertical scale, in grade-years.

        A student who has mastered everything before skill ``s`` has an
        achievement of ``position_years()[s]``; grade ``g``'s skills span
        ``[g, g + 1)``.
        """
        within = (np.arange(self.n_skills) % self.skills_per_grade + 0.5) / self.skills_per_grade
        return self.skill_grade + within


def generate_curriculum(
    rng: np.random.Generator,
    lowest_grade: int = 0,
    highest_grade: int = 9,
    units_per_grade: int = 4,
    skills_per_unit: int = 5,
    cross_grade_prereqs: int = 1,
    extra_prereq_prob: float = 0.3,
) -> Curriculum:
    """Generate a curriculum with a random prerequisite graph.

    Each skill depends on the previous skill of its unit (if any), on
    ``cross_grade_prereqs`` skills of the same unit (strand) one grade below,
    and with probability ``extra_prereq_prob`` on one more skill of an
    earlier unit of its own grade or two grades below.
    """
    n_grades = highest_grade - lowest_grade + 1
    spg = units_per_grade * skills_per_unit
    n = n_grades * spg
    skill_grade = np.repeat(np.arange(lowest_grade, highest_grade + 1), spg)
    skill_unit = np.tile(np.repeat(np.arange(units_per_grade), skills_per_unit), n_grades)
    lists: list[list[int]] = []
    for s in range(n):
        lists.append(_draw_prereqs(s, spg, skills_per_unit, cross_grade_prereqs,
                                   extra_prereq_prob, rng))
    prereqs = _pad(lists)
    ancestors = _pad(_ancestor_lists(lists))
    return Curriculum(lowest_grade, n_grades, units_per_grade, skills_per_unit,
                      skill_grade, skill_unit, prereqs, ancestors)


def _draw_prereqs(s, spg, spu, cross, extra_p, rng) -> list[int]:
    """Prerequisites of skill ``s`` (all with smaller ids)."""
    g_idx, pos = divmod(s, spg)
    unit = pos // spu
    pre = set()
    if pos % spu:
        pre.add(s - 1)
    if g_idx >= 1 and cross > 0:
        below_unit = (g_idx - 1) * spg + unit * spu
        picks = rng.choice(spu, size=min(cross, spu), replace=False)
        pre.update(int(below_unit + p) for p in picks)
    if rng.random() < extra_p:
        candidates = list(range(g_idx * spg, g_idx * spg + unit * spu))
        if g_idx >= 2:
            candidates += list(range((g_idx - 2) * spg, (g_idx - 1) * spg))
        if candidates:
            pre.add(int(rng.choice(candidates)))
    return sorted(pre)


def _ancestor_lists(prereq_lists: list[list[int]]) -> list[list[int]]:
    """Transitive closure of the prerequisite lists (sorted, excluding the skill)."""
    anc: list[set[int]] = []
    for pre in prereq_lists:  # ids are topological: ancestors of p are already known
        closure = set(pre)
        for p in pre:
            closure |= anc[p]
        anc.append(closure)
    return [sorted(a) for a in anc]


def _pad(lists: list[list[int]]) -> np.ndarray:
    width = max(1, max(len(x) for x in lists))
    out = np.full((len(lists), width), NO_SKILL, dtype=np.int16)
    for i, x in enumerate(lists):
        out[i, : len(x)] = x
    return out
