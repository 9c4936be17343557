"""Explanation metrics against scikit-learn / scipy on random inputs (ties included), and the presence matcher
against the miners' background counter, sentence by sentence."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import pearsonr, rankdata, spearmanr
from sklearn.metrics import precision_recall_fscore_support, roc_auc_score

from neurotext.miners import SequenceDB, SequenceIndex, TreeDB, TreeIndex, count_skipgrams, count_subtrees
from neurotext.miners import mine_skipgrams, mine_subtrees
from neurotext.miners.presence import match_skipgrams, match_subtrees
from neurotext.scores.metrics import auroc, average_ranks, pearson, precision_recall_f1, spearman


@st.composite
def scored_sets(draw, integer: bool):
    """(predictions [m, n], labels [n], activations [n]) with both classes; integer values give many ties."""
    n = draw(st.integers(3, 60))
    m = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    preds = rng.integers(0, 4, (m, n)).astype(float) if integer else rng.normal(size=(m, n))
    labels = rng.random(n) < 0.3
    labels[0], labels[1] = True, False
    acts = rng.normal(size=n)
    return preds, labels, acts


@settings(max_examples=100, deadline=None)
@given(scored_sets(integer=True) | scored_sets(integer=False))
def test_auroc_equals_sklearn(data):
    preds, labels, _ = data
    got = auroc(preds, labels)
    want = [roc_auc_score(labels, p) for p in preds]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


@settings(max_examples=100, deadline=None)
@given(scored_sets(integer=True) | scored_sets(integer=False))
def test_ranks_and_correlations_equal_scipy(data):
    preds, _, acts = data
    np.testing.assert_array_equal(average_ranks(preds), np.stack([rankdata(p) for p in preds]))
    for i, p in enumerate(preds):
        if np.ptp(p) == 0:
            assert pearson(p, acts)[0] == 0.0 and spearman(p, acts)[0] == 0.0  # scipy: NaN (no information)
            continue
        assert pearson(preds, acts)[i] == pytest.approx(pearsonr(p, acts).statistic, abs=1e-10)
        assert spearman(preds, acts)[i] == pytest.approx(spearmanr(p, acts).statistic, abs=1e-10)


@settings(max_examples=100, deadline=None)
@given(scored_sets(integer=True))
def test_precision_recall_f1_equal_sklearn(data):
    preds, labels, _ = data
    present = preds > 1
    p, r, f = precision_recall_f1(present, labels)
    for i in range(present.shape[0]):
        want = precision_recall_fscore_support(labels, present[i], average="binary", zero_division=0)
        np.testing.assert_allclose([p[i], r[i], f[i]], want[:3], atol=1e-12)


def test_edge_cases():
    assert np.isnan(auroc(np.arange(4.0), np.ones(4, bool))[0])
    assert auroc(np.zeros(5), np.array([1, 0, 1, 0, 0], bool))[0] == 0.5
    assert auroc(np.array([3.0, 2, 1]), np.array([1, 0, 0], bool))[0] == 1.0
    assert pearson(np.ones(5), np.arange(5.0))[0] == 0.0
    with pytest.raises(ValueError, match="NaN"):
        average_ranks(np.array([1.0, np.nan]))


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**31), st.sampled_from([None, 0, 1, 2]))
def test_skipgram_presence_matches_the_background_counter(seed, gap):
    rng = np.random.default_rng(seed)
    db = SequenceDB.from_lists([[str(x) for x in rng.integers(0, 5, rng.integers(0, 9))] for _ in range(40)])
    rows = np.sort(rng.choice(40, 30, replace=False))
    pats = mine_skipgrams(db, min_support=1, min_len=1, max_len=3, max_gap=gap)
    m = match_skipgrams(SequenceIndex.build(db, rows), pats, max_gap=gap)
    for k, p in enumerate(pats):
        want = [r for r in rows if count_skipgrams(db, [p], max_gap=gap, rows=[r]).support[0]]
        assert m.rows_of(k).tolist() == want


def _tree(rng, depth=0):
    label = "ABC"[int(rng.integers(0, 3))]
    if depth > 2:
        return f"({label})"
    return f"({label}{''.join(_tree(rng, depth + 1) for _ in range(int(rng.integers(0, 3))))})"


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**31))
def test_subtree_presence_matches_the_background_counter(seed):
    rng = np.random.default_rng(seed)
    trees = TreeDB.from_brackets([_tree(rng) for _ in range(30)])
    rows = np.sort(rng.choice(30, 20, replace=False))
    pats = mine_subtrees(trees, min_support=1, max_nodes=4)
    m = match_subtrees(TreeIndex.build(trees, rows), pats)
    for k, p in enumerate(pats):
        want = [r for r in rows if count_subtrees(trees, [p], rows=[r]).support[0]]
        assert m.rows_of(k).tolist() == want
    # unknown labels match nothing
    assert match_subtrees(TreeIndex.build(trees, rows), ["(Q (A))"]).rows.size == 0
