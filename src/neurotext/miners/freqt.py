"""FREQT: frequent induced ordered subtrees of labelled ordered trees (Asai et al. 2002), exact, in numba.

Semantics
    A pattern is a labelled ordered tree, stored in preorder as ``labels`` and ``depths`` (root depth 0). It occurs
    in a data tree through an *embedding*: an injective map of pattern nodes to data nodes that preserves labels,
    parent-child edges (induced, not ancestor-descendant) and the left-to-right order of siblings; siblings need
    not be adjacent in the data. Equivalently, an occurrence is a connected set of data nodes whose induced subtree,
    children kept in data order, has the pattern's shape and labels.

    * ``support``: document frequency, the number of trees with at least one occurrence (pruning uses it).
    * ``occurrences``: the number of distinct ``(tree, rightmost leaf)`` pairs, where the rightmost leaf is the
      image of the pattern's last node in preorder: the size of FREQT's rightmost-occurrence list. For a single
      node it is the number of nodes with that label.

    The background counter (`neurotext.miners.background.count_subtrees`) uses exactly these definitions.

Algorithm
    Rightmost expansion: a pattern of k nodes grows by one node attached as the new last child of a node on its
    rightmost path, so every pattern is generated exactly once. The occurrence list holds the distinct images of
    the rightmost leaf; the image of the rightmost path follows from it by walking parent links (edges are
    induced), so candidates for a new node attached at pattern depth ``d`` are the children of the rightmost leaf's
    image (``d`` = its depth) or the right siblings of the image of the rightmost-path node at depth ``d + 1``.
    Candidates whose edge (parent label, child label) is in fewer than ``min_support`` trees are skipped (every
    edge of a frequent pattern is a frequent 2-node pattern; with more than 1,024 distinct labels, those with an
    infrequent label); the rest are grouped by (attach depth, label) with a counting sort, deduplicated with a
    per-node stamp, counted (support = distinct trees) and the frequent ones become the next level of an explicit
    depth-first stack, all in O(candidates). Patterns are bounded by ``max_nodes``. The selected trees are first
    copied into a compact forest (`TreeDB.subset`) with densely renumbered labels, so scratch memory is O(nodes of
    the subset).

Output order is deterministic: by decreasing support, then the preorder sequence of (label id, depth) pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numba import njit
from numba.typed import List

from ._common import check_int, grow
from .encoding import TreeDB, Vocab, check_rows, format_tree, parse_bracket

__all__ = [
    "SubtreePattern", "SubtreeTable", "closed_subtrees", "lex_order", "mine_subtree_table", "mine_subtrees",
    "padded_pairs", "parse_subtree", "row_keys",
]  # fmt: skip

#: Fills `padded_pairs` rows after a pattern's last node: below every label (-1 = unknown included) and depth.
PAD = np.iinfo(np.int64).min


@dataclass(frozen=True, slots=True)
class SubtreePattern:
    """A subtree pattern in preorder (label ids and depths, root depth 0) with support and occurrences."""

    labels: tuple[int, ...]
    depths: tuple[int, ...]
    support: int
    occurrences: int

    @property
    def size(self) -> int:
        """Number of nodes."""
        return len(self.labels)

    def to_bracket(self, vocab: Vocab | TreeDB, compact: bool = False) -> str:
        """``(NP (DT) (NN))`` (readable) or ``(NP(DT)(NN))`` (compact)."""
        v = vocab.vocab if isinstance(vocab, TreeDB) else vocab
        return format_tree(v.decode(self.labels), self.depths, compact)


def parse_subtree(text: str, vocab: Vocab, intern: bool = False) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """A bracket string as pattern ``(labels, depths)``; unknown labels get id -1 unless `intern` is set."""
    names, parents = parse_bracket(text)
    if not names:
        raise ValueError("a subtree pattern cannot be empty")
    depths: list[int] = []
    for p in parents:
        depths.append(0 if p < 0 else depths[p] + 1)
    ids = tuple(vocab.intern(x) if intern else vocab.get(x) for x in names)
    return ids, tuple(depths)


def dense_labels(labels: np.ndarray, n_labels: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Renumber the labels present in `labels` densely, so kernel scratch is bounded by the data, not the vocab.

    Returns (local labels int32 ``[n]``, local -> global int64 ``[n_local]``, global -> local int64 ``[n_labels]``
    with -1 for labels absent from `labels`).
    """
    present = np.flatnonzero(np.bincount(labels, minlength=n_labels) > 0)
    to_local = np.full(max(n_labels, 1), -1, dtype=np.int64)
    to_local[present] = np.arange(present.size)
    return to_local[labels].astype(np.int32), present.astype(np.int64), to_local


_MAX_PAIR_LABELS = 1024


@njit(cache=True)
def _group_by_key(
    ne, cand_key, cand_node, key_count, key_touched, sorted_node
):  # pragma: no cover - compiled
    """Stable counting sort of candidates ``[0, ne)`` by key. Returns the number of distinct keys; afterwards the
    keys (ascending) are ``key_touched[:nk]``, group ``t`` ends at ``key_count[key_touched[t]]`` in `sorted_node`.
    The caller resets ``key_count`` for the touched keys."""
    nk = 0
    for e in range(ne):
        k = cand_key[e]
        if key_count[k] == 0:
            key_touched[nk] = k
            nk += 1
        key_count[k] += 1
    key_touched[:nk] = np.sort(key_touched[:nk])
    pos = 0
    for t in range(nk):
        k = key_touched[t]
        c = key_count[k]
        key_count[k] = pos
        pos += c
    for e in range(ne):
        k = cand_key[e]
        w = key_count[k]
        sorted_node[w] = cand_node[e]
        key_count[k] = w + 1
    return nk


@njit(cache=True)
def _expand(
    labels, parent, first_child, next_sibling, node_tree, n_labels, min_support, use_pairs, freq_pair, freq_label,
    nodes, a, b, rml_depth, cand_key, cand_node, sorted_node, key_count, key_touched, stamp, token,
    out_node, bstart, bkey, bsup, bocc,
):  # pragma: no cover - compiled
    """Rightmost-expand the occurrence list ``nodes[a:b]`` of a pattern whose rightmost leaf has depth `rml_depth`.

    Candidates whose edge (parent label, label) is in fewer than `min_support` trees are skipped: every edge of a
    frequent pattern is itself a frequent 2-node pattern (with `use_pairs`; otherwise candidates with an infrequent
    label). Writes the frequent (attach depth, label) buckets, key = attach_depth * n_labels + label, each bucket's
    nodes in the order of the parent occurrences (so tree ids never decrease). Duplicates are removed with `stamp`
    (one token per group). Returns the bucket count, the next token and the (possibly regrown) arrays.
    """
    ne = 0
    for q in range(a, b):
        r = nodes[q]
        c = first_child[r]
        base = rml_depth * n_labels
        row = labels[r] * n_labels
        while c >= 0:
            lab = labels[c]
            if (freq_pair[row + lab] if use_pairs else freq_label[lab]):
                if ne >= cand_key.size:
                    cand_key = grow(cand_key, ne + 1)
                    cand_node = grow(cand_node, ne + 1)
                cand_key[ne] = base + lab
                cand_node[ne] = c
                ne += 1
            c = next_sibling[c]
        x = r
        for d in range(rml_depth - 1, -1, -1):
            base = d * n_labels
            c = next_sibling[x]
            if c >= 0:
                row = labels[parent[x]] * n_labels
            while c >= 0:
                lab = labels[c]
                if (freq_pair[row + lab] if use_pairs else freq_label[lab]):
                    if ne >= cand_key.size:
                        cand_key = grow(cand_key, ne + 1)
                        cand_node = grow(cand_node, ne + 1)
                    cand_key[ne] = base + lab
                    cand_node[ne] = c
                    ne += 1
                c = next_sibling[c]
            x = parent[x]
    sorted_node = grow(sorted_node, ne)
    out_node = grow(out_node, ne)
    nk = _group_by_key(ne, cand_key, cand_node, key_count, key_touched, sorted_node)
    nbk = 0
    pos = 0
    start = 0
    bstart = grow(bstart, nk + 1)
    bkey = grow(bkey, nk)
    bsup = grow(bsup, nk)
    bocc = grow(bocc, nk)
    bstart[0] = 0
    for t in range(nk):
        key = key_touched[t]
        end = key_count[key]
        key_count[key] = 0
        token += 1
        sup = 0
        prev_tree = -1
        w = pos
        for e in range(start, end):
            v = sorted_node[e]
            if stamp[v] != token:
                stamp[v] = token
                out_node[w] = v
                w += 1
                tr = node_tree[v]
                if tr != prev_tree:
                    sup += 1
                    prev_tree = tr
        start = end
        if sup >= min_support:
            bkey[nbk] = key
            bsup[nbk] = sup
            bocc[nbk] = w - pos
            pos = w
            nbk += 1
            bstart[nbk] = pos
    return nbk, token, cand_key, cand_node, sorted_node, out_node, bstart, bkey, bsup, bocc


@njit(cache=True)
def _freqt_kernel(
    labels, parent, first_child, next_sibling, node_tree, n_labels, min_support, min_nodes, max_nodes, use_pairs,
):  # pragma: no cover - compiled
    """Depth-first FREQT over a whole (compact) forest with dense labels ``0..n_labels-1``.

    Returns flat pattern labels, depths, offsets, support and occurrences (unsorted).
    """
    n_total = labels.size
    # level 0: single nodes, bucketed by label (nodes ascending, so tree ids never decrease)
    sup0 = np.zeros(n_labels, np.int64)
    occ0 = np.zeros(n_labels, np.int64)
    seen = np.full(n_labels, -1, np.int64)
    for x in range(n_total):
        lab = labels[x]
        occ0[lab] += 1
        if seen[lab] != node_tree[x]:
            seen[lab] = node_tree[x]
            sup0[lab] += 1
    freq_label = sup0 >= min_support
    # parent-child label pairs in at least min_support trees: every edge of a frequent pattern is one
    # (a table of n_labels^2 entries, so only for label sets of tags' size; otherwise prune by single labels)
    n_pairs = n_labels * n_labels if use_pairs else 1
    pair_sup = np.zeros(n_pairs, np.int64)
    pair_seen = np.full(n_pairs, -1, np.int64)
    for x in range(n_total):
        p = parent[x]
        if p >= 0 and use_pairs:
            key = labels[p] * n_labels + labels[x]
            if pair_seen[key] != node_tree[x]:
                pair_seen[key] = node_tree[x]
                pair_sup[key] += 1
    freq_pair = pair_sup >= min_support
    lv_node = List()
    lv_bstart = List()
    lv_bkey = List()
    lv_bsup = List()
    lv_bocc = List()
    for _ in range(max_nodes):
        lv_node.append(np.empty(0, np.int64))
        lv_bstart.append(np.zeros(1, np.int64))
        lv_bkey.append(np.empty(0, np.int64))
        lv_bsup.append(np.empty(0, np.int64))
        lv_bocc.append(np.empty(0, np.int64))
    nb = np.zeros(max_nodes, np.int64)
    cur = np.zeros(max_nodes, np.int64)

    nbk = 0
    size = 0
    for lab in range(n_labels):
        if freq_label[lab]:
            nbk += 1
            size += occ0[lab]
    bidx = np.full(n_labels, -1, np.int64)
    wpos = np.empty(nbk, np.int64)
    bstart = np.empty(nbk + 1, np.int64)
    bkey = np.empty(nbk, np.int64)
    bsup = np.empty(nbk, np.int64)
    bocc = np.empty(nbk, np.int64)
    node0 = np.empty(size, np.int64)
    k = 0
    pos = 0
    for lab in range(n_labels):
        if freq_label[lab]:
            bidx[lab] = k
            bstart[k] = pos
            wpos[k] = pos
            bkey[k] = lab
            bsup[k] = sup0[lab]
            bocc[k] = occ0[lab]
            pos += occ0[lab]
            k += 1
    bstart[nbk] = pos
    for x in range(n_total):
        k = bidx[labels[x]]
        if k >= 0:
            node0[wpos[k]] = x
            wpos[k] += 1
    lv_node[0] = node0
    lv_bstart[0] = bstart
    lv_bkey[0] = bkey
    lv_bsup[0] = bsup
    lv_bocc[0] = bocc
    nb[0] = nbk

    cand_key = np.empty(1024, np.int64)
    cand_node = np.empty(1024, np.int64)
    sorted_node = np.empty(1024, np.int64)
    key_count = np.zeros(max_nodes * n_labels, np.int64)
    key_touched = np.empty(max_nodes * n_labels, np.int64)
    stamp = np.full(n_total, -1, np.int64)
    token = 0
    pat_lab = np.empty(max_nodes, np.int32)
    pat_dep = np.empty(max_nodes, np.int32)
    out_lab = np.empty(1024, np.int32)
    out_dep = np.empty(1024, np.int32)
    out_off = np.zeros(257, np.int64)
    out_sup = np.empty(256, np.int64)
    out_occ = np.empty(256, np.int64)
    n_out = 0

    depth = 0
    while depth >= 0:
        if cur[depth] >= nb[depth]:
            depth -= 1
            continue
        j = cur[depth]
        cur[depth] = j + 1
        key = lv_bkey[depth][j]
        if depth == 0:
            pat_lab[0] = key
            pat_dep[0] = 0
        else:
            pat_lab[depth] = key % n_labels
            pat_dep[depth] = key // n_labels + 1
        size = depth + 1
        if size >= min_nodes:
            out_sup = grow(out_sup, n_out + 1)
            out_occ = grow(out_occ, n_out + 1)
            out_off = grow(out_off, n_out + 2)
            start = out_off[n_out]
            out_lab = grow(out_lab, start + size)
            out_dep = grow(out_dep, start + size)
            out_lab[start : start + size] = pat_lab[:size]
            out_dep[start : start + size] = pat_dep[:size]
            out_off[n_out + 1] = start + size
            out_sup[n_out] = lv_bsup[depth][j]
            out_occ[n_out] = lv_bocc[depth][j]
            n_out += 1
        if size < max_nodes:
            d = depth + 1
            bs = lv_bstart[depth]
            r = _expand(
                labels, parent, first_child, next_sibling, node_tree, n_labels, min_support, use_pairs, freq_pair,
                freq_label, lv_node[depth], bs[j], bs[j + 1], np.int64(pat_dep[depth]),
                cand_key, cand_node, sorted_node, key_count, key_touched, stamp, token,
                lv_node[d], lv_bstart[d], lv_bkey[d], lv_bsup[d], lv_bocc[d],
            )
            nb[d] = r[0]
            token = r[1]
            cand_key = r[2]
            cand_node = r[3]
            sorted_node = r[4]
            lv_node[d] = r[5]
            lv_bstart[d] = r[6]
            lv_bkey[d] = r[7]
            lv_bsup[d] = r[8]
            lv_bocc[d] = r[9]
            cur[d] = 0
            depth = d
    n_items = out_off[n_out]
    return out_lab[:n_items], out_dep[:n_items], out_off[: n_out + 1], out_sup[:n_out], out_occ[:n_out]


def padded_pairs(offsets: np.ndarray, labels: np.ndarray, depths: np.ndarray) -> np.ndarray:
    """int64 ``[m, 2 * max size]``: each pattern's preorder (label, depth) pairs interleaved, `PAD` after its last
    node, so rows compare (`lex_order`, `np.unique`) exactly as the Python tuples of pairs do (a prefix first).

    offsets: int64 ``[m + 1]`` into `labels` / `depths` (int64 ``[total]``).
    """
    sizes = np.diff(offsets)
    m = sizes.size
    out = np.full((m, 2 * int(sizes.max(initial=0))), PAD, dtype=np.int64)
    if m:
        row = np.repeat(np.arange(m), sizes)
        col = np.arange(offsets[-1] - offsets[0]) - np.repeat(offsets[:-1] - offsets[0], sizes)
        out[row, 2 * col] = labels[offsets[0] : offsets[-1]]
        out[row, 2 * col + 1] = depths[offsets[0] : offsets[-1]]
    return out


def row_keys(rows: np.ndarray) -> np.ndarray | None:
    """int64 ``[m]`` keys ordered and equal exactly as the rows of `rows` (int64 ``[m, w]``, `PAD` allowed)
    compare lexicographically: per column ``value - min + 1`` (`PAD` -> 0) combined in mixed radix. None when the
    radix product would not fit in 62 bits (callers then compare whole rows)."""
    m, width = rows.shape
    keys = np.zeros(m, dtype=np.int64)
    capacity = 1
    for c in range(width):
        column = rows[:, c]
        real = column != PAD
        low = int(column[real].min()) if real.any() else 0
        high = int(column[real].max()) if real.any() else 0
        radix = high - low + 2
        capacity *= radix
        if capacity >= 1 << 62:
            return None
        keys = keys * radix + np.where(real, column - low + 1, 0)
    return keys


def lex_order(rows: np.ndarray, first: np.ndarray | None = None) -> np.ndarray:
    """int64 ``[m]``: the stable order of `padded_pairs` rows, lexicographic, after the key `first` (``[m]``)."""
    keys = row_keys(rows) if rows.shape[1] else np.zeros(rows.shape[0], np.int64)
    columns = [keys] if keys is not None else [rows[:, c] for c in range(rows.shape[1] - 1, -1, -1)]
    if first is not None:
        columns.append(first)
    return np.lexsort(columns).astype(np.int64, copy=False)


@dataclass(frozen=True)
class SubtreeTable:
    """Subtree patterns as flat int64 arrays: pattern k is ``labels[offsets[k]:offsets[k + 1]]`` with the same
    slice of ``depths`` (preorder, root depth 0); ``support`` and ``occurrences`` are ``[m]``."""

    labels: np.ndarray
    depths: np.ndarray
    offsets: np.ndarray
    support: np.ndarray
    occurrences: np.ndarray

    def __len__(self) -> int:
        return int(self.support.size)

    @classmethod
    def from_pairs(
        cls, labels: Sequence[Sequence[int]], depths: Sequence[Sequence[int]], support: Sequence[int] | None = None,
        occurrences: Sequence[int] | None = None,
    ) -> SubtreeTable:  # fmt: skip
        """A table of m patterns given as preorder label and depth sequences (support / occurrences: 0 if None)."""
        offsets = np.zeros(len(labels) + 1, np.int64)
        np.cumsum([len(x) for x in labels], out=offsets[1:])
        total = int(offsets[-1])
        flat_labels = np.fromiter((x for q in labels for x in q), dtype=np.int64, count=total)
        flat_depths = np.fromiter((x for q in depths for x in q), dtype=np.int64, count=total)
        zeros = np.zeros(len(labels), np.int64)
        return cls(flat_labels, flat_depths, offsets,
                   zeros if support is None else np.asarray(support, np.int64).reshape(-1),
                   zeros.copy() if occurrences is None else np.asarray(occurrences, np.int64).reshape(-1))  # fmt: skip

    @property
    def sizes(self) -> np.ndarray:
        """int64 ``[m]``: nodes per pattern."""
        return np.diff(self.offsets)

    def padded(self) -> np.ndarray:
        """`padded_pairs` of the patterns."""
        return padded_pairs(self.offsets, self.labels, self.depths)

    def take(self, index: np.ndarray) -> SubtreeTable:
        """The patterns at `index` (int ``[n]``), in that order."""
        index = np.asarray(index, dtype=np.int64)
        sizes = self.sizes[index]
        offsets = np.zeros(index.size + 1, np.int64)
        np.cumsum(sizes, out=offsets[1:])
        nodes = np.repeat(self.offsets[:-1][index] - offsets[:-1], sizes) + np.arange(offsets[-1])
        return SubtreeTable(self.labels[nodes], self.depths[nodes], offsets, self.support[index],
                            self.occurrences[index])  # fmt: skip

    def patterns(self) -> list[SubtreePattern]:
        """The patterns as `SubtreePattern` objects."""
        labs, deps, off = self.labels.tolist(), self.depths.tolist(), self.offsets.tolist()
        return [
            SubtreePattern(tuple(labs[off[k] : off[k + 1]]), tuple(deps[off[k] : off[k + 1]]), s, o)
            for k, (s, o) in enumerate(zip(self.support.tolist(), self.occurrences.tolist(), strict=True))
        ]


def mine_subtree_table(
    db: TreeDB,
    rows: Sequence[int] | np.ndarray | None = None,
    *,
    min_support: int,
    max_nodes: int = 5,
    min_nodes: int = 1,
) -> SubtreeTable:
    """`mine_subtrees` as a `SubtreeTable` (same patterns, same order), without a Python object per pattern."""
    min_support = check_int("min_support", min_support, 1)
    max_nodes = check_int("max_nodes", max_nodes, 1)
    min_nodes = check_int("min_nodes", min_nodes, 1)
    if max_nodes < min_nodes:
        raise ValueError(f"max_nodes ({max_nodes}) must be >= min_nodes ({min_nodes})")
    forest = db.subset(rows)
    if forest.n_nodes == 0:
        z = np.zeros(0, np.int64)
        return SubtreeTable(z, z.copy(), np.zeros(1, np.int64), z.copy(), z.copy())
    local, to_global, _ = dense_labels(forest.labels, forest.n_labels)
    labs, deps, off, sup, occ = _freqt_kernel(
        local, forest.parent, forest.first_child, forest.next_sibling, forest.node_tree,
        np.int64(to_global.size), np.int64(min_support), np.int64(min_nodes), np.int64(max_nodes),
        to_global.size <= _MAX_PAIR_LABELS,
    )
    table = SubtreeTable(to_global[labs].astype(np.int64), deps.astype(np.int64), off.astype(np.int64),
                         sup.astype(np.int64), occ.astype(np.int64))  # fmt: skip
    return table.take(lex_order(table.padded(), first=-table.support))


def mine_subtrees(
    db: TreeDB,
    rows: Sequence[int] | np.ndarray | None = None,
    *,
    min_support: int,
    max_nodes: int = 5,
    min_nodes: int = 1,
) -> list[SubtreePattern]:
    """Frequent induced ordered subtrees of the trees `rows` of `db` (all when None), exactly.

    Args:
        db: the encoded trees.
        rows: indices of the trees to mine (unique; order irrelevant).
        min_support: keep patterns found in at least this many trees (>= 1).
        max_nodes, min_nodes: pattern size range in nodes (1 <= min_nodes <= max_nodes).

    Returns:
        `SubtreePattern` objects sorted by (-support, preorder (label, depth) pairs).
    """
    return mine_subtree_table(db, rows, min_support=min_support, max_nodes=max_nodes, min_nodes=min_nodes).patterns()


def closed_subtrees(table: SubtreeTable, max_nodes: int) -> np.ndarray:
    """bool ``[m]``: which patterns of `table` are closed.

    Pattern P is *not* closed when a one-node extension Q of P (P with one more leaf anywhere, or with a new root
    above P's root) is among the patterns with the same support: every tree containing P then contains Q, so Q says
    more with the same evidence. Patterns of `max_nodes` nodes are always kept (their extensions were not mined).
    Every occurrence of Q contains one of P, so ``support(Q) <= support(P)``; equality is the only case dropped.
    Vectorized: every one-node reduction of every Q (drop a leaf, or drop a root with one child) is looked up
    among the patterns' rows at once.
    """
    m = len(table)
    if m == 0:
        return np.zeros(0, dtype=bool)
    sizes = table.sizes
    rows = table.padded()
    width = rows.shape[1] // 2
    depth = rows[:, 1::2]
    pad_pair = np.full((1, 2), PAD, np.int64)
    reduced: list[np.ndarray] = []
    source: list[np.ndarray] = []
    for i in range(1, width):  # drop node i where it is a leaf
        leaf = sizes > i
        if i + 1 < width:
            leaf &= (sizes == i + 1) | (depth[:, i + 1] <= depth[:, i])
        q = np.flatnonzero(leaf)
        kept = np.delete(rows[q], [2 * i, 2 * i + 1], axis=1)
        reduced.append(np.concatenate([kept, np.repeat(pad_pair, q.size, axis=0)], axis=1))
        source.append(q)
    q = np.flatnonzero((sizes > 1) & ((depth == 1).sum(axis=1) == 1))  # drop a root with one child
    kept = rows[q, 2:].copy()
    kept_depth = kept[:, 1::2]
    kept_depth[kept_depth != PAD] -= 1
    reduced.append(np.concatenate([kept, np.repeat(pad_pair, q.size, axis=0)], axis=1))
    source.append(q)
    every = np.concatenate([rows, *reduced])
    keys = row_keys(every)
    _, inverse = np.unique(every if keys is None else keys, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    owner = np.full(int(inverse.max()) + 1, -1, dtype=np.int64)
    owner[inverse[:m]] = np.arange(m)
    target = owner[inverse[m:]]
    src = np.concatenate(source)
    hit = target >= 0
    same = np.zeros_like(hit)
    same[hit] = table.support[target[hit]] == table.support[src[hit]]
    not_closed = np.zeros(m, dtype=bool)
    not_closed[target[same]] = True
    return (sizes >= max_nodes) | ~not_closed
