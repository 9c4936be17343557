"""PrefixSpan skip-n-grams against a brute-force oracle (every position tuple enumerated)."""

from __future__ import annotations

import itertools
import random
from collections import Counter, defaultdict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neurotext.miners import (
    Pattern,
    SequenceDB,
    closed_filter,
    default_min_support,
    format_skipgram,
    frequent_items,
    mine_skipgrams,
)

SETTINGS = settings(max_examples=80, deadline=None)

sequences = st.lists(st.lists(st.integers(0, 3), max_size=8), max_size=8)
gaps = st.sampled_from([None, 0, 1, 2])


def brute_skipgrams(seqs, max_len, max_gap):
    """{items: (support, occurrences)} for every pattern of length <= max_len, by enumerating position tuples."""
    ends: dict[tuple[int, ...], set[tuple[int, int]]] = defaultdict(set)
    for s, seq in enumerate(seqs):
        for n in range(1, max_len + 1):
            for pos in itertools.combinations(range(len(seq)), n):
                if max_gap is not None and any(b - a - 1 > max_gap for a, b in itertools.pairwise(pos)):
                    continue
                ends[tuple(seq[p] for p in pos)].add((s, pos[-1]))
    return {items: (len({s for s, _ in e}), len(e)) for items, e in ends.items()}


def frequent(brute, min_support, min_len, max_len):
    return {k: v for k, v in brute.items() if v[0] >= min_support and min_len <= len(k) <= max_len}


def as_dict(patterns: list[Pattern]) -> dict[tuple[int, ...], tuple[int, int]]:
    out = {p.items: (p.support, p.occurrences) for p in patterns}
    assert len(out) == len(patterns), "duplicate patterns"
    return out


@SETTINGS
@given(sequences, st.integers(1, 4), st.integers(1, 3), st.integers(0, 2), gaps)
def test_matches_bruteforce(seqs, min_support, min_len, extra, max_gap):
    max_len = min_len + extra
    db = SequenceDB.from_ids(seqs, n_items=4)
    got = mine_skipgrams(db, min_support=min_support, min_len=min_len, max_len=max_len, max_gap=max_gap)
    want = frequent(brute_skipgrams(seqs, max_len, max_gap), min_support, min_len, max_len)
    assert as_dict(got) == want
    # deterministic order: (-support, items)
    assert [(-p.support, p.items) for p in got] == sorted((-p.support, p.items) for p in got)


@SETTINGS
@given(sequences, st.integers(1, 3), st.integers(1, 3), gaps)
def test_higher_support_gives_subset(seqs, min_support, step, max_gap):
    db = SequenceDB.from_ids(seqs, n_items=4)
    low = as_dict(mine_skipgrams(db, min_support=min_support, min_len=1, max_len=3, max_gap=max_gap))
    high = as_dict(mine_skipgrams(db, min_support=min_support + step, min_len=1, max_len=3, max_gap=max_gap))
    assert high.items() <= low.items()
    assert high == {k: v for k, v in low.items() if v[0] >= min_support + step}


@SETTINGS
@given(sequences, st.randoms(use_true_random=False), gaps)
def test_shuffling_changes_nothing(seqs, rnd, max_gap):
    db = SequenceDB.from_ids(seqs, n_items=4)
    base = mine_skipgrams(db, min_support=2, min_len=1, max_len=3, max_gap=max_gap)
    shuffled = list(seqs)
    rnd.shuffle(shuffled)
    db2 = SequenceDB.from_ids(shuffled, n_items=4)
    assert mine_skipgrams(db2, min_support=2, min_len=1, max_len=3, max_gap=max_gap) == base
    rows = list(range(len(seqs)))
    rnd.shuffle(rows)
    assert mine_skipgrams(db, rows, min_support=2, min_len=1, max_len=3, max_gap=max_gap) == base


@SETTINGS
@given(sequences, st.data(), gaps)
def test_rows_select_sequences(seqs, data, max_gap):
    rows = data.draw(st.lists(st.integers(0, max(len(seqs) - 1, 0)), unique=True)) if seqs else []
    db = SequenceDB.from_ids(seqs, n_items=4)
    sub = SequenceDB.from_ids([seqs[r] for r in rows], n_items=4)
    kw = dict(min_support=1, min_len=1, max_len=3, max_gap=max_gap)
    assert mine_skipgrams(db, np.array(rows, dtype=np.int64), **kw) == mine_skipgrams(sub, **kw)


def closed_oracle(freq, max_len, unbounded):
    """Closed patterns by the definition: no frequent super-pattern of one more item implying it, same support."""
    keep = {}
    for p, (sup, occ) in freq.items():
        if len(p) >= max_len:
            keep[p] = (sup, occ)
            continue
        exts = []
        for q, (qs, _) in freq.items():
            if len(q) != len(p) + 1 or qs != sup:
                continue
            if q[1:] == p or q[:-1] == p or (unbounded and any(q[:i] + q[i + 1 :] == p for i in range(len(q)))):
                exts.append(q)
        if not exts:
            keep[p] = (sup, occ)
    return keep


@SETTINGS
@given(sequences, st.integers(1, 3), gaps)
def test_closed_filter(seqs, min_support, max_gap):
    db = SequenceDB.from_ids(seqs, n_items=4)
    got = mine_skipgrams(db, min_support=min_support, min_len=1, max_len=3, max_gap=max_gap, closed=True)
    freq = frequent(brute_skipgrams(seqs, 3, max_gap), min_support, 1, 3)
    assert as_dict(got) == closed_oracle(freq, 3, max_gap is None)
    if max_gap is None:
        # unbounded gaps: same as "no frequent super-sequence (within max_len) with equal support"
        def is_subseq(p, q):
            it = iter(q)
            return all(x in it for x in p)

        classic = {
            p: v
            for p, v in freq.items()
            if len(p) == 3 or not any(len(q) > len(p) and qv[0] == v[0] and is_subseq(p, q) for q, qv in freq.items())
        }
        assert as_dict(got) == classic


def test_closed_filter_example():
    # "is going to be" x3: (is going be) has the support of (is be), (going be), (is going)
    words = [["it", "is", "going", "to", "be", "fine"]] * 3 + [["is", "it"]]
    db = SequenceDB.from_lists(words)
    pats = mine_skipgrams(db, min_support=3, min_len=2, max_len=3, max_gap=1, closed=True)
    strings = {format_skipgram(p.items, db) for p in pats}
    assert "is going be" in strings
    assert "is going" not in strings and "going be" not in strings  # both extend to "is going be", support 3
    assert "is be" not in strings  # gap 2 > max_gap 1: never an occurrence
    pats_all = mine_skipgrams(db, min_support=3, min_len=2, max_len=3, max_gap=1)
    assert set(closed_filter(pats_all, 3, unbounded=False)) == set(pats)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.lists(st.integers(0, 3), max_size=8), max_size=10), st.integers(1, 4))
def test_agrees_with_prefixspan_package(seqs, min_support):
    prefixspan = pytest.importorskip("prefixspan")
    ps = prefixspan.PrefixSpan(seqs)
    ps.minlen, ps.maxlen = 1, 3
    theirs = {tuple(p): s for s, p in ps.frequent(min_support)}
    db = SequenceDB.from_ids(seqs, n_items=4)
    ours = {p.items: p.support for p in mine_skipgrams(db, min_support=min_support, min_len=1, max_len=3, max_gap=None)}
    assert ours == theirs


@SETTINGS
@given(sequences, st.integers(1, 3), st.integers(1, 3))
def test_contiguous_ngrams_are_gap_zero(seqs, min_support, n):
    """POS n-grams: max_gap=0 gives exactly the contiguous n-grams, occurrences = n-gram tokens."""
    sup: Counter = Counter()
    occ: Counter = Counter()
    for seq in seqs:
        grams = [tuple(seq[i : i + n]) for i in range(len(seq) - n + 1)]
        occ.update(grams)
        sup.update(set(grams))
    want = {g: (sup[g], occ[g]) for g in sup if sup[g] >= min_support}
    db = SequenceDB.from_ids(seqs, n_items=4)
    assert as_dict(mine_skipgrams(db, min_support=min_support, min_len=n, max_len=n, max_gap=0)) == want


def test_frequent_items_by_pos_class():
    words = [["The", "dog", "runs"], ["A", "dog", "barks", "at", "the", "cat"], ["Run", "dog"]]
    tags = [["DT", "NN", "VBZ"], ["DT", "NN", "VBZ", "IN", "DT", "NN"], ["VB", "NN"]]
    wdb = SequenceDB.from_lists(words)
    tdb = SequenceDB.from_lists(tags)
    nouns = wdb.select_tokens(np.isin(tdb.tokens, [tdb.vocab.get("NN")]))
    got = {wdb.vocab[p.items[0]]: (p.support, p.occurrences) for p in frequent_items(nouns, min_support=1)}
    assert got == {"dog": (3, 3), "cat": (1, 1)}
    assert [wdb.vocab[p.items[0]] for p in frequent_items(nouns, [0, 1], min_support=2)] == ["dog"]


def test_empty_inputs_yield_nothing():
    assert mine_skipgrams(SequenceDB.from_ids([]), min_support=1, min_len=1) == []
    assert mine_skipgrams(SequenceDB.from_ids([[], []]), min_support=1, min_len=1) == []
    db = SequenceDB.from_ids([[1, 2], [], [2]])
    assert mine_skipgrams(db, [], min_support=1, min_len=1) == []
    want = {(1,): (1, 1), (2,): (2, 2), (1, 2): (1, 1)}
    assert as_dict(mine_skipgrams(db, min_support=1, min_len=1, max_len=5)) == want


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(min_support=1, max_len=0), ValueError, "max_len must be >= 1"),
        (dict(min_support=-1), ValueError, "min_support must be >= 1"),
        (dict(min_support=0), ValueError, "min_support must be >= 1"),
        (dict(min_support=2.5), TypeError, "min_support must be an integer"),
        (dict(min_support=True), TypeError, "min_support must be an integer"),
        (dict(min_support=1, min_len=0), ValueError, "min_len must be >= 1"),
        (dict(min_support=1, min_len=3, max_len=2), ValueError, "max_len .* must be >= min_len"),
        (dict(min_support=1, max_gap=-1), ValueError, "max_gap must be >= 0"),
    ],
)
def test_absurd_parameters_rejected(kwargs, error, match):
    db = SequenceDB.from_ids([[0, 1, 2]])
    with pytest.raises(error, match=match):
        mine_skipgrams(db, **kwargs)


def test_bad_rows_rejected():
    db = SequenceDB.from_ids([[0, 1], [1]])
    with pytest.raises(IndexError, match="out of range"):
        mine_skipgrams(db, [0, 2], min_support=1)
    with pytest.raises(ValueError, match="unique"):
        mine_skipgrams(db, [1, 1], min_support=1)


def test_default_min_support():
    assert default_min_support(10_000) == 100
    assert default_min_support(50) == 3
    assert default_min_support(0) == 3


def test_larger_random_input_matches_bruteforce():
    rnd = random.Random(7)
    seqs = [[rnd.randrange(6) for _ in range(rnd.randrange(0, 12))] for _ in range(60)]
    db = SequenceDB.from_ids(seqs, n_items=6)
    for gap in (None, 0, 1, 2):
        want = frequent(brute_skipgrams(seqs, 3, gap), 5, 1, 3)
        assert as_dict(mine_skipgrams(db, min_support=5, min_len=1, max_len=3, max_gap=gap)) == want


def test_many_patterns_grow_buffers():
    """Thousands of patterns (output and bucket buffers regrow many times), still exact."""
    seqs = [list(range(14)), list(range(13, -1, -1)), [0, 1, 0, 1, 0, 1, 2]]
    db = SequenceDB.from_ids(seqs)
    for gap in (None, 3):
        got = mine_skipgrams(db, min_support=1, min_len=1, max_len=4, max_gap=gap)
        assert len(got) > 1000
        assert as_dict(got) == frequent(brute_skipgrams(seqs, 4, gap), 1, 1, 4)
