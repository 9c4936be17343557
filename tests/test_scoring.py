"""The scoring kernel against independent computations: scipy's Fisher test, exact hypergeometric sums with
math.comb, BH by its step-up definition, the log-odds formula written out, and the closed filter against the miners'
own subtree counter used as a containment oracle."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import fisher_exact

from neurotext.miners import SubtreeTable, TreeDB, closed_subtrees, count_subtrees, format_tree, mine_subtrees
from neurotext.scoring import (
    bh_qvalues,
    fisher_greater,
    lift,
    log_odds_z,
    score_counts,
    selective_fisher_greater,
)

SETTINGS = settings(max_examples=60, deadline=None)


@st.composite
def tables(draw, max_k: int = 60, max_n: int = 400):
    k = draw(st.integers(1, max_k))
    n = draw(st.integers(1, max_n))
    return draw(st.integers(0, k)), k, draw(st.integers(0, n)), n


def exact_tail(a: int, k: int, b: int, n: int, threshold: int) -> Fraction:
    """P(A >= threshold) for A ~ Hypergeom(k + n, a + b, k), as an exact fraction."""
    total, successes = k + n, a + b
    hits = sum(math.comb(successes, x) * math.comb(total - successes, k - x)
               for x in range(max(threshold, 0), min(successes, k) + 1))  # fmt: skip
    return Fraction(hits, math.comb(total, k))


@SETTINGS
@given(tables())
def test_fisher_matches_scipy(table):
    a, k, b, n = table
    expected = fisher_exact([[a, k - a], [b, n - b]], alternative="greater").pvalue
    assert fisher_greater(a, k, b, n)[()] == pytest.approx(expected, rel=1e-9, abs=1e-300)


@SETTINGS
@given(tables(), st.integers(1, 5))
def test_selective_p_is_the_conditional_tail(table, min_support):
    a, k, b, n = table
    if a < min_support:
        return
    expected = exact_tail(a, k, b, n, a) / exact_tail(a, k, b, n, min_support)
    got = selective_fisher_greater(a, k, b, n, min_support)[()]
    assert got == pytest.approx(float(expected), rel=1e-9)
    assert got >= fisher_greater(a, k, b, n)[()] * (1 - 1e-12)


@pytest.mark.parametrize(("total", "successes", "k", "s"), [(2100, 3, 100, 3), (2100, 30, 100, 3), (500, 12, 50, 4)])
def test_selective_p_is_valid_under_the_null(total, successes, k, s):
    """Exactly, over the hypergeometric law of A given selection (A >= s): P(p_sel <= alpha) <= alpha."""
    n = total - k
    probs = {x: exact_tail(0, k, successes, n, x) - exact_tail(0, k, successes, n, x + 1)
             for x in range(s, min(successes, k) + 1)}  # fmt: skip
    selected = sum(probs.values())
    for alpha in (0.01, 0.05, 0.2):
        rejected = sum(p for x, p in probs.items()
                       if selective_fisher_greater(x, k, successes - x, n, s)[()] <= alpha)  # fmt: skip
        assert rejected / selected <= alpha + 1e-12


def test_rare_pattern_all_in_the_top_is_not_evidence():
    assert selective_fisher_greater(3, 100, 0, 2000, 3)[()] == pytest.approx(1.0)
    assert fisher_greater(3, 100, 0, 2000)[()] == pytest.approx(100 * 99 * 98 / (2100 * 2099 * 2098))


def test_extreme_counts_stay_finite():
    p = fisher_greater(9000, 10_000, 10, 10_000_000)[()]
    assert p == 0.0 or p < 1e-300
    assert np.isfinite(log_odds_z(9000, 10_000, 10, 10_000_000)[1])[()]
    assert selective_fisher_greater(5, 10, 0, 10**9, 3)[()] <= 1.0


@SETTINGS
@given(st.lists(st.floats(0, 1), min_size=1, max_size=40))
def test_bh_matches_the_step_up_definition(pvalues):
    p = np.array(pvalues)
    q = bh_qvalues(p)
    m = p.size
    ranks = np.argsort(np.argsort(p, kind="stable"), kind="stable") + 1
    for i in range(m):
        expected = min(1.0, min(m * p[j] / ranks[j] for j in range(m) if p[j] >= p[i]))
        assert q[i] == pytest.approx(expected, rel=1e-12, abs=1e-15)
    for alpha in (0.05, 0.2):  # the step-up rejection set
        sorted_p = np.sort(p)
        passing = [i + 1 for i in range(m) if sorted_p[i] <= alpha * (i + 1) / m]
        threshold = sorted_p[max(passing) - 1] if passing else -1.0
        exact_tie = np.isclose(q, alpha, rtol=1e-12, atol=0)  # p * m / rank == alpha up to rounding
        assert set(np.flatnonzero((q <= alpha) & ~exact_tie)) == set(np.flatnonzero((p <= threshold) & ~exact_tie))


def test_log_odds_formula_written_out():
    a, k, b, n = 60, 100, 20, 2000
    alpha0 = k + n
    pi0 = (a + b + 1) / (k + n + 2)
    al, be = alpha0 * pi0, alpha0 * (1 - pi0)
    delta = math.log((a + al) / (k - a + be)) - math.log((b + al) / (n - b + be))
    sd = math.sqrt(1 / (a + al) + 1 / (k - a + be) + 1 / (b + al) + 1 / (n - b + be))
    got_delta, got_z = log_odds_z(a, k, b, n)
    assert (got_delta[()], got_z[()]) == (pytest.approx(delta), pytest.approx(delta / sd))
    assert lift(a, k, b, n)[()] == pytest.approx(0.6 / (21 / 2002))
    assert log_odds_z(a, k, b, n, prior_weight=0.5)[1][()] > got_z[()]  # a weaker prior shrinks less


@pytest.mark.parametrize(("k", "n"), [(30, 2000), (100, 2000), (100, 500), (1000, 2000), (10_000, 10_000)])
def test_z_ranks_monotonically(k, n):
    """More top support never lowers z; more background support never raises it (patterns are ranked by z)."""
    a = np.arange(0, k + 1, max(1, k // 100))
    for b in np.linspace(0, n, 41).astype(int):
        assert np.all(np.diff(log_odds_z(a, k, b, n)[1]) >= -1e-12)
    b = np.arange(0, n + 1, max(1, n // 400))
    for a_value in np.linspace(0, k, 41).astype(int):
        assert np.all(np.diff(log_odds_z(a_value, k, b, n)[1]) <= 1e-12)


def test_score_counts_is_one_family():
    scores = score_counts([60, 3, 10], [100, 100, 100], [20, 0, 200], [2000, 2000, 2000], min_support=3)
    assert scores.q[0] < 1e-20 and scores.p[1] == pytest.approx(1.0)
    assert scores.q[2] == pytest.approx(scores.p[2] * 3 / 2)
    with pytest.raises(ValueError, match="a >= min_support"):
        score_counts([2], [100], [0], [2000], min_support=3)
    with pytest.raises(ValueError, match="0 <= a <= K"):
        score_counts([101], [100], [0], [2000])


# --- closed subtrees --------------------------------------------------------------------------------------------

LABELS = ["A", "B", "C"]


@st.composite
def random_tree(draw, max_nodes: int = 7) -> str:
    n = draw(st.integers(1, max_nodes))
    parents = [-1] + [draw(st.integers(0, i - 1)) for i in range(1, n)]
    labels = [draw(st.sampled_from(LABELS)) for _ in range(n)]
    children: dict[int, list[int]] = {i: [] for i in range(n)}
    for i, p in enumerate(parents[1:], start=1):
        children[p].append(i)

    def bracket(i: int) -> str:
        return "(" + labels[i] + "".join(" " + bracket(c) for c in children[i]) + ")"

    return bracket(0)


@SETTINGS
@given(st.lists(random_tree(), min_size=1, max_size=8), st.integers(1, 3))
def test_closed_subtrees_match_containment_by_the_miners_counter(trees, min_support):
    """P is closed iff no mined Q with one more node contains P and has P's support; containment is decided by
    counting P in Q itself (as a one-tree database) with the miners' background counter."""
    db = TreeDB.from_brackets(trees)
    max_nodes = 4
    mined = mine_subtrees(db, min_support=min_support, max_nodes=max_nodes)
    mask = closed_subtrees(SubtreeTable.from_pairs([p.labels for p in mined], [p.depths for p in mined],
                                                   [p.support for p in mined]), max_nodes)
    brackets = [format_tree(db.vocab.decode(p.labels), p.depths) for p in mined]
    for i, p in enumerate(mined):
        if p.size >= max_nodes:
            assert mask[i]
            continue
        extended = False
        for j, q in enumerate(mined):
            if q.size == p.size + 1 and q.support == p.support:
                as_db = TreeDB.from_brackets([brackets[j]], db.vocab)
                if count_subtrees(as_db, [p]).support[0] > 0:
                    extended = True
                    break
        assert mask[i] == (not extended), brackets[i]
