"""Background support counts against brute-force counting (and against the miners' own counts)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the oracles live in the sibling test modules
from test_miners_freqt import brute_subtrees, maybe_empty_trees_st, to_bracket, to_parents  # noqa: E402
from test_miners_prefixspan import brute_skipgrams  # noqa: E402

from neurotext.miners import (  # noqa: E402
    SequenceDB,
    SequenceIndex,
    TreeDB,
    TreeIndex,
    Vocab,
    count_skipgrams,
    count_subtrees,
    mine_skipgrams,
    mine_subtrees,
    parse_bracket,
)

SETTINGS = settings(max_examples=80, deadline=None)

sequences = st.lists(st.lists(st.integers(0, 3), max_size=8), max_size=8)
gaps = st.sampled_from([None, 0, 1, 2])
# patterns may use ids absent from the data (4) and unknown ids (-1, 99)
patterns_st = st.lists(st.lists(st.sampled_from([0, 1, 2, 3, 4, -1, 99]), min_size=1, max_size=4), max_size=25)


@SETTINGS
@given(sequences, patterns_st, gaps)
def test_skipgram_counts_match_bruteforce(seqs, patterns, max_gap):
    db = SequenceDB.from_ids(seqs, n_items=5)
    brute = brute_skipgrams(seqs, 4, max_gap)
    sup, occ = count_skipgrams(db, patterns, max_gap=max_gap)
    want = [brute.get(tuple(p), (0, 0)) for p in patterns]
    assert list(zip(sup.tolist(), occ.tolist(), strict=True)) == want


@SETTINGS
@given(sequences, sequences, gaps, st.data())
def test_skipgram_counts_of_mined_patterns_in_another_db(top, background, max_gap, data):
    """Candidates mined from one set of rows, counted in another set of rows of the same encoded corpus."""
    db = SequenceDB.from_ids(top + background, n_items=4)
    top_rows = np.arange(len(top))
    bg_rows = np.arange(len(top), len(top) + len(background))
    pats = mine_skipgrams(db, top_rows, min_support=1, min_len=1, max_len=4, max_gap=max_gap)
    # the miner's own counts are reproduced on the mined rows
    sup, occ = count_skipgrams(db, pats, rows=top_rows, max_gap=max_gap)
    assert sup.tolist() == [p.support for p in pats] and occ.tolist() == [p.occurrences for p in pats]
    # and the background counts equal brute force on the background rows, through a reusable index
    index = SequenceIndex.build(db, bg_rows)
    brute = brute_skipgrams(background, 4, max_gap)
    for chunk in (pats, pats[::-1]):
        sup, occ = count_skipgrams(index, chunk, max_gap=max_gap)
        assert list(zip(sup.tolist(), occ.tolist(), strict=True)) == [brute.get(p.items, (0, 0)) for p in chunk]


def test_skipgram_counts_with_labels():
    vocab = Vocab()
    db = SequenceDB.from_lists([["it", "is", "going", "to", "be"], ["is", "be"], []], vocab)
    got = count_skipgrams(db, [["is", "going", "be"], ["is", "be"], ["unknown"], ["be", "is"]], max_gap=1)
    assert got.support.tolist() == [1, 1, 0, 0]
    got = count_skipgrams(db, [["is", "be"]], max_gap=None)
    assert (got.support.tolist(), got.occurrences.tolist()) == ([2], [2])
    assert count_skipgrams(db, [], max_gap=2).support.shape == (0,)
    with pytest.raises(ValueError, match="pattern 1 is empty"):
        count_skipgrams(db, [["is"], []], max_gap=2)
    with pytest.raises(ValueError, match="rows are fixed"):
        count_skipgrams(SequenceIndex.build(db), [["is"]], rows=[0], max_gap=2)
    with pytest.raises(ValueError, match="max_gap"):
        count_skipgrams(db, [["is"]], max_gap=-2)


trees_list_st = st.lists(maybe_empty_trees_st, max_size=6)


@SETTINGS
@given(trees_list_st, trees_list_st, st.integers(1, 5))
def test_subtree_counts_match_bruteforce(top, background, max_nodes):
    """Patterns mined from `top` (plus random ones) counted in `background`, same vocabulary."""
    vocab = Vocab(["A", "B", "C", "D"])
    db_top = TreeDB.from_brackets([to_bracket(t) for t in top], vocab)
    db_bg = TreeDB.from_brackets([to_bracket(t) for t in background], vocab)
    pats = mine_subtrees(db_top, min_support=1, max_nodes=max_nodes)
    # the miner's own counts are reproduced
    sup, occ = count_subtrees(db_top, pats)
    assert sup.tolist() == [p.support for p in pats] and occ.tolist() == [p.occurrences for p in pats]
    brute = brute_subtrees([to_parents(t) for t in background], max_nodes)
    extra = ["(D)", "(A (D))", "(A (B) (Z))", "(Q)"]
    index = TreeIndex.build(db_bg)
    sup, occ = count_subtrees(index, [*pats, *extra])
    want = [brute.get((tuple(vocab.decode(p.labels)), p.depths), (0, 0)) for p in pats]
    for text in extra:
        labels, parents = parse_bracket(text)
        depths = []
        for p in parents:
            depths.append(0 if p < 0 else depths[p] + 1)
        want.append(brute.get((tuple(labels), tuple(depths)), (0, 0)))
    assert list(zip(sup.tolist(), occ.tolist(), strict=True)) == want


@SETTINGS
@given(trees_list_st, st.data())
def test_subtree_counts_on_rows(trees, data):
    rows = data.draw(st.lists(st.integers(0, max(len(trees) - 1, 0)), unique=True)) if trees else []
    db = TreeDB.from_brackets([to_bracket(t) for t in trees])
    pats = mine_subtrees(db, min_support=1, max_nodes=4)
    brute = brute_subtrees([to_parents(trees[r]) for r in rows], 4)
    sup, occ = count_subtrees(db, pats, rows=rows)
    want = [brute.get((tuple(db.vocab.decode(p.labels)), p.depths), (0, 0)) for p in pats]
    assert list(zip(sup.tolist(), occ.tolist(), strict=True)) == want


def test_subtree_count_inputs():
    db = TreeDB.from_brackets(["(S (NP (DT) (NN)) (VP (VBD) (NP (DT) (NN))))", "(S (NP (PRP)) (VP (VBD)))"])
    ids = db.vocab.get
    got = count_subtrees(db, ["(NP (DT) (NN))", ((ids("S"), ids("VP")), (0, 1)), "(S(NP)(VP(VBD)))"])
    assert got.support.tolist() == [1, 2, 2]
    assert got.occurrences.tolist() == [2, 2, 2]
    with pytest.raises(ValueError, match="pattern 0"):
        count_subtrees(db, ["(NP"])
    with pytest.raises(ValueError, match="pattern 0: depths"):
        count_subtrees(db, [((1, 2), (0, 2))])
    with pytest.raises(ValueError, match="rows are fixed"):
        count_subtrees(TreeIndex.build(db), ["(S)"], rows=[0])


def test_counts_with_large_candidate_lists():
    """Thousands of candidate nodes per step (the kernels' scratch buffers regrow)."""
    wide = "(R " + " ".join("(A (B))" if k % 2 else "(A)" for k in range(3000)) + ")"
    db = TreeDB.from_brackets([wide, "(R (A (B)) (A))"])
    got = count_subtrees(db, ["(R (A))", "(R (A) (A (B)))", "(A (B))", "(R (A (B)) (A))"])
    assert got.support.tolist() == [2, 1, 2, 2]
    # occurrences = distinct rightmost-leaf images: every A child; every B (each has an earlier A); every B;
    # every A after the first A (B) (children 2..2999, and one in the second tree)
    assert got.occurrences.tolist() == [3000 + 2, 1500, 1500 + 1, 2998 + 1]
    seqs = SequenceDB.from_ids([[0, 1] * 3000, [1, 0]])
    got = count_skipgrams(seqs, [[0, 1], [1, 0], [0, 0, 0]], max_gap=None)
    assert got.support.tolist() == [1, 2, 1] and got.occurrences.tolist() == [3000, 3000, 2998]
    got = count_skipgrams(seqs, [[0, 1], [1, 0], [0, 0, 0]], max_gap=1)
    assert got.support.tolist() == [1, 2, 1] and got.occurrences.tolist() == [3000, 3000, 2998]


def test_shared_vocabulary_growing_after_indexing():
    """Labels interned after an index was built (another database of the same corpus) simply have support 0."""
    vocab = Vocab()
    trees = TreeDB.from_brackets(["(S (NP) (VP))"], vocab)
    seqs = SequenceDB.from_lists([["a", "b"]], vocab)
    tindex, sindex = TreeIndex.build(trees), SequenceIndex.build(seqs)
    later = TreeDB.from_brackets(["(S (ADJP))"], vocab)
    pats = mine_subtrees(later, min_support=1, max_nodes=2)
    assert count_subtrees(tindex, pats).support.tolist() == [1 if p.labels == (vocab.get("S"),) else 0 for p in pats]
    SequenceDB.from_lists([["c"]], vocab)
    assert count_skipgrams(sindex, [["c"], ["a", "b"]], max_gap=0).support.tolist() == [0, 1]
