"""Which sentences contain each pattern: the background counters' matching, per sentence instead of in total.

`match_skipgrams` and `match_subtrees` take the same prebuilt indexes (`SequenceIndex`, `TreeIndex`) and the same
pattern forms as `count_skipgrams` / `count_subtrees` and return, for every pattern, the sorted database rows that
contain it. The semantics are those of the counters (and so of the miners): a skip-n-gram's items in order with at
most ``max_gap`` tokens skipped between two consecutive ones (None: unbounded); an induced ordered subtree of a
labels-only tree. ``len(match(...).rows_of(k)) == count(...).support[k]`` for every pattern (tested).

Used to score explanations: a sentence's prediction is the sum of the weights of the patterns it contains.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numba import njit

from ._common import check_max_gap
from .background import SequenceIndex, TreeIndex, _check_depths, _join
from .freqt import SubtreePattern, parse_subtree
from .prefixspan import Pattern

__all__ = ["Matches", "match_skipgrams", "match_subtrees"]


@dataclass(frozen=True)
class Matches:
    """Rows containing each pattern: pattern ``k`` occurs in database rows ``rows[offsets[k]:offsets[k + 1]]``.

    Attributes:
        offsets: int64 ``[n_patterns + 1]``; rows: int64 ``[n_matches]``, sorted within each pattern.
    """

    offsets: np.ndarray
    rows: np.ndarray

    def __len__(self) -> int:
        return int(self.offsets.size - 1)

    def rows_of(self, k: int) -> np.ndarray:
        """Rows (int64, sorted) that contain pattern `k`."""
        return self.rows[self.offsets[k] : self.offsets[k + 1]]

    @property
    def pattern_of_match(self) -> np.ndarray:
        """int64 ``[n_matches]``: the pattern index of each entry of `rows`."""
        return np.repeat(np.arange(len(self), dtype=np.int64), np.diff(self.offsets))


def _empty(n: int) -> Matches:
    return Matches(np.zeros(n + 1, np.int64), np.zeros(0, np.int64))


@njit(cache=True)
def _match_skipgrams_kernel(
    post_off, post_seq, post_pos, pat_items, pat_off, n_items, gap, cap, max_plen, out_off, out_seq
):  # pragma: no cover - compiled
    n_pat = pat_off.size - 1
    lseq = np.empty((max_plen, cap), np.int64)
    lpos = np.empty((max_plen, cap), np.int64)
    ln = np.zeros(max_plen, np.int64)
    w = 0
    for k in range(n_pat):
        a = pat_off[k]
        length = pat_off[k + 1] - a
        out_off[k] = w
        for d in range(length):
            it = pat_items[a + d]
            pa = 0
            pb = 0
            if it >= 0 and it < n_items:
                pa = post_off[it]
                pb = post_off[it + 1]
            if d == 0:
                n = 0
                last = -1
                for q in range(pa, pb):
                    s = post_seq[q]
                    if s != last or gap >= 0:
                        lseq[0, n] = s
                        lpos[0, n] = post_pos[q]
                        n += 1
                    last = s
                ln[0] = n
            else:
                r = _join(lseq[d - 1], lpos[d - 1], ln[d - 1], post_seq, post_pos, pa, pb, gap, lseq[d], lpos[d])
                ln[d] = r[0]
        last = -1
        for q in range(ln[length - 1]):
            s = lseq[length - 1, q]
            if s != last:
                out_seq[w] = s
                w += 1
                last = s
    out_off[n_pat] = w
    return w


def _sequence_items(index: SequenceIndex, patterns: Sequence[Pattern | Sequence[int] | Sequence[str]]) -> list:
    seqs = []
    for k, p in enumerate(patterns):
        items = p.items if isinstance(p, Pattern) else tuple(index.db.item_id(x) for x in p)
        if not items:
            raise ValueError(f"pattern {k} is empty")
        seqs.append(tuple(int(x) for x in items))
    return seqs


def match_skipgrams(
    index: SequenceIndex, patterns: Sequence[Pattern | Sequence[int] | Sequence[str]], *, max_gap: int | None
) -> Matches:
    """The rows of ``index.rows`` containing each pattern (items: ids or labels of the index's vocabulary), with
    `count_skipgrams`'s semantics for the same `max_gap`. Unknown items match nothing."""
    gap = check_max_gap(max_gap)
    seqs = _sequence_items(index, patterns)
    n = len(seqs)
    if n == 0:
        return _empty(0)
    db = index.db
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=n)
    pat_off = np.zeros(n + 1, np.int64)
    np.cumsum(lengths, out=pat_off[1:])
    pat_items = np.fromiter((x for s in seqs for x in s), dtype=np.int64, count=int(pat_off[-1]))
    counts = np.diff(index.post_offsets)
    valid = (pat_items >= 0) & (pat_items < db.n_items)
    item_count = np.zeros(pat_items.size, np.int64)
    item_count[valid] = counts[pat_items[valid]]
    cap = int(item_count.max()) if item_count.size else 0
    bound = int(item_count[pat_off[:-1]].sum())  # a pattern's rows are at most its first item's postings
    out_off = np.zeros(n + 1, np.int64)
    out_seq = np.empty(max(bound, 1), np.int64)
    w = _match_skipgrams_kernel(
        index.post_offsets, index.post_seq, index.post_pos, pat_items, pat_off, np.int64(db.n_items), np.int64(gap),
        np.int64(max(cap, 1)), np.int64(lengths.max()), out_off, out_seq,
    )  # fmt: skip
    return Matches(out_off, index.rows[out_seq[:w]])


@njit(cache=True)
def _match_subtrees_kernel(
    labels, parent, first_child, next_sibling, node_tree, post_off, post_nodes, pat_lab, pat_dep, pat_off, n_labels,
    cap, max_plen, out_off, out_tree,
):  # pragma: no cover - compiled
    n_pat = pat_off.size - 1
    lnode = np.empty((max_plen, cap), np.int64)
    ln = np.zeros(max_plen, np.int64)
    stamp = np.full(labels.size, -1, np.int64)
    token = 0
    w = 0
    for k in range(n_pat):
        a = pat_off[k]
        length = pat_off[k + 1] - a
        out_off[k] = w
        for d in range(length):
            lab = pat_lab[a + d]
            known = lab >= 0 and lab < n_labels
            n = 0
            if d == 0:
                if known:
                    for q in range(post_off[lab], post_off[lab + 1]):
                        lnode[0, n] = post_nodes[q]
                        n += 1
            elif known:
                rml = pat_dep[a + d - 1]
                attach = pat_dep[a + d] - 1
                token += 1
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
            ln[d] = n
        last = -1
        for q in range(ln[length - 1]):
            t = node_tree[lnode[length - 1, q]]
            if t != last:
                out_tree[w] = t
                w += 1
                last = t
    out_off[n_pat] = w
    return w


def match_subtrees(
    index: TreeIndex, patterns: Sequence[SubtreePattern | str | tuple[Sequence[int], Sequence[int]]]
) -> Matches:
    """The trees (rows of ``index.rows``) containing each subtree pattern, with `count_subtrees`'s semantics.

    Patterns as for `count_subtrees`: `SubtreePattern`, bracket strings over the index's vocabulary, or
    ``(labels, depths)`` in preorder. Unknown labels match nothing."""
    db = index.db
    pats = []
    for k, p in enumerate(patterns):
        if isinstance(p, SubtreePattern):
            labs, deps = p.labels, p.depths
        elif isinstance(p, str):
            try:
                labs, deps = parse_subtree(p, db.vocab)
            except ValueError as err:
                raise ValueError(f"pattern {k}: {err}") from None
        else:
            labs, deps = tuple(int(x) for x in p[0]), tuple(int(x) for x in p[1])
        _check_depths(k, labs, deps)
        pats.append((tuple(labs), tuple(deps)))
    n = len(pats)
    if n == 0:
        return _empty(0)
    lengths = np.fromiter((len(x[0]) for x in pats), dtype=np.int64, count=n)
    pat_off = np.zeros(n + 1, np.int64)
    np.cumsum(lengths, out=pat_off[1:])
    total = int(pat_off[-1])
    glob = np.fromiter((x for p in pats for x in p[0]), dtype=np.int64, count=total)
    pat_dep = np.fromiter((x for p in pats for x in p[1]), dtype=np.int64, count=total)
    known = (glob >= 0) & (glob < index.to_local.size)
    pat_lab = np.full(total, -1, dtype=np.int64)
    pat_lab[known] = index.to_local[glob[known]]
    counts = np.diff(index.post_offsets)
    label_count = np.zeros(total, np.int64)
    label_count[pat_lab >= 0] = counts[pat_lab[pat_lab >= 0]]
    # level d holds distinct nodes labelled like pattern node d: at most that label's postings
    cap = int(label_count.max()) if total else 0
    bound = int(label_count[pat_off[1:] - 1].sum())  # rows <= images of the last node
    out_off = np.zeros(n + 1, np.int64)
    out_tree = np.empty(max(bound, 1), np.int64)
    f = index.forest
    w = _match_subtrees_kernel(
        index.labels, f.parent, f.first_child, f.next_sibling, f.node_tree, index.post_offsets, index.post_nodes,
        pat_lab, pat_dep, pat_off, np.int64(index.post_offsets.size - 1), np.int64(max(cap, 1)),
        np.int64(lengths.max()), out_off, out_tree,
    )  # fmt: skip
    return Matches(out_off, index.rows[out_tree[:w]])
