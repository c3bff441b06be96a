"""Assessments as measurement instruments: exit slips, the state test, the growth test.

* **Exit slip** — one short check of the day's skill: passed with
  probability ``1 - slip`` if mastered, ``guess`` if not. With benchmarks,
  the algorithm's only view of a student (``sim.engine.records``).
* **Item bank** — ``items_per_skill`` multiple-choice items on every skill of
  the curriculum. How a student answers an item (the *response model*) and
  how the state scores the answers (the *scoring model*) are two things:

  - *Response*: the student's knowledge of the item's skill, ``K`` in [0, 1],
    is ``own_skill_weight`` x (skill mastered) + the rest x the share of the
    skill's transitive prerequisites mastered, each weighted by
    ``ancestor_decay`` per grade below the skill (partial knowledge: an item
    draws on the skills beneath it), plus ``familiarity_weight`` x
    familiarity if the skill itself is not mastered. Then
    ``P(right) = c + (1 - c) / (1 + exp(-(knowledge_logits x (K - 1/2) - d)))``
    with ``d`` the item's own difficulty (logits, ``item_difficulty_sd``) and
    lower asymptote ``c = item_guess``, which shrinks by
    ``unseen_anxiety_penalty`` x anxiety on never-seen skills ("I've never
    seen this, Miss!").
  - *Scoring*: a unidimensional 3PL on the vertical scale ``theta``
    (grade-years), ``P(right | theta) = c + (1 - c) / (1 + exp(-a (theta - b)))``.
    The state calibrates ``a`` and ``b`` of each item once, on a linking
    sample of students whose mastery is a smooth profile around a known
    level (``calibrate_items``), so ``theta`` is in the same grade-years as
    the population's levels and the same for every grade (a vertical scale).
  - *Score*: the EAP estimate of ``theta`` (posterior mean on a fixed
    quadrature grid; normal prior around the grade's expected level: on the
    state test with the statewide spread of that grade, on the growth test
    wide, ``growth_prior_sd_years``) and its posterior SD (the SEM), reported
    as ``scale_intercept + scale_points_per_year x theta``.
* **State test** (spring) — a fixed form: the first ``state_items_per_skill``
  items of each skill of the *enrolled grade*. The cut is fixed on the
  statewide reference's scale scores (``sim.district.reference``).
* **Growth test** (fall, spring) — multistage adaptive on the whole bank:
  ``growth_stages`` stages of ``growth_items_per_stage`` items, each stage's
  items spread over +-``growth_window_years`` around the student's current
  estimate (the first stage: around the grade's expected level); every
  stage draws from its own share of the bank, so no item is seen twice.

Everything is vectorised over students, in chunks of rows so memory stays
bounded whatever the population.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numba import njit

from sim.config.parameters import AssessmentParams, CurriculumParams, PopulationParams
from sim.engine import portable_math, scoring
from sim.engine.curriculum import generate_curriculum
from sim.engine.population import chunks, level_sd
from sim.engine.random_streams import uniform32

GRID_STEP_YEARS = 0.2  # quadrature step of the EAP grid (grade-years)
GRID_MARGIN_YEARS = 3.0  # the grid (and the reportable range) extends this far past the bank
LINK_STEP_YEARS = 0.05  # spacing of the linking sample's levels (grade-years)
LINK_STUDENTS_PER_LEVEL = 24  # linking-sample students per level
LINK_KERNEL_YEARS = 2.0  # SD of the linking weights around an item's skill (grade-years)
SCORE_CHUNK_ROWS = 4096  # rows per chunk while scoring: bounds the (rows x grid) arrays
WEIGHT_BITS = 22  # ancestor weights are multiples of 2^-22 (exact sums in float32)
TAKER_ROWS = 512  # rows whose knowledge is held at once: (rows x skills) float32 stays in
                  # the core's cache while their answers are drawn from it


@njit(cache=True, nogil=True, inline="always")
def exit_slip(u, mastered, pass_mastered, pass_guess):
    """One exit slip, passed if the uniform ``u`` < ``pass_mastered`` (1 - slip) when the
    skill is truly mastered, else < ``pass_guess`` (the guess): compared in float64."""
    return np.float64(u) < (pass_mastered if mastered else pass_guess)


def familiarity_level(familiarity: np.ndarray, saturation_days: float) -> np.ndarray:
    """Familiarity in [0, 1] from days of exposure."""
    return np.minimum(familiarity.astype(np.float32) / saturation_days, 1.0)


def true_level(state, slots: np.ndarray, cur, credit: float, saturation_days: float):
    """Share-of-curriculum level (grade-years) of ``slots``: lowest grade + (mastered
    skills + ``credit`` x familiarity of unmastered ones) / skills per grade.

    Not a test score (no items, no error): a summary of true knowledge.
    """
    out = np.empty(slots.size, np.float64)
    for part in chunks(slots.size):
        r = slots[part]
        m = state.mastery[r] > 0
        fam = np.where(m, 0.0, familiarity_level(state.familiarity[r], saturation_days))
        out[part] = m.sum(axis=1) + credit * fam.sum(axis=1)
    return cur.lowest_grade + out / cur.skills_per_grade


def scale_to_level(score: np.ndarray, a) -> np.ndarray:
    """Scale score back to grade-years."""
    return (score - a.scale_intercept) / a.scale_points_per_year


def level_to_scale(level: np.ndarray, a) -> np.ndarray:
    """Grade-years to scale score."""
    return a.scale_intercept + a.scale_points_per_year * level


# --- the response model ------------------------------------------------------------------
def ancestor_weights(cur, decay: float) -> np.ndarray:
    """(S, S) weights of each skill's transitive prerequisites, rows summing to 1.

    A prerequisite ``k`` grades below the skill weighs ``decay ** k``; a skill
    without prerequisites has all its weight on itself.

    The weights are whole multiples of ``2 ** -WEIGHT_BITS`` and each row's sum is
    exactly 1 (each normalised weight rounded to the nearest multiple, at least
    one, the rounding's residue put on the row's largest weight: a change of at
    most one multiple, 2.4e-7, for any weight but the largest, and at most the
    row's count of ancestors in multiples for the largest). Then every partial sum of a
    row of ``mastered @ weights.T`` is a multiple of ``2 ** -WEIGHT_BITS`` no larger
    than 1, exact in float32, so the product is the same whatever order the BLAS
    adds in (OpenBLAS's order depends on the CPU) and on every machine.
    """
    n = cur.n_skills
    w = np.zeros((n, n))
    for s in range(n):
        anc = cur.ancestors[s][cur.ancestors[s] >= 0]
        if anc.size:
            w[s, anc] = portable_math.power(
                float(decay), (cur.skill_grade[s] - cur.skill_grade[anc]).astype(float))
        else:
            w[s, s] = 1.0
    return _exact_sum_weights(w / w.sum(axis=1, keepdims=True))


def _exact_sum_weights(w: np.ndarray) -> np.ndarray:
    """``w`` (rows summing to 1) as float32 multiples of ``2 ** -WEIGHT_BITS`` whose rows
    sum to exactly 1: nonzero weights stay nonzero."""
    unit = 2 ** WEIGHT_BITS
    q = np.rint(w * unit).astype(np.int64)
    q[(w > 0) & (q == 0)] = 1
    rows = np.arange(w.shape[0])
    q[rows, np.argmax(w, axis=1)] += unit - q.sum(axis=1)
    return (q / unit).astype(np.float32)


def knowledge(mastered: np.ndarray, fam: np.ndarray, weights: np.ndarray, a) -> np.ndarray:
    """Knowledge ``K`` in [0, 1] of every skill for each row (rows x S, float32).

    Args:
        mastered: bool (rows x S), true mastery.
        fam: familiarity level in [0, 1] (rows x S).
        weights: ``ancestor_weights`` (S x S).
    """
    return _knowledge_of(mastered, mastered, fam, weights, a)


def _knowledge_of(mastered_all, mastered, fam, weights, a) -> np.ndarray:
    """``knowledge`` of some skills: ``weights`` rows and ``mastered``/``fam`` columns
    for those skills, ``mastered_all`` over every skill."""
    # own x m + (1 - own) x below + familiarity_weight x fam x (1 - m), capped at 1:
    # the same float32 operations in the same order, in place (three (rows x S) arrays
    # at a time instead of seven)
    own = a.own_skill_weight
    m = mastered.astype(np.float32)
    k = mastered_all.astype(np.float32) @ weights.T  # below
    k *= 1.0 - own
    t = m * own
    k += t
    np.subtract(1.0, m, out=m)
    np.multiply(fam, a.familiarity_weight, out=t)
    t *= m
    k += t
    return np.minimum(k, 1.0, out=k)


def p_right(k: np.ndarray, difficulty: np.ndarray, unseen: np.ndarray, anxiety: np.ndarray,
            a) -> np.ndarray:
    """P(right) under the response model.

    Args:
        k: knowledge of each item's skill (rows x items).
        difficulty: each item's own difficulty ``d`` (logits), broadcastable to ``k``.
        unseen: the item's skill was never seen (rows x items).
        anxiety: test anxiety (rows,), 0-1.
    """
    c = a.item_guess * np.where(unseen, 1.0 - a.unseen_anxiety_penalty * anxiety[:, None], 1.0)
    z = a.knowledge_logits * (k - a.knowledge_threshold) - difficulty
    return c + (1.0 - c) / (1.0 + portable_math.exp(-z))


# --- the item bank and its calibration -------------------------------------------------
@dataclass(frozen=True)
class ItemBank:
    """The state's items: what they measure and how they are scored.

    Attributes:
        skill: skill of each item (J,).
        difficulty: the item's own difficulty in the response model (logits, J).
        a: scoring discrimination (per grade-year, J).
        b: scoring difficulty (grade-years, J).
        guess: lower asymptote of the scoring model.
        grid: EAP quadrature nodes (grade-years, Q); its ends are the reportable range.
        log_q, log_odds: log P(wrong) and log P(right)/P(wrong) at the grid nodes
            (J x Q, float32).
        weights: ``ancestor_weights`` (S x S).
        stage_items: per growth-test stage, its share of the bank sorted by ``b``.
        prior_sd: SD of the EAP prior by enrolled grade (grade-years): the statewide
            spread of levels (``sim.engine.population.level_sd``).
    """

    skill: np.ndarray
    difficulty: np.ndarray
    a: np.ndarray
    b: np.ndarray
    guess: float
    grid: np.ndarray
    log_q: np.ndarray
    log_odds: np.ndarray
    weights: np.ndarray
    stage_items: tuple[np.ndarray, ...]
    prior_sd: np.ndarray

    def prior(self, grade: np.ndarray, elapsed: float):
        """EAP prior of students of ``grade`` when ``elapsed`` of the year has gone by:
        mean ``grade + elapsed``, SD ``prior_sd[grade]`` (grade-years)."""
        g = np.asarray(grade, np.int64)
        return g + float(elapsed), self.prior_sd[np.clip(g, 0, self.prior_sd.size - 1)]

    def form(self, cur, grade: int, n_items: int) -> np.ndarray:
        """The state test's fixed form of a grade: ``n_items`` of the bank's items on
        the grade's skills, evenly spaced in difficulty ``b`` (at most all of them)."""
        on_grade = np.flatnonzero(cur.skill_grade[self.skill] == grade)
        ordered = on_grade[np.argsort(self.b[on_grade], kind="stable")]
        n = min(n_items, ordered.size)
        return ordered[np.round(np.linspace(0, ordered.size - 1, n)).astype(np.int64)]


def item_bank(scenario) -> ItemBank:
    """The item bank of a scenario's curriculum and assessment parameters (cached per
    process: it depends on nothing else; ``sim.district.item_bank`` caches it on disk too)."""
    return bank_from_key(bank_key(scenario))


def bank_key(scenario) -> str:
    """Everything the item bank depends on, as canonical JSON (its cache key)."""
    return json.dumps({"curriculum": scenario.curriculum.model_dump(mode="json"),
                       "assessment": scenario.assessment.model_dump(mode="json"),
                       "population": scenario.population.model_dump(mode="json")},
                      sort_keys=True)


@lru_cache(maxsize=8)
def bank_from_key(key: str) -> ItemBank:
    """The item bank of a ``bank_key`` (built, and cached in this process)."""
    spec = json.loads(key)
    c, a = CurriculumParams(**spec["curriculum"]), AssessmentParams(**spec["assessment"])
    cur = generate_curriculum(np.random.default_rng(c.seed), c.lowest_grade, c.highest_grade,
                              c.units_per_grade, c.skills_per_unit, c.cross_grade_prereqs,
                              c.extra_prereq_prob)
    return build_item_bank(cur, a, PopulationParams(**spec["population"]))


def build_item_bank(cur, a, pop) -> ItemBank:
    """Draw the items, calibrate them on a linking sample, tabulate the scoring model.

    ``pop`` (PopulationParams) gives the linking sample's mastery profiles and the
    EAP priors: the statewide spread of levels by grade.
    """
    rng = np.random.default_rng(a.bank_seed)
    k = a.items_per_skill
    skill = np.repeat(np.arange(cur.n_skills), k)
    difficulty = rng.normal(0.0, a.item_difficulty_sd, skill.size).astype(np.float32)
    weights = ancestor_weights(cur, a.ancestor_decay)
    disc, b = calibrate_items(rng, cur, skill, difficulty, weights, a, pop.mastery_spread_years)
    grid = np.arange(cur.lowest_grade - GRID_MARGIN_YEARS,
                     cur.highest_grade + 1 + GRID_MARGIN_YEARS + 1e-9, GRID_STEP_YEARS)
    p = np.clip(scoring_p(grid[None, :], disc[:, None], b[:, None], a.item_guess),
                1e-12, 1.0 - 1e-12)
    order = np.argsort(b, kind="stable")
    stages = tuple(np.sort(order[s::a.growth_stages]) for s in range(a.growth_stages))
    stages = tuple(st[np.argsort(b[st], kind="stable")] for st in stages)
    prior_sd = level_sd(np.arange(cur.highest_grade + 2), pop).astype(float)
    log_q = portable_math.log1p(-p)
    return ItemBank(skill, difficulty, disc, b, a.item_guess, grid.astype(np.float32),
                    log_q.astype(np.float32), (portable_math.log(p) - log_q).astype(np.float32),
                    weights, stages, prior_sd)


def scoring_p(theta, disc, b, guess: float) -> np.ndarray:
    """P(right | theta) under the 3PL scoring model (theta, b in grade-years)."""
    return guess + (1.0 - guess) / (1.0 + portable_math.exp(-disc * (theta - b)))


def linking_sample(rng, cur, levels: np.ndarray, spread: float):
    """Mastery and familiarity of students with smooth profiles around ``levels``.

    Mastery of each skill: Bernoulli of a logistic in (level - skill position) with
    scale ``spread`` (as the population generator draws it); familiar: mastered or
    of a grade below the level's grade (taught).
    """
    pos = cur.position_years()
    p = 1.0 / (1.0 + portable_math.exp(-(levels[:, None] - pos[None, :]) / spread))
    mastered = rng.random(p.shape) < p
    taught = cur.skill_grade[None, :] < np.floor(levels)[:, None]
    return mastered, (mastered | taught).astype(np.float32)


def calibrate_items(rng, cur, skill, difficulty, weights, a, spread: float):
    """Scoring parameters (a, b) of every item from a linking sample.

    The linking sample's students have known levels on a grid spanning the
    curriculum; each item's mean P(right) at each level (response model, no
    anxiety) is fitted by the 3PL curve (lower asymptote ``item_guess``) in
    weighted least squares, the levels weighted by a normal kernel around the
    item's skill position (SD 2 grade-years: the students who take it).
    Gauss-Newton with Levenberg damping, all items at once.
    """
    levels = np.arange(cur.lowest_grade - 1.5, cur.highest_grade + 2.5, LINK_STEP_YEARS)
    c = a.item_guess
    mean_p = np.empty((levels.size, skill.size))
    no_anxiety = np.zeros(LINK_STUDENTS_PER_LEVEL, np.float32)
    for i, level in enumerate(levels):
        m, fam = linking_sample(rng, cur, np.full(LINK_STUDENTS_PER_LEVEL, level), spread)
        k = knowledge(m, fam, weights, a)[:, skill]
        mean_p[i] = p_right(k, difficulty[None, :], np.zeros_like(k, bool), no_anxiety, a).mean(0)
    pos = cur.position_years()[skill]
    w = portable_math.exp(-0.5 * ((levels[:, None] - pos[None, :]) / LINK_KERNEL_YEARS) ** 2)
    x = levels[:, None]
    disc, b, damp = np.ones(skill.size), pos.astype(float), np.full(skill.size, 1e-2)
    sse = _sse(mean_p, x, disc, b, c, w)
    for _ in range(60):
        sig = 1.0 / (1.0 + portable_math.exp(-disc * (x - b)))
        r = mean_p - (c + (1.0 - c) * sig)
        g = (1.0 - c) * sig * (1.0 - sig)
        ja, jb = g * (x - b), -g * disc
        haa, hbb, hab = (w * ja * ja).sum(0), (w * jb * jb).sum(0), (w * ja * jb).sum(0)
        ga, gb = (w * ja * r).sum(0), (w * jb * r).sum(0)
        haa, hbb = haa * (1 + damp), hbb * (1 + damp)
        det = haa * hbb - hab * hab
        da, db = (hbb * ga - hab * gb) / det, (haa * gb - hab * ga) / det
        new_a, new_b = np.clip(disc + da, 0.05, 20.0), b + db
        new_sse = _sse(mean_p, x, new_a, new_b, c, w)
        better = new_sse < sse
        disc, b = np.where(better, new_a, disc), np.where(better, new_b, b)
        sse = np.where(better, new_sse, sse)
        damp = np.where(better, damp / 3, damp * 4)
    return disc, b


def _sse(mean_p, x, disc, b, c, w):
    return (w * (mean_p - scoring_p(x, disc, b, c)) ** 2).sum(0)


# --- scoring ----------------------------------------------------------------------------
def eap(loglik: np.ndarray, grid: np.ndarray, prior_mean: np.ndarray, prior_sd: np.ndarray):
    """EAP estimate and posterior SD (grade-years) from log-likelihoods on the grid.

    Args:
        loglik: (rows x Q) log-likelihood of each row's responses at each node.
        prior_mean, prior_sd: (rows,) each row's normal prior (grade-years).
    """
    # post = exp(loglik - z^2 / 2 - max), z = (grid - mu) / sd; mean and variance under it.
    # The elementwise float32 steps are compiled and done in one (rows x Q) array; the
    # exponential, sums and product stay numpy's (the same operations in the same order as
    # the plain expression).
    post = scoring.eap_log_posterior(np.ascontiguousarray(loglik, np.float32), grid,
                                     np.asarray(prior_mean, np.float32),
                                     np.asarray(prior_sd, np.float32))
    post -= post.max(axis=1, keepdims=True)
    np.exp(post, out=post)
    total = post.sum(axis=1)
    mean = post @ grid / total
    var = scoring.times_squared_deviation(post, grid, mean).sum(axis=1) / total
    return mean.astype(np.float64), np.sqrt(var).astype(np.float64)


def form_eap(right: np.ndarray, form: np.ndarray, bank: ItemBank, prior_mean: np.ndarray,
             prior_sd: np.ndarray):
    """EAP estimates and posterior SDs (grade-years) of answers ``right`` (rows x items)
    to the fixed ``form`` (item ids)."""
    ll = bank.log_q[form].sum(axis=0) + right.astype(np.float32) @ bank.log_odds[form]
    return eap(ll, bank.grid, prior_mean, prior_sd)


def reliability(scores: np.ndarray, sem: np.ndarray) -> float:
    """Marginal reliability: var(scores) / (var(scores) + mean(SEM^2)) (EAP scores)."""
    s = np.asarray(scores)[~np.isnan(scores)]
    e = np.asarray(sem)[~np.isnan(sem)]
    v = s.var()
    return float(v / (v + np.mean(e * e)))


class _Takers:
    """What the response model needs of some rows: knowledge of the skills the items
    may be on (all, or ``skills``), familiarity days, anxiety."""

    def __init__(self, state, rows, bank, a, sat, skills=None):
        cols = slice(None) if skills is None else skills
        self.fam_days = state.familiarity[rows][:, cols]
        mastered = state.mastery[rows] > 0
        w = bank.weights if skills is None else bank.weights[skills]
        m = mastered if skills is None else mastered[:, skills]
        # _knowledge_of(mastered, m, familiarity_level(fam_days, sat), w, a), with the
        # elementwise part compiled and written over the matrix product (same float32
        # operations; no (rows x skills) temporaries)
        f32 = np.float32
        self.k = scoring.knowledge_in_place(
            mastered.astype(f32) @ w.T, m, self.fam_days, f32(a.own_skill_weight),
            f32(1.0 - a.own_skill_weight), f32(a.familiarity_weight), f32(sat))
        self.anxiety = state.anxiety[rows]

    @property
    def bundle(self) -> scoring.Takers:
        """The compiled scoring's view of these takers."""
        return scoring.Takers(self.k, self.fam_days, self.anxiety)

    def answer(self, cols, difficulty, a, u):
        """Right (bool, rows x items) on items whose skills are the columns ``cols``
        (rows x items) of this object's skills, given uniforms ``u``."""
        cols = np.ascontiguousarray(cols, np.int64)
        take = scoring.take_along_rows  # np.take_along_axis(x, cols, axis=1), compiled
        p = p_right(take(self.k, cols), difficulty, take(self.fam_days, cols) == 0,
                    self.anxiety, a)
        return u < p


def state_test(rng: np.random.Generator, state, cur, bank: ItemBank, a, saturation_days: float,
               tested: np.ndarray, elapsed: float):
    """Scale scores and SEMs (scale points) of every slot; NaN where ``tested`` is False.

    The fixed form of each enrolled grade (``ItemBank.form``), scored with the
    grade's prior (``ItemBank.prior``). ``elapsed``: share of the school year
    gone by. Draws for every slot so the stream stays aligned whoever sits it.
    Answered and scored row by row, compiled (``scoring.form_scores``).
    """
    tables = {}  # per form: its items' difficulties, log-odds rows and summed log P(wrong)
    rules = scoring.response_rules(a)

    def score(takers, cols, form, u, mu, sd):
        key = form.tobytes()
        if key not in tables:
            tables[key] = (bank.difficulty[form], np.ascontiguousarray(bank.log_odds[form]),
                           _form_log_q(bank, form))
        difficulty, log_odds, form_q = tables[key]
        return scoring.form_scores(
            takers.bundle, u, (np.asarray(mu, np.float64), np.asarray(sd, np.float64)),
            scoring.AnswerItems(cols, difficulty, log_odds), form_q, bank.grid, rules)

    return state_chunks(rng, state, cur, bank, a, saturation_days, tested, elapsed, score)


def _form_log_q(bank: ItemBank, form: np.ndarray) -> np.ndarray:
    """The form's summed log P(wrong) at each node (float32, item by item)."""
    out = np.zeros(bank.grid.size, np.float32)
    for item in form:
        out += bank.log_q[item]
    return out


def state_chunks(rng, state, cur, bank, a, saturation_days, tested, elapsed, score):
    """``state_test``'s draws, forms and takers, chunk by chunk and grade by grade;
    ``score(takers, cols, form, u, prior mean, prior SD)`` gives the estimates and SEMs
    (grade-years) of a grade's rows of a chunk (``cols``: each form item's column among
    the takers' skills)."""
    theta, sem = np.full(state.n, np.nan), np.full(state.n, np.nan)
    forms = {}  # per grade: the form, its skills and each item's column among them
    for part in chunks(state.n, SCORE_CHUNK_ROWS):
        u = uniform32(rng, (part.stop - part.start, a.state_form_items))
        rows = np.arange(part.start, part.stop)
        for g in np.unique(state.grade[rows[tested[part]]]):
            sel = tested[part] & (state.grade[part] == g)
            r = rows[sel]
            if g not in forms:
                form = bank.form(cur, int(g), a.state_form_items)
                skills, cols = np.unique(bank.skill[form], return_inverse=True)
                forms[g] = form, skills, cols.astype(np.int64)
            form, skills, cols = forms[g]
            takers = _Takers(state, r, bank, a, saturation_days, skills)
            theta[r], sem[r] = score(takers, cols, form, u[sel][:, :form.size],
                                     *bank.prior(state.grade[r], elapsed))
    return level_to_scale(theta, a), sem * a.scale_points_per_year


def _stage_table(stage: np.ndarray, b: np.ndarray, k: int, window: float):
    """One stage's blocks of ``k`` items: (the stage's ``b`` sorted, span, last start,
    (n_starts x k) item ids).

    A block is every ``stride``-th item (by difficulty) of the stage's share of
    the bank, spread over +-``window`` years around a target and kept inside the
    bank: ``span`` = ``stride`` x (k - 1) positions; starts run 0 .. ``last``.
    """
    bs = b[stage]
    density = stage.size / max(bs[-1] - bs[0], 1e-9)  # items per grade-year
    stride = max(1, int(round(2 * window * density / max(k - 1, 1))))
    span = stride * (k - 1)
    last = max(stage.size - 1 - span, 0)
    pos = np.minimum(np.arange(last + 1)[:, None] + stride * np.arange(k)[None, :],
                     stage.size - 1)
    return bs, span, last, stage[pos]


def _stage_blocks(stage: np.ndarray, b: np.ndarray, target: np.ndarray, k: int,
                  window: float):
    """Where each row's ``k`` items of one stage start (the block centred on the row's
    ``target``), and the item ids per start (``_stage_table``)."""
    bs, span, last, blocks = _stage_table(stage, b, k, window)
    return np.clip(np.searchsorted(bs, target) - span // 2, 0, last), blocks


LOOKUP_STEP_YEARS = 0.01  # spacing of the targets at which the block starts are tabulated


def adaptive_tables(bank: ItemBank, a) -> scoring.AdaptiveTables:
    """Every growth-test stage's blocks, flattened for ``scoring.adaptive_scores``:
    sorted ``b`` of all stages and their offsets; spans; last starts; blocks (item
    ids, all stages' starts x k); each block's summed log P(wrong) (starts x Q,
    float32, item by item); each stage's first row in ``blocks``; and
    ``np.searchsorted`` of each stage's ``b`` at targets ``LOOKUP_STEP_YEARS`` apart
    (a table, its offsets, each stage's first target, the step)."""
    k, window = a.growth_items_per_stage, a.growth_window_years
    if len(bank.stage_items) != a.growth_stages:  # the kernel reads stages x k draws a row
        raise ValueError(f"the item bank has {len(bank.stage_items)} growth-test stages, "
                         f"the assessment {a.growth_stages}")
    parts = [_stage_table(stage, bank.b, k, window) for stage in bank.stage_items]
    bs = [p[0] for p in parts]
    blocks = np.concatenate([p[3] for p in parts]).astype(np.int64)
    block_q = np.zeros((blocks.shape[0], bank.grid.size), np.float32)
    for j in range(k):  # item by item, from the first
        block_q += bank.log_q[blocks[:, j]]
    n_starts = [p[3].shape[0] for p in parts]
    x0 = np.array([b[0] - LOOKUP_STEP_YEARS for b in bs])
    lookup = [np.searchsorted(b, x + LOOKUP_STEP_YEARS * np.arange(
        int(np.ceil((b[-1] - x) / LOOKUP_STEP_YEARS)) + 2)) for b, x in zip(bs, x0, strict=True)]
    return scoring.AdaptiveTables(np.concatenate(bs).astype(np.float64), _offsets(bs),
            np.array([p[1] for p in parts], np.int64), np.array([p[2] for p in parts], np.int64),
            blocks, block_q, np.concatenate([[0], np.cumsum(n_starts)[:-1]]).astype(np.int64),
            np.concatenate(lookup).astype(np.int64), _offsets(lookup), x0,
            float(LOOKUP_STEP_YEARS))


def _offsets(arrays) -> np.ndarray:
    """Where each of ``arrays`` starts in their concatenation, and the total (int64)."""
    return np.concatenate([[0], np.cumsum([x.size for x in arrays])]).astype(np.int64)


def _add_block_loglik(ll: np.ndarray, right: np.ndarray, start: np.ndarray,
                      blocks: np.ndarray, bank) -> None:
    """``ll +=`` the log-likelihood (rows x Q) of each row's answers to its block of
    items, rows sharing a block scored together (a small matrix product per block).
    The plain numpy form of ``scoring.add_answer_loglik``, which the growth test
    uses and which is tested against this."""
    order = np.argsort(start, kind="stable")
    starts, first = np.unique(start[order], return_index=True)
    bounds = np.append(first, order.size)
    y = right[order]
    for i, s0 in enumerate(starts):
        lo, hi = bounds[i], bounds[i + 1]
        items = blocks[s0]
        ll[order[lo:hi]] += y[lo:hi] @ bank.log_odds[items] + bank.log_q[items].sum(axis=0)


def adaptive_eap(answer, prior_mean: np.ndarray, prior_sd: np.ndarray, bank: ItemBank, a):
    """Run the multistage adaptive test for some rows and score it (grade-years).

    Args:
        answer: ``answer(items, stage)`` -> bool (rows x k), the rows' answers to
            ``items`` (rows x k ids) at that stage.
        prior_mean, prior_sd: (rows,) the EAP prior; its mean is the first target.

    Returns:
        EAP estimates and posterior SDs (grade-years).
    """
    k = a.growth_items_per_stage
    ll = np.zeros((prior_mean.size, bank.grid.size), np.float32)
    target, sd = prior_mean, prior_sd
    for s in range(a.growth_stages):
        start, blocks = _stage_blocks(bank.stage_items[s], bank.b, target, k,
                                      a.growth_window_years)
        items = blocks[start]
        right = answer(items, s).astype(np.float32)
        # ``_add_block_loglik(ll, right, start, blocks, bank)``, compiled row by row
        scoring.add_answer_loglik(ll, right, items, bank.log_odds, bank.log_q)
        target, sd = eap(ll, bank.grid, prior_mean, prior_sd)
    return target, sd


def growth_test(rng: np.random.Generator, state, bank: ItemBank, a, saturation_days: float,
                sits: np.ndarray, elapsed: float):
    """Multistage adaptive vertical-scale scores and SEMs (scale points) of every slot;
    NaN where ``sits`` is False.

    Args:
        sits: bool per slot, who sits the test.
        elapsed: share of the school year gone by; with the grade it sets the
            prior's mean (``ItemBank.prior``), the first stage's target; the prior's
            SD is the wide ``growth_prior_sd_years``, so scores are close to ML
            estimates (as MAP's are) and not shrunk by grade.

    Draws ``stages x items`` uniforms for every slot whoever sits the test. The
    stages are answered and scored row by row, compiled (``scoring.adaptive_scores``).
    """
    tables = adaptive_tables(bank, a)
    items = scoring.AnswerItems(bank.skill, bank.difficulty, bank.log_odds)
    rules = scoring.response_rules(a)

    def score(takers, u, mu, sd):
        return scoring.adaptive_scores(takers.bundle, u, (np.asarray(mu, np.float64), sd),
                                       items, bank.grid, tables, rules)

    return growth_chunks(rng, state, bank, a, saturation_days, sits, elapsed, score)


def growth_chunks(rng, state, bank, a, saturation_days, sits, elapsed, score):
    """``growth_test``'s draws and takers chunk by chunk; ``score(takers, u, prior mean,
    prior SD)`` gives each chunk's estimates and SEMs (grade-years)."""
    k = a.growth_items_per_stage
    # float32 while scoring (EAP estimates are float32 values), float64 as returned
    theta, sem = np.full(state.n, np.nan, np.float32), np.full(state.n, np.nan, np.float32)
    for part in chunks(state.n, SCORE_CHUNK_ROWS):
        u = uniform32(rng, (part.stop - part.start, a.growth_stages * k))
        r = np.arange(part.start, part.stop)[sits[part]]
        if r.size == 0:
            continue
        u = u[sits[part]]
        mu, _ = bank.prior(state.grade[r], elapsed)
        for sub in chunks(r.size, TAKER_ROWS):
            rows = r[sub]
            takers = _Takers(state, rows, bank, a, saturation_days)
            theta[rows], sem[rows] = score(takers, u[sub], mu[sub],
                                           np.full(rows.size, a.growth_prior_sd_years))
            del takers  # these takers are gone before the next ones are built
    return level_to_scale(theta.astype(np.float64), a), sem.astype(np.float64) * (
        a.scale_points_per_year)
