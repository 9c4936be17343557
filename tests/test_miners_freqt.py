"""FREQT and the bracket format against a brute-force oracle (every connected node set enumerated)."""

from __future__ import annotations

import random
from collections import defaultdict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neurotext.miners import BracketError, SubtreePattern, TreeDB, format_tree, mine_subtrees, parse_bracket
from neurotext.miners.freqt import PAD, lex_order, mine_subtree_table, padded_pairs, row_keys

SETTINGS = settings(max_examples=80, deadline=None)

# A tree is (label, [children]); labels from a small alphabet so that labels repeat.
labels_st = st.sampled_from(["A", "B", "C"])
trees_st = st.recursive(
    st.builds(lambda lab: (lab, []), labels_st),
    lambda kids: st.builds(lambda lab, ks: (lab, ks), labels_st, st.lists(kids, min_size=1, max_size=4)),
    max_leaves=7,
)
maybe_empty_trees_st = st.one_of(st.none(), trees_st)  # None = the empty tree


def to_bracket(tree, compact=False) -> str:
    if tree is None:
        return ""
    lab, kids = tree
    sep = "" if compact else " "
    return "(" + lab + "".join(sep + to_bracket(k, compact) for k in kids) + ")"


def to_parents(tree) -> tuple[list[str], list[int]]:
    labels: list[str] = []
    parents: list[int] = []

    def walk(node, parent):
        labels.append(node[0])
        parents.append(parent)
        me = len(labels) - 1
        for k in node[1]:
            walk(k, me)

    if tree is not None:
        walk(tree, -1)
    return labels, parents


def brute_subtrees(trees, max_nodes):
    """{(labels, depths): (support, occurrences)} over all connected node sets of size <= max_nodes."""
    occ: dict[tuple, set] = defaultdict(set)
    for t, (labels, parents) in enumerate(trees):
        n = len(labels)
        children = [[] for _ in range(n)]
        depth = [0] * n
        for x, p in enumerate(parents):
            if p >= 0:
                children[p].append(x)
                depth[x] = depth[p] + 1
        seen: set[frozenset] = set()
        for root in range(n):
            stack = [frozenset([root])]
            while stack:
                nodes = stack.pop()
                if nodes in seen:
                    continue
                seen.add(nodes)
                order = sorted(nodes)  # preorder of the induced subtree = data preorder
                key = (tuple(labels[x] for x in order), tuple(depth[x] - depth[root] for x in order))
                occ[key].add((t, order[-1]))
                if len(nodes) < max_nodes:
                    stack.extend(nodes | {c} for x in nodes for c in children[x] if c not in nodes)
    return {k: (len({t for t, _ in v}), len(v)) for k, v in occ.items()}


def mined(db: TreeDB, **kw) -> dict[tuple, tuple[int, int]]:
    pats = mine_subtrees(db, **kw)
    out = {(tuple(db.vocab.decode(p.labels)), p.depths): (p.support, p.occurrences) for p in pats}
    assert len(out) == len(pats), "duplicate patterns"
    return out


def expect(trees, min_support, max_nodes, min_nodes=1):
    return {
        k: v for k, v in brute_subtrees(trees, max_nodes).items() if v[0] >= min_support and len(k[0]) >= min_nodes
    }


@SETTINGS
@given(st.lists(maybe_empty_trees_st, max_size=6), st.integers(1, 3), st.integers(1, 5), st.integers(1, 3))
def test_matches_bruteforce(trees, min_support, max_nodes, min_nodes):
    min_nodes = min(min_nodes, max_nodes)
    db = TreeDB.from_brackets([to_bracket(t) for t in trees])
    got = mined(db, min_support=min_support, max_nodes=max_nodes, min_nodes=min_nodes)
    assert got == expect([to_parents(t) for t in trees], min_support, max_nodes, min_nodes)


@SETTINGS
@given(st.lists(maybe_empty_trees_st, max_size=6), st.integers(1, 2), st.integers(1, 2))
def test_higher_support_gives_subset(trees, min_support, step):
    db = TreeDB.from_brackets([to_bracket(t) for t in trees])
    low = mined(db, min_support=min_support, max_nodes=4)
    high = mined(db, min_support=min_support + step, max_nodes=4)
    assert high == {k: v for k, v in low.items() if v[0] >= min_support + step}


@SETTINGS
@given(st.lists(maybe_empty_trees_st, max_size=6), st.randoms(use_true_random=False))
def test_shuffling_changes_nothing(trees, rnd):
    db = TreeDB.from_brackets([to_bracket(t) for t in trees])
    base = mined(db, min_support=2, max_nodes=4)
    shuffled = list(trees)
    rnd.shuffle(shuffled)
    assert mined(TreeDB.from_brackets([to_bracket(t) for t in shuffled]), min_support=2, max_nodes=4) == base
    rows = list(range(len(trees)))
    rnd.shuffle(rows)
    assert mined(db, rows=rows, min_support=2, max_nodes=4) == base


@SETTINGS
@given(st.lists(maybe_empty_trees_st, max_size=6), st.data())
def test_rows_select_trees(trees, data):
    rows = data.draw(st.lists(st.integers(0, max(len(trees) - 1, 0)), unique=True)) if trees else []
    db = TreeDB.from_brackets([to_bracket(t) for t in trees])
    got = mined(db, rows=np.array(rows, dtype=np.int64), min_support=1, max_nodes=4)
    assert got == expect([to_parents(trees[r]) for r in rows], 1, 4)


@SETTINGS
@given(st.lists(maybe_empty_trees_st, max_size=4))
def test_bracket_round_trip(trees):
    db = TreeDB.from_brackets([to_bracket(t, compact=bool(i % 2)) for i, t in enumerate(trees)])
    assert len(db) == len(trees)
    for i, t in enumerate(trees):
        assert db.to_bracket(i) == to_bracket(t)
        assert db.to_bracket(i, compact=True) == to_bracket(t, compact=True)
        labels, parents = to_parents(t)
        assert parse_bracket(to_bracket(t)) == (labels, parents)


def test_deep_and_wide_trees():
    chain = ("A", [])
    for k in range(40):
        chain = ("AB"[k % 2], [chain])
    star = ("R", [("ABC"[k % 3], []) for k in range(22)])
    mixed = ("R", [("A", [("B", [("A", [])]), ("A", [])]) for _ in range(5)] + [("B", [])])
    trees = [chain, star, mixed, ("A", []), None]
    db = TreeDB.from_brackets([to_bracket(t) for t in trees])
    for min_support in (1, 2):
        assert mined(db, min_support=min_support, max_nodes=5) == expect(
            [to_parents(t) for t in trees], min_support, 5
        )
    # a single-node tree yields its label only
    single = TreeDB.from_brackets(["(X)"])
    assert mined(single, min_support=1, max_nodes=5) == {(("X",), (0,)): (1, 1)}


def test_larger_random_forest_matches_bruteforce():
    rnd = random.Random(3)

    def rand_tree(n):
        labels = [rnd.choice("ABCD") for _ in range(n)]
        parents = [-1]
        # preorder: a new node hangs below the previous node or one of its ancestors
        for x in range(1, n):
            path = [x - 1]
            while parents[path[-1]] >= 0:
                path.append(parents[path[-1]])
            parents.append(rnd.choice(path))
        return labels, parents

    trees = [rand_tree(rnd.randrange(1, 16)) for _ in range(40)]
    db = TreeDB.from_parents(trees)
    assert mined(db, min_support=4, max_nodes=5) == expect(trees, 4, 5)


def test_output_order_and_bracket_strings():
    db = TreeDB.from_brackets(["(NP (DT) (NN))", "(NP(DT)(NN))", "(NP (NN))"])
    pats = mine_subtrees(db, min_support=2, max_nodes=3)
    keys = [(-p.support, tuple(zip(p.labels, p.depths, strict=True))) for p in pats]
    assert keys == sorted(keys)
    strings = {p.to_bracket(db): p.support for p in pats}
    assert strings["(NP (DT) (NN))"] == 2
    assert strings["(NP (NN))"] == 3
    assert {p.to_bracket(db, compact=True) for p in pats} >= {"(NP(DT)(NN))", "(NP)"}
    assert isinstance(pats[0], SubtreePattern)


@SETTINGS
@given(st.lists(maybe_empty_trees_st, max_size=6), st.integers(1, 3), st.integers(1, 5))
def test_order_is_support_then_preorder_pairs(trees, min_support, max_nodes):
    """The vectorized order equals Python's sort by (-support, preorder (label, depth) tuples), and the table holds
    the same patterns as the objects."""
    db = TreeDB.from_brackets([to_bracket(t) for t in trees])
    pats = mine_subtrees(db, min_support=min_support, max_nodes=max_nodes)
    keys = [(-p.support, tuple(zip(p.labels, p.depths, strict=True))) for p in pats]
    assert keys == sorted(keys)
    table = mine_subtree_table(db, min_support=min_support, max_nodes=max_nodes)
    assert table.patterns() == pats


@SETTINGS
@given(
    st.lists(st.lists(st.tuples(st.integers(-1, 40), st.integers(0, 4)), min_size=1, max_size=5), max_size=30),
    st.booleans(),
)
def test_row_keys_and_lex_order_compare_like_tuples(sequences, huge):
    """Padded rows: their integer keys order and tie exactly like the Python tuples of (label, depth) pairs (a
    prefix first, -1 labels included); with labels too large for 62-bit keys, `lex_order` compares whole rows."""
    scale = 10**9 if huge else 1
    offsets = np.zeros(len(sequences) + 1, np.int64)
    np.cumsum([len(x) for x in sequences], out=offsets[1:])
    labels = np.array([lab * scale for q in sequences for lab, _ in q], np.int64)
    depths = np.array([dep for q in sequences for _, dep in q], np.int64)
    rows = padded_pairs(offsets, labels, depths)
    tuples = [tuple((lab * scale, dep) for lab, dep in q) for q in sequences]
    keys = row_keys(rows)
    assert keys is not None or huge  # small labels always fit
    if keys is not None:
        for i in range(len(tuples)):
            for j in range(len(tuples)):
                assert (keys[i] < keys[j]) == (tuples[i] < tuples[j])
                assert (keys[i] == keys[j]) == (tuples[i] == tuples[j])
    assert [tuples[i] for i in lex_order(rows)] == sorted(tuples)


def test_empty_inputs_yield_nothing():
    assert mine_subtrees(TreeDB.from_brackets([]), min_support=1) == []
    assert mine_subtrees(TreeDB.from_brackets(["", "  "]), min_support=1) == []
    assert mine_subtrees(TreeDB.from_brackets(["(A)"]), rows=[], min_support=1) == []


@pytest.mark.parametrize(
    ("text", "position", "match"),
    [
        ("(A (B)", 6, "unclosed"),
        ("(A))", 3, "unbalanced"),
        ("A", 0, "expected '\\('"),
        ("(A x)", 3, "unexpected label 'x'"),
        ("()", 1, "expected a label"),
        ("(A)(B)", 3, "after the end"),
        ("((A))", 1, "expected a label"),
        ("(", 1, "string ended"),
        ("(A (B))  x", 9, "after the end"),
    ],
)
def test_malformed_bracket_names_tree_and_position(text, position, match):
    with pytest.raises(BracketError, match=match) as info:
        TreeDB.from_brackets(["(OK (FINE))", "", text])
    assert info.value.tree_index == 2
    assert info.value.position == position
    assert str(info.value).startswith(f"tree 2: character {position}:")


def test_format_tree():
    assert format_tree(["S", "NP", "PRP", "VP"], [0, 1, 2, 1]) == "(S (NP (PRP)) (VP))"
    assert format_tree(["S", "NP", "PRP", "VP"], [0, 1, 2, 1], compact=True) == "(S(NP(PRP))(VP))"
    assert format_tree([], []) == ""
    with pytest.raises(ValueError):
        format_tree(["A", "B"], [0, 2])


def test_from_parents_rejects_non_preorder():
    with pytest.raises(ValueError, match="preorder"):
        TreeDB.from_parents([(["A", "B", "C", "D"], [-1, 0, 1, 1]), (["A", "B", "C", "D"], [-1, 0, 0, 1])])
    with pytest.raises(ValueError, match="root"):
        TreeDB.from_parents([(["A", "B"], [-1, -1])])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(min_support=1, max_nodes=0), ValueError, "max_nodes must be >= 1"),
        (dict(min_support=-3), ValueError, "min_support must be >= 1"),
        (dict(min_support=1, min_nodes=4, max_nodes=3), ValueError, "max_nodes .* must be >= min_nodes"),
        (dict(min_support="2"), TypeError, "integer"),
    ],
)
def test_absurd_parameters_rejected(kwargs, error, match):
    db = TreeDB.from_brackets(["(A (B))"])
    with pytest.raises(error, match=match):
        mine_subtrees(db, **kwargs)


def test_many_patterns_grow_buffers():
    """A wide tree of distinct labels has thousands of subtrees (every buffer regrows), still exact."""
    star = ("R", [(f"L{k}", [("X", [])] if k % 3 == 0 else []) for k in range(14)])
    trees = [star, ("R", [("L1", []), ("L2", [])])]
    db = TreeDB.from_brackets([to_bracket(t) for t in trees])
    got = mined(db, min_support=1, max_nodes=5)
    assert len(got) > 1000
    assert got == expect([to_parents(t) for t in trees], 1, 5)


@settings(max_examples=40, deadline=None)
@given(st.lists(maybe_empty_trees_st, max_size=6), st.integers(1, 3))
def test_label_pruning_fallback_matches_bruteforce(trees, min_support):
    """With many distinct labels the miner prunes by single labels instead of label pairs: same result."""
    from neurotext.miners import freqt

    db = TreeDB.from_brackets([to_bracket(t) for t in trees])
    saved = freqt._MAX_PAIR_LABELS
    freqt._MAX_PAIR_LABELS = 0
    try:
        got = mined(db, min_support=min_support, max_nodes=4)
    finally:
        freqt._MAX_PAIR_LABELS = saved
    assert got == expect([to_parents(t) for t in trees], min_support, 4)
