"""Background support: count given patterns in another database with the miners' exact semantics.

Each neuron's candidate patterns (mined from its top K) are scored against the background sample, which is the
same encoded corpus, so patterns and databases share one vocabulary. Nothing is re-mined: an index of posting
lists is built once per (database, rows) and reused for every neuron.

Skip-n-grams (`count_skipgrams`)
    `SequenceIndex`: for every item, the sorted ``(sequence, position)`` list of its tokens in the selected rows.
    A pattern is evaluated left to right: its first item's postings are the end positions of the 1-item prefix;
    each further item joins the current end positions with that item's postings, sequence by sequence (galloping
    over sequences absent from either side), keeping the positions ``p`` with some end ``e`` such that
    ``0 <= p - e - 1 <= max_gap`` (or, unbounded, ``p > first end``). Support and occurrences are those of
    `neurotext.miners.prefixspan` (sequences; distinct end positions). Patterns are processed in lexicographic
    order and share the work of common prefixes.

Subtrees (`count_subtrees`)
    `TreeIndex`: for every label, the sorted nodes that carry it in the selected trees. A pattern is evaluated in
    preorder by rightmost expansion restricted to its own next node: the root's postings are the first occurrence
    list; each further node (label ``l``, attached at pattern depth ``d``) maps every current rightmost-leaf image
    to the children (``d`` = the rightmost leaf's depth) or right siblings (of the rightmost-path image at depth
    ``d + 1``) labelled ``l``; duplicates are merged with a per-node stamp. The index holds the selected trees as
    a compact forest with dense labels (`TreeDB.subset`), so scratch memory is O(nodes of the rows). Support and
    occurrences are those of `neurotext.miners.freqt` (trees; distinct rightmost-leaf images).

Unknown items or labels (id -1 or out of range) have support 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numba import njit

from ._common import check_max_gap, gallop
from .encoding import SequenceDB, TreeDB, check_rows
from .freqt import SubtreePattern, SubtreeTable, dense_labels, lex_order, padded_pairs, parse_subtree
from .prefixspan import Pattern

__all__ = ["Counts", "SequenceIndex", "TreeIndex", "count_skipgrams", "count_subtrees"]


class Counts(NamedTuple):
    """Per-pattern counts, in the order the patterns were given: int64 ``[n_patterns]`` each."""

    support: np.ndarray
    occurrences: np.ndarray


@dataclass(frozen=True, eq=False)
class SequenceIndex:
    """Posting lists of a `SequenceDB` restricted to `rows`.

    Attributes:
        db: the database.
        rows: int64 ``[n_rows]`` sorted selected sequences; local sequence ``s`` is ``db`` row ``rows[s]``.
        post_offsets: int64 ``[n_items + 1]``: item ``i``'s postings are ``post_offsets[i]:post_offsets[i + 1]``.
        post_seq: int64 ``[n_postings]`` local sequence of each posting.
        post_pos: int64 ``[n_postings]`` global token position of each posting (sorted within an item).
    """

    db: SequenceDB
    rows: np.ndarray
    post_offsets: np.ndarray
    post_seq: np.ndarray
    post_pos: np.ndarray

    @classmethod
    def build(cls, db: SequenceDB, rows: Sequence[int] | np.ndarray | None = None) -> SequenceIndex:
        """Index the sequences `rows` of `db` (all when None): O(n_tokens log n_tokens), vectorised."""
        rows_arr = check_rows(rows, len(db))
        starts = db.offsets[rows_arr]
        lengths = db.offsets[rows_arr + 1] - starts
        total = int(lengths.sum())
        seq = np.repeat(np.arange(rows_arr.size, dtype=np.int64), lengths)
        pos = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths) + starts[seq]
        items = db.tokens[pos]
        order = np.argsort(items, kind="stable")
        post_offsets = np.zeros(db.n_items + 1, dtype=np.int64)
        np.cumsum(np.bincount(items, minlength=db.n_items), out=post_offsets[1:])
        return cls(db, rows_arr, post_offsets, seq[order], pos[order])


@dataclass(frozen=True, eq=False)
class TreeIndex:
    """The trees `rows` of a `TreeDB` as a compact forest with label posting lists.

    Attributes:
        db: the database; rows: int64 ``[n_rows]`` sorted selected trees.
        forest: ``db.subset(rows)`` (local node ids).
        labels: int32 ``[n_nodes]`` dense local label ids of the forest's nodes.
        to_local: int64 ``[db.n_labels]`` global label id -> local id (-1 when absent from the rows).
        post_offsets: int64 ``[n_local_labels + 1]``; post_nodes: int64 ``[n_nodes]`` forest nodes sorted by label.
    """

    db: TreeDB
    rows: np.ndarray
    forest: TreeDB
    labels: np.ndarray
    to_local: np.ndarray
    post_offsets: np.ndarray
    post_nodes: np.ndarray

    @classmethod
    def build(cls, db: TreeDB, rows: Sequence[int] | np.ndarray | None = None) -> TreeIndex:
        """Index the trees `rows` of `db` (all when None)."""
        rows_arr = check_rows(rows, len(db), "trees")
        forest = db.subset(rows_arr)
        local, to_global, to_local = dense_labels(forest.labels, forest.n_labels)
        order = np.argsort(local, kind="stable")
        post_offsets = np.zeros(to_global.size + 1, dtype=np.int64)
        np.cumsum(np.bincount(local, minlength=to_global.size), out=post_offsets[1:])
        return cls(db, rows_arr, forest, local, to_local, post_offsets, order.astype(np.int64))


@njit(cache=True)
def _join(eseq, epos, ne, pseq, ppos, pa, pb, gap, oseq, opos):  # pragma: no cover - compiled
    """End positions of prefix + item: ends ``[0, ne)`` joined with the item's postings ``[pa, pb)``.

    Returns (number written to oseq/opos, support, occurrences). Unbounded (`gap` < 0): one entry per sequence
    (the first new end), occurrences count all of them.
    """
    i = 0
    j = pa
    n = 0
    sup = 0
    occ = 0
    while i < ne and j < pb:
        s = eseq[i]
        t = pseq[j]
        if s < t:
            i = gallop(eseq, i, ne, t)
            continue
        if t < s:
            j = gallop(pseq, j, pb, s)
            continue
        i2 = i + 1
        while i2 < ne and eseq[i2] == s:
            i2 += 1
        j2 = j + 1
        while j2 < pb and pseq[j2] == s:
            j2 += 1
        if gap < 0:
            e = epos[i]
            first = True
            for q in range(j, j2):
                p = ppos[q]
                if p > e:
                    occ += 1
                    if first:
                        oseq[n] = s
                        opos[n] = p
                        n += 1
                        first = False
            if not first:
                sup += 1
        else:
            k = i
            hit = False
            for q in range(j, j2):
                p = ppos[q]
                while k + 1 < i2 and epos[k + 1] < p:
                    k += 1
                e = epos[k]
                if e < p and p - e - 1 <= gap:
                    oseq[n] = s
                    opos[n] = p
                    n += 1
                    hit = True
            if hit:
                sup += 1
        i = i2
        j = j2
    if gap >= 0:
        occ = n
    return n, sup, occ


@njit(cache=True)
def _skipgram_level(d, it, n_items, post_off, post_seq, post_pos, gap, lseq, lpos, ln):  # pragma: no cover - compiled
    """End positions of a pattern's ``d + 1``-item prefix (last item `it`) into ``lseq[d]``/``lpos[d]``, from the
    level ``d - 1`` ends. Returns (ends written, support, occurrences). Unknown items (out of range) match nothing.

    The first level keeps one end per sequence when unbounded (`gap` < 0), every posting otherwise."""
    pa = 0
    pb = 0
    if it >= 0 and it < n_items:
        pa = post_off[it]
        pb = post_off[it + 1]
    if d > 0:
        return _join(lseq[d - 1], lpos[d - 1], ln[d - 1], post_seq, post_pos, pa, pb, gap, lseq[d], lpos[d])
    n = 0
    sup = 0
    last = -1
    for q in range(pa, pb):
        s = post_seq[q]
        if s != last or gap >= 0:
            if s != last:
                sup += 1
            lseq[0, n] = s
            lpos[0, n] = post_pos[q]
            n += 1
        last = s
    return n, sup, pb - pa


@njit(cache=True)
def _count_skipgrams_kernel(
    post_off, post_seq, post_pos, pat_items, pat_off, order, n_items, gap, cap, max_plen
):  # pragma: no cover - compiled
    n_pat = order.size
    sup_out = np.zeros(pat_off.size - 1, np.int64)
    occ_out = np.zeros(pat_off.size - 1, np.int64)
    lseq = np.empty((max_plen, cap), np.int64)
    lpos = np.empty((max_plen, cap), np.int64)
    ln = np.zeros(max_plen, np.int64)
    lsup = np.zeros(max_plen, np.int64)
    locc = np.zeros(max_plen, np.int64)
    prev = -1
    for t in range(n_pat):
        k = order[t]
        a = pat_off[k]
        length = pat_off[k + 1] - a
        c = 0
        if prev >= 0:
            pa_ = pat_off[prev]
            plen = pat_off[prev + 1] - pa_
            while c < length and c < plen and pat_items[a + c] == pat_items[pa_ + c]:
                c += 1
        for d in range(c, length):
            it = pat_items[a + d]
            r = _skipgram_level(d, it, n_items, post_off, post_seq, post_pos, gap, lseq, lpos, ln)
            ln[d] = r[0]
            lsup[d] = r[1]
            locc[d] = r[2]
        sup_out[k] = lsup[length - 1]
        occ_out[k] = locc[length - 1]
        prev = k
    return sup_out, occ_out


def count_skipgrams(
    target: SequenceDB | SequenceIndex,
    patterns: Sequence[Pattern | Sequence[int] | Sequence[str]],
    *,
    max_gap: int | None,
    rows: Sequence[int] | np.ndarray | None = None,
) -> Counts:
    """Support and occurrences of each pattern in `target` (a database with `rows`, or a prebuilt index).

    Patterns are `Pattern` objects or item sequences (ids, or labels looked up in the database's vocabulary).
    Semantics are those of `mine_skipgrams` with the same `max_gap`. Build a `SequenceIndex` once to count many
    pattern lists against the same background.
    """
    gap = check_max_gap(max_gap)
    if isinstance(target, SequenceIndex):
        if rows is not None:
            raise ValueError("rows are fixed by the SequenceIndex; pass rows to SequenceIndex.build instead")
        index = target
    else:
        index = SequenceIndex.build(target, rows)
    seqs, lengths, pat_off, pat_items = _sequence_patterns(index, patterns)
    if not seqs:
        z = np.zeros(0, np.int64)
        return Counts(z, z.copy())
    db = index.db
    valid = (pat_items >= 0) & (pat_items < db.n_items)
    counts = np.diff(index.post_offsets)
    cap = int(counts[pat_items[valid]].max()) if valid.any() else 0
    sup, occ = _count_skipgrams_kernel(
        index.post_offsets, index.post_seq, index.post_pos, pat_items, pat_off,
        lex_order(padded_pairs(pat_off, pat_items, np.zeros_like(pat_items))),
        np.int64(db.n_items), np.int64(gap), np.int64(max(cap, 1)), np.int64(lengths.max()),
    )
    return Counts(sup, occ)


@njit(cache=True)
def _subtree_level(
    d, a, pat_lab, pat_dep, n_labels, labels, parent, first_child, next_sibling, post_off, post_nodes, stamp, token,
    lnode, ln,
):  # pragma: no cover - compiled
    """Rightmost-leaf images of the ``d + 1``-node prefix of the pattern starting at ``pat_off`` entry `a` into
    ``lnode[d]``, from the level ``d - 1`` images (kept in tree order); returns how many. `token` must be fresh
    (the per-node `stamp` merges duplicates). Unknown labels (out of range) match nothing."""
    lab = pat_lab[a + d]
    n = 0
    if lab < 0 or lab >= n_labels:
        return n
    if d == 0:
        for q in range(post_off[lab], post_off[lab + 1]):
            lnode[0, n] = post_nodes[q]
            n += 1
        return n
    # occurrences stay in tree order: candidates follow their parent occurrence's order
    rml = pat_dep[a + d - 1]
    attach = pat_dep[a + d] - 1
    for q in range(ln[d - 1]):
        r = lnode[d - 1, q]
        if attach == rml:
            x = first_child[r]
        else:
            x = r
            for _ in range(rml - attach - 1):
                x = parent[x]
            x = next_sibling[x]
        while x >= 0:
            if labels[x] == lab and stamp[x] != token:
                stamp[x] = token
                lnode[d, n] = x
                n += 1
            x = next_sibling[x]
    return n


@njit(cache=True)
def _tree_runs(node_tree, nodes, n, out):  # pragma: no cover - compiled
    """Number of distinct trees of ``nodes[:n]`` (in tree order); writes them to `out` unless it is empty."""
    w = 0
    last = -1
    for q in range(n):
        t = node_tree[nodes[q]]
        if t != last:
            if out.size:
                out[w] = t
            w += 1
            last = t
    return w


@njit(cache=True)
def _count_subtrees_kernel(
    labels, parent, first_child, next_sibling, node_tree, post_off, post_nodes, pat_lab, pat_dep, pat_off, order,
    n_labels, cap, max_plen,
):  # pragma: no cover - compiled
    n_pat = order.size
    sup_out = np.zeros(pat_off.size - 1, np.int64)
    occ_out = np.zeros(pat_off.size - 1, np.int64)
    lnode = np.empty((max_plen, cap), np.int64)
    ln = np.zeros(max_plen, np.int64)
    lsup = np.zeros(max_plen, np.int64)
    stamp = np.full(labels.size, -1, np.int64)
    token = 0
    prev = -1
    for t in range(n_pat):
        k = order[t]
        a = pat_off[k]
        length = pat_off[k + 1] - a
        c = 0
        if prev >= 0:
            pa_ = pat_off[prev]
            plen = pat_off[prev + 1] - pa_
            while c < length and c < plen and pat_lab[a + c] == pat_lab[pa_ + c] and pat_dep[a + c] == pat_dep[pa_ + c]:
                c += 1
        for d in range(c, length):
            token += 1
            n = _subtree_level(
                d, a, pat_lab, pat_dep, n_labels, labels, parent, first_child, next_sibling, post_off, post_nodes,
                stamp, token, lnode, ln,
            )  # fmt: skip
            ln[d] = n
            lsup[d] = _tree_runs(node_tree, lnode[d], n, lnode[d][:0])
        sup_out[k] = lsup[length - 1]
        occ_out[k] = ln[length - 1]
        prev = k
    return sup_out, occ_out


def count_subtrees(
    target: TreeDB | TreeIndex,
    patterns: SubtreeTable | Sequence[SubtreePattern | str | tuple[Sequence[int], Sequence[int]]],
    *,
    rows: Sequence[int] | np.ndarray | None = None,
) -> Counts:
    """Support (trees) and occurrences (rightmost-leaf images) of each subtree pattern in `target`.

    Patterns are a `SubtreeTable`, or a sequence of `SubtreePattern` objects, bracket strings (labels looked up in
    the database's vocabulary) or ``(labels, depths)`` pairs in preorder. Semantics are those of `mine_subtrees`.
    Build a `TreeIndex` once to count many pattern lists against the same background.
    """
    if isinstance(target, TreeIndex):
        if rows is not None:
            raise ValueError("rows are fixed by the TreeIndex; pass rows to TreeIndex.build instead")
        index = target
    else:
        index = TreeIndex.build(target, rows)
    lengths, pat_off, pat_lab, pat_dep, order = _subtree_patterns(index, patterns)
    if lengths.size == 0:
        z = np.zeros(0, np.int64)
        return Counts(z, z.copy())
    n_local = index.post_offsets.size - 1
    counts = np.diff(index.post_offsets)
    valid = pat_lab >= 0
    cap = int(counts[pat_lab[valid]].max()) if valid.any() else 0
    f = index.forest
    sup, occ = _count_subtrees_kernel(
        index.labels, f.parent, f.first_child, f.next_sibling, f.node_tree, index.post_offsets, index.post_nodes,
        pat_lab, pat_dep, pat_off, order, np.int64(n_local), np.int64(max(cap, 1)), np.int64(lengths.max()),
    )
    return Counts(sup, occ)


def _sequence_patterns(
    index: SequenceIndex, patterns: Sequence[Pattern | Sequence[int] | Sequence[str]]
) -> tuple[list[tuple[int, ...]], np.ndarray, np.ndarray, np.ndarray]:
    """Patterns as item tuples (labels looked up in the index's vocabulary) and flattened: (item tuples, int64
    lengths ``[n]``, int64 offsets ``[n + 1]``, int64 items ``[total]``). Raises on an empty pattern."""
    seqs: list[tuple[int, ...]] = []
    for k, p in enumerate(patterns):
        items = p.items if isinstance(p, Pattern) else tuple(index.db.item_id(x) for x in p)
        if not items:
            raise ValueError(f"pattern {k} is empty")
        seqs.append(tuple(int(x) for x in items))
    n = len(seqs)
    lengths = np.fromiter((len(x) for x in seqs), dtype=np.int64, count=n)
    pat_off = np.zeros(n + 1, np.int64)
    np.cumsum(lengths, out=pat_off[1:])
    pat_items = np.fromiter((x for q in seqs for x in q), dtype=np.int64, count=int(pat_off[-1]))
    return seqs, lengths, pat_off, pat_items


def _subtree_patterns(
    index: TreeIndex, patterns: SubtreeTable | Sequence[SubtreePattern | str | tuple[Sequence[int], Sequence[int]]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Patterns flattened: (int64 lengths ``[n]``, int64 offsets ``[n + 1]``, int64 local labels ``[total]`` (-1:
    absent from the index's rows), int64 depths ``[total]``, int64 lexicographic order ``[n]``). Raises on a
    malformed pattern."""
    if isinstance(patterns, SubtreeTable):
        pat_off, glob, pat_dep = patterns.offsets, patterns.labels, patterns.depths
    else:
        pat_off, glob, pat_dep = _flatten_subtrees(index, patterns)
    lengths = np.diff(pat_off)
    _check_depths_flat(lengths, pat_off, glob, pat_dep)
    known = (glob >= 0) & (glob < index.to_local.size)  # the shared vocabulary may have grown since build()
    pat_lab = np.full(glob.size, -1, dtype=np.int64)
    pat_lab[known] = index.to_local[glob[known]]
    return lengths, pat_off, pat_lab, pat_dep, lex_order(padded_pairs(pat_off, glob, pat_dep))


def _flatten_subtrees(
    index: TreeIndex, patterns: Sequence[SubtreePattern | str | tuple[Sequence[int], Sequence[int]]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(int64 offsets ``[n + 1]``, int64 global labels ``[total]``, int64 depths ``[total]``) of `patterns`."""
    labels: list[tuple[int, ...]] = []
    depths: list[tuple[int, ...]] = []
    for k, p in enumerate(patterns):
        if isinstance(p, SubtreePattern):
            labs, deps = p.labels, p.depths
        elif isinstance(p, str):
            try:
                labs, deps = parse_subtree(p, index.db.vocab)
            except ValueError as err:
                raise ValueError(f"pattern {k}: {err}") from None
        else:
            labs, deps = tuple(int(x) for x in p[0]), tuple(int(x) for x in p[1])
        if len(labs) == 0 or len(labs) != len(deps):
            _check_depths(k, labs, deps)
        labels.append(labs)
        depths.append(deps)
    table = SubtreeTable.from_pairs(labels, depths)
    return table.offsets, table.labels, table.depths


def _check_depths_flat(lengths: np.ndarray, offsets: np.ndarray, labels: np.ndarray, depths: np.ndarray) -> None:
    """Every pattern non-empty, rooted at depth 0 and a preorder (each depth in 1..previous + 1); raises
    `_check_depths`' error for the first that is not."""
    starts = offsets[:-1]
    bad = lengths == 0
    bad[~bad] = depths[starts[~bad]] != 0
    step = np.diff(depths, prepend=0)
    inner = np.ones(depths.size, dtype=bool)
    inner[starts[lengths > 0]] = False
    wrong = inner & ((depths < 1) | (step > 1))
    if wrong.any():
        owner = np.repeat(np.arange(lengths.size), lengths)
        bad[owner[wrong]] = True
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        _check_depths(k, labels[offsets[k] : offsets[k + 1]].tolist(), depths[offsets[k] : offsets[k + 1]].tolist())


def _check_depths(k: int, labels: Sequence[int], depths: Sequence[int]) -> None:
    if len(labels) == 0:
        raise ValueError(f"pattern {k} is empty")
    if len(labels) != len(depths):
        raise ValueError(f"pattern {k}: {len(labels)} labels but {len(depths)} depths")
    if depths[0] != 0:
        raise ValueError(f"pattern {k}: the root must have depth 0")
    for i in range(1, len(depths)):
        if not 1 <= depths[i] <= depths[i - 1] + 1:
            raise ValueError(f"pattern {k}: depths are not a preorder (node {i} has depth {depths[i]})")
