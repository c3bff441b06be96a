"""The tests' scoring, compiled: the response model's knowledge, answers drawn row by
row, and EAP estimates on the quadrature grid (``sim.engine.assessment`` describes the
models; its ``growth_test`` and ``state_test`` run these).

The growth and state tests answer and score one row at a time
(``adaptive_scores``, ``form_scores``): each row's items' P(right) from
``answer_block``, its log-likelihood, its EAP (``eap_row``). Their sums run in
another order than a matrix product, in float32; ``tests/test_kernels.py`` holds
them to a numpy reference to float32 rounding. Float32 throughout, with the
portable exponential ``compiled.exp32`` (the same on every machine).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from sim.engine.compiled import exp32

# numba checks a cached function against its own file only: this is the hash of compiled.py,
# whose utilities (exp32, prefetch) this module's compiled functions inline, so a change there
# must change this line (tests/test_portable_math.py checks it) for the caches to be rebuilt
COMPILED_SOURCE = "d9bef96573878454"


class Takers(NamedTuple):
    """What the response model needs of some rows: knowledge of the skills the items may
    be on (float32 rows x skills), familiarity days (uint8, the same shape), anxiety."""

    knowledge: np.ndarray
    fam_days: np.ndarray
    anxiety: np.ndarray


class AnswerItems(NamedTuple):
    """Items as the answers read them: each item's column among the takers' skills, its
    own difficulty (logits, float32) and its log-odds of right at each node (items x Q)."""

    skill: np.ndarray
    difficulty: np.ndarray
    log_odds: np.ndarray


class ResponseRules(NamedTuple):
    """The response model's parameters (float32)."""

    guess: np.float32      # the lower asymptote
    penalty: np.float32    # its shrinkage per unit of anxiety on an unseen skill
    logits: np.float32     # knowledge's slope (logits per unit of knowledge)
    threshold: np.float32  # the knowledge at which P(right) is halfway


def response_rules(a) -> ResponseRules:
    """From ``AssessmentParams``."""
    f32 = np.float32
    return ResponseRules(f32(a.item_guess), f32(a.unseen_anxiety_penalty),
                         f32(a.knowledge_logits), f32(a.knowledge_threshold))


class AdaptiveTables(NamedTuple):
    """Every growth-test stage's blocks, flattened (``assessment.adaptive_tables``): each
    stage's ``b`` sorted (``stage_b`` from ``b_offset[s]``), spans and last starts; the
    blocks (item ids, k) and their summed log P(wrong) (Q) from ``block_offset[s]``; the
    searchsorted table of each stage (``lookup`` from ``lookup_offset[s]``, on targets
    ``lookup_x0[s] + m x lookup_step``)."""

    stage_b: np.ndarray
    b_offset: np.ndarray
    span: np.ndarray
    last: np.ndarray
    blocks: np.ndarray
    block_q: np.ndarray
    block_offset: np.ndarray
    lookup: np.ndarray
    lookup_offset: np.ndarray
    lookup_x0: np.ndarray
    lookup_step: float


# --- the response model's knowledge ---------------------------------------------------------
@njit(cache=True, nogil=True)
def knowledge_in_place(below, mastered, fam_days, own, rest, familiarity_weight,
                       saturation_days):
    """``assessment._knowledge_of`` element by element, written over ``below`` (the
    matrix product of mastery with the ancestor weights, float32 rows x skills):
    ``min(own x m + rest x below + familiarity_weight x fam x (1 - m), 1)`` with
    ``fam = min(days / saturation_days, 1)``; float32, in numpy's order (``rest`` is
    ``1 - own`` computed in float64 and rounded, as numpy does)."""
    one = np.float32(1.0)
    rows, n = below.shape
    for i in range(rows):
        for j in range(n):
            m = one if mastered[i, j] else np.float32(0.0)
            fam = min(np.float32(fam_days[i, j]) / saturation_days, one)
            k = (own * m + rest * below[i, j]) + (familiarity_weight * fam) * (one - m)
            below[i, j] = min(k, one)
    return below


@njit(cache=True, nogil=True)
def take_along_rows(matrix, cols):
    """``np.take_along_axis(matrix, cols, axis=1)`` for 2-D ``matrix`` and ``cols``
    (int64): ``out[i, j] = matrix[i, cols[i, j]]``."""
    rows, k = cols.shape
    out = np.empty((rows, k), matrix.dtype)
    for i in range(rows):
        for j in range(k):
            out[i, j] = matrix[i, cols[i, j]]
    return out


# --- EAP scoring ----------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def add_answer_loglik(ll, right, items, log_odds, log_q):
    """``ll += right @ log_odds[items] + log_q[items].sum(axis=0)`` row by row (float32,
    written into ``ll``, rows x Q): the log-likelihood of each row's answers
    ``right`` (0/1, rows x k) to its items ``items`` (ids, rows x k) at each node.

    In the order numpy and a BLAS that sums item by item add (as
    a block-by-block matrix product computes it; OpenBLAS's order
    depends on the CPU, so on some machines the two agree to float32 rounding only):
    the right answers' log-odds summed item by item from zero (a
    0/1 weight makes each of BLAS's multiply-adds an exact add or nothing), the
    items' ``log_q`` summed item by item from the first (numpy's reduction over
    the outer axis), the two added, then added to ``ll``.
    """
    rows, k = right.shape
    q = ll.shape[1]
    acc = np.empty(q, np.float32)
    base = np.empty(q, np.float32)
    for r in range(rows):
        acc[:] = 0.0
        for j in range(k):
            item = items[r, j]
            if right[r, j] != 0:
                for c in range(q):
                    acc[c] += log_odds[item, c]
            if j == 0:
                for c in range(q):
                    base[c] = log_q[item, c]
            else:
                for c in range(q):
                    base[c] += log_q[item, c]
        for c in range(q):
            ll[r, c] += acc[c] + base[c]
    return ll


@njit(cache=True, nogil=True)
def eap_log_posterior(loglik, grid, prior_mean, prior_sd):
    """``loglik - 0.5 z z`` with ``z = (grid - mean) / sd`` per row (a new float32
    rows x Q array; float32 in numpy's order)."""
    rows, q = loglik.shape
    out = np.empty((rows, q), np.float32)
    half = np.float32(0.5)
    for i in range(rows):
        mu, sd = prior_mean[i], prior_sd[i]
        for j in range(q):
            z = (grid[j] - mu) / sd
            out[i, j] = loglik[i, j] - half * z * z
    return out


@njit(cache=True, nogil=True)
def times_squared_deviation(post, grid, mean):
    """``post * dev * dev`` with ``dev = grid - mean`` per row, written over ``post``
    (float32, in numpy's order); returns ``post``."""
    rows, q = post.shape
    for i in range(rows):
        m = mean[i]
        for j in range(q):
            d = grid[j] - m
            post[i, j] = post[i, j] * d * d
    return post


# --- the tests, answered and scored row by row ------------------------------------------------
@njit(cache=True, nogil=True)
def eap_rows(ll, grid, prior_mean, prior_sd):
    """``eap_row`` of every row of ``ll`` (rows x Q float32; for tests): float32
    estimates and posterior SDs."""
    rows = ll.shape[0]
    mean, sd = np.empty(rows, np.float32), np.empty(rows, np.float32)
    post = np.empty(grid.size, np.float32)
    term = np.empty(grid.size, np.float32)
    for i in range(rows):
        prior_term(grid, np.float32(prior_mean[i]), np.float32(prior_sd[i]), term)
        mean[i], sd[i] = eap_row(ll[i], grid, term, post)
    return mean, sd


@njit(cache=True, nogil=True, inline="always")
def prior_term(grid, mu, sd, out):
    """``z^2 / 2`` at each node of the ``grid`` (Q) for a normal prior (``mu``, ``sd``;
    float32, ``z = (node - mu) / sd``), written into ``out``: the prior's part of the
    log posterior, the same at every stage of a row's test (computed once a row)."""
    half = np.float32(0.5)
    for j in range(grid.size):  # elementwise: vectorises
        z = (grid[j] - mu) / sd
        out[j] = half * z * z
    return out


@njit(cache=True, nogil=True, inline="always")
def eap_row(ll, grid, prior_term, post):
    """EAP estimate and posterior SD (grade-years, float32) of one row's log-likelihood
    ``ll`` on the ``grid`` (Q) under a normal prior (its ``prior_term``), as
    ``assessment.eap`` defines them: ``post = exp(ll - z^2 / 2 - max)``,
    mean and variance under it. ``post`` is scratch (Q).

    The mean and variance come from one pass of sums of the nodes' deviations from
    the posterior's mode (the node of the max), so the variance's subtraction loses
    nothing that matters (the mean is within about a posterior SD of the mode).
    Sums run in four interleaved float32 partial sums added in a fixed order: the
    same on every machine.
    """
    q = grid.size
    for j in range(q):  # the log posterior, elementwise (vectorises)
        post[j] = ll[j] - prior_term[j]
    m0 = m1 = m2 = m3 = np.float32(-np.inf)
    i0 = i1 = i2 = i3 = 0
    j = 0
    while j + 4 <= q:  # its maximum, in four interleaved runs
        v0, v1, v2, v3 = post[j], post[j + 1], post[j + 2], post[j + 3]
        if v0 > m0:
            m0, i0 = v0, j
        if v1 > m1:
            m1, i1 = v1, j + 1
        if v2 > m2:
            m2, i2 = v2, j + 2
        if v3 > m3:
            m3, i3 = v3, j + 3
        j += 4
    while j < q:
        v0 = post[j]
        if v0 > m0:
            m0, i0 = v0, j
        j += 1
    if m1 > m0:
        m0, i0 = m1, i1
    if m3 > m2:
        m2, i2 = m3, i3
    if m2 > m0:
        m0, i0 = m2, i2
    top, centre = m0, grid[i0]
    for j in range(q):
        post[j] = exp32(post[j] - top)
    t0 = t1 = t2 = t3 = np.float32(0.0)
    w0 = w1 = w2 = w3 = np.float32(0.0)
    s0 = s1 = s2 = s3 = np.float32(0.0)
    j = 0
    while j + 4 <= q:
        e0, e1, e2, e3 = post[j], post[j + 1], post[j + 2], post[j + 3]
        d0, d1 = grid[j] - centre, grid[j + 1] - centre
        d2, d3 = grid[j + 2] - centre, grid[j + 3] - centre
        t0, t1, t2, t3 = t0 + e0, t1 + e1, t2 + e2, t3 + e3
        e0, e1, e2, e3 = e0 * d0, e1 * d1, e2 * d2, e3 * d3
        w0, w1, w2, w3 = w0 + e0, w1 + e1, w2 + e2, w3 + e3
        s0, s1, s2, s3 = s0 + e0 * d0, s1 + e1 * d1, s2 + e2 * d2, s3 + e3 * d3
        j += 4
    while j < q:
        e0, d0 = post[j], grid[j] - centre
        t0 += e0
        e0 *= d0
        w0 += e0
        s0 += e0 * d0
        j += 1
    total = (t0 + t1) + (t2 + t3)
    shift = ((w0 + w1) + (w2 + w3)) / total
    var = ((s0 + s1) + (s2 + s3)) / total - shift * shift
    return centre + shift, np.sqrt(max(var, np.float32(0.0)))


@njit(cache=True, nogil=True, inline="always")
def answer_block(ll, takers, i, block, items, u, u0, anxious_guess, rules, bufs):
    """Row ``i``'s answers to the items ``block`` (ids into ``items``), right when
    ``u[u0 + j]`` (the row's uniforms) < P(right) (``assessment.p_right``, in float32
    with ``exp32``; ``anxious_guess`` is the lower asymptote on an unseen skill): the right items'
    ``log_odds`` added to ``ll``, the wrong ones' skipped (what numpy's 0/1-weighted
    product adds). The items' inputs are gathered first (``bufs``: three float32 scratch
    arrays of the block's size), so the probabilities' loop vectorises."""
    k_buf, d_buf, c_buf = bufs
    knowledge, fam_days = takers.knowledge, takers.fam_days
    skill, difficulty, log_odds = items
    one = np.float32(1.0)
    n = block.size
    for j in range(n):
        item = block[j]
        col = skill[item]
        k_buf[j] = knowledge[i, col]
        d_buf[j] = difficulty[item]
        c_buf[j] = anxious_guess if fam_days[i, col] == 0 else rules.guess
    for j in range(n):
        c = c_buf[j]
        k_buf[j] = c + (one - c) / (one + exp32(-(rules.logits * (k_buf[j] - rules.threshold)
                                                   - d_buf[j])))
    q = ll.size
    for j in range(n):
        if u[u0 + j] < k_buf[j]:  # right: its log-odds added (a wrong answer adds 0)
            item = block[j]
            for c in range(q):
                ll[c] += log_odds[item, c]


def adaptive_scores(takers, u, prior, items, grid, tables, rules):
    """The multistage adaptive test (``assessment.adaptive_eap`` with the response
    model's answers), answered and scored one row at a time.

    Per row (``u``: rows x stages*k uniforms; ``prior``: (mean, SD) per row in
    grade-years, float64) and stage ``s``: the block starting at
    ``searchsorted(b of the stage, target) - span[s] // 2`` clipped to [0,
    ``last[s]``] (``assessment._stage_blocks``; ``tables``: ``AdaptiveTables``), its
    ``k`` items answered (``answer_block``), the block's summed log P(wrong) added
    (``block_q``), and the EAP (``eap_row``) the next stage's target.

    Returns the last stage's EAP estimates and posterior SDs (float32, grade-years).
    """
    rows, k, q = takers.knowledge.shape[0], tables.blocks.shape[1], grid.size
    out = np.empty(rows, np.float32), np.empty(rows, np.float32)
    adaptive_loop(takers, u, prior, items, grid, tables, rules, out, _scratch(q, k))
    return out


def _scratch(q: int, k: int):
    """A row's working arrays: log-likelihood, posterior and prior term (Q), and the
    answers' three buffers (k), float32."""
    return tuple(np.empty(n, np.float32) for n in (q, q, q, k, k, k))


@njit(cache=True, nogil=True, _nrt=False)
def adaptive_loop(takers, u, prior, items, grid, tables, rules, out, scratch):
    """``adaptive_scores``' loop into ``out`` (estimates, SDs); compiled without reference
    counting (it allocates nothing; ``scratch``: ``_scratch``'s arrays), as
    ``school_day.day_loop`` is."""
    theta, sem = out
    ll, post, term, k_buf, d_buf, c_buf = scratch
    bufs = (k_buf, d_buf, c_buf)
    prior_mean, prior_sd = prior
    (stage_b, b_offset, span, last, blocks, block_q, block_offset, lookup, lookup_offset,
     lookup_x0, lookup_step) = tables  # taken out once: numba counts a reference for each
    anxiety = takers.anxiety
    rows = takers.knowledge.shape[0]
    stages, k = span.size, blocks.shape[1]
    q = grid.size
    one = np.float32(1.0)
    for i in range(rows):
        ll[:] = 0.0
        target = prior_mean[i]
        mu, sd = np.float32(prior_mean[i]), np.float32(prior_sd[i])
        prior_term(grid, mu, sd, term)  # the same prior at every stage
        est, err = mu, sd
        anxious_guess = rules.guess * (one - rules.penalty * anxiety[i])
        for s in range(stages):
            lo, n = b_offset[s], b_offset[s + 1] - b_offset[s]
            # np.searchsorted(stage_b[lo:lo + n], target): from the table, stepped on
            l0, size = lookup_offset[s], lookup_offset[s + 1] - lookup_offset[s]
            if target != target:  # NaN sorts last (as searchsorted puts it)
                at = n
            else:
                m = int(np.floor((target - lookup_x0[s]) / lookup_step)) - 1
                at = lookup[l0 + min(max(m, 0), size - 1)]
                while at < n and stage_b[lo + at] < target:
                    at += 1
            start = min(max(at - span[s] // 2, 0), last[s])
            blk = block_offset[s] + start
            answer_block(ll, takers, i, blocks[blk], items, u[i], s * k, anxious_guess, rules,
                         bufs)
            for c in range(q):
                ll[c] += block_q[blk, c]
            est, err = eap_row(ll, grid, term, post)
            target = np.float64(est)
        theta[i] = est
        sem[i] = err


def form_scores(takers, u, prior, items, form_q, grid, rules):
    """A fixed form answered and scored one row at a time (``assessment.state_test``'s
    answers and ``form_eap``): ``items`` in form order (each one's column among the
    takers' skills, difficulty, log-odds: ``AnswerItems``), answered as
    ``answer_block`` does; the log-likelihood starts from ``form_q`` (the form's summed
    log P(wrong), Q); then ``eap_row`` under each row's prior (``prior``: (mean, SD)).
    Returns EAP estimates and posterior SDs (float32, grade-years)."""
    rows, n_items = u.shape[0], items.skill.size
    out = np.empty(rows, np.float32), np.empty(rows, np.float32)
    form_loop(takers, u, prior, items, (form_q, np.arange(n_items)), grid, rules, out,
              _scratch(grid.size, n_items))
    return out


@njit(cache=True, nogil=True, _nrt=False)
def form_loop(takers, u, prior, items, form, grid, rules, out, scratch):
    """``form_scores``' loop into ``out`` (estimates, SDs; ``form``: (summed log P(wrong),
    the items' order)); compiled without reference counting, as ``adaptive_loop``."""
    theta, sem = out
    form_q, block = form
    ll, post, term, k_buf, d_buf, c_buf = scratch
    bufs = (k_buf, d_buf, c_buf)
    prior_mean, prior_sd = prior
    anxiety = takers.anxiety
    rows = u.shape[0]
    one = np.float32(1.0)
    for i in range(rows):
        for c in range(ll.size):  # a copy, element by element (no temporary)
            ll[c] = form_q[c]
        answer_block(ll, takers, i, block, items, u[i], 0,
                     rules.guess * (one - rules.penalty * anxiety[i]), rules, bufs)
        prior_term(grid, np.float32(prior_mean[i]), np.float32(prior_sd[i]), term)
        theta[i], sem[i] = eap_row(ll, grid, term, post)
