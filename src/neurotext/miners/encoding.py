"""Shared encoding of a corpus for the miners: interned labels, flat sequences, flat preorder trees.

A corpus is encoded once; a neuron then passes only the row indices of its sentences (``rows=``) to the miners and
to the background counters, so the top K and the background sample share one vocabulary and one set of arrays.

Sequences (`SequenceDB`)
    ``tokens``: int32 ``[n_tokens]``, every sequence's item ids concatenated; ``offsets``: int64 ``[n_sequences + 1]``,
    sequence ``i`` is ``tokens[offsets[i]:offsets[i + 1]]``. Empty sequences are valid.

Trees (`TreeDB`)
    Every tree is stored in preorder, trees concatenated. Per node (int arrays of length ``n_nodes``): ``labels``
    (int32 label id), ``parent``, ``first_child``, ``next_sibling`` (int64 *global* node indices into the flat
    arrays, -1 for none) and ``node_tree`` (int32 index of the node's tree). ``offsets`` (int64 ``[n_trees + 1]``):
    tree ``i`` holds nodes ``offsets[i]:offsets[i + 1]``, its root is node ``offsets[i]``. Empty trees (no nodes) are
    valid. Children are ordered (``first_child`` then ``next_sibling`` chains follow the preorder).

Bracket strings
    A tree is ``(LABEL CHILD CHILD ...)`` where every child is again a bracketed tree; a label is a non-empty string
    without whitespace or parentheses; whitespace is optional between children and allowed after ``(``. The empty
    (or all-whitespace) string is the empty tree. Leaves carry labels only (``(NN dog)`` is rejected: the miners
    work on label-only trees as in docs/ARCHITECTURE.md, "Pattern mining"). Output is canonical: compact
    ``(NP(DT)(NN))`` or readable ``(NP (DT) (NN))``. A malformed string raises `BracketError`, which names the
    tree's index and the character position.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numba import njit

__all__ = [
    "BracketError",
    "SequenceDB",
    "TreeDB",
    "Vocab",
    "check_rows",
    "format_tree",
    "parse_bracket",
]


class Vocab:
    """Interned labels: a bijection between strings and dense int ids ``0..len-1`` (in order of first sight).

    A `Vocab` is mutable (interning appends) and is meant to be shared by every database built from one corpus, so
    that the same id means the same word, tag or tree label everywhere.
    """

    def __init__(self, labels: Iterable[str] = ()) -> None:
        self._labels: list[str] = []
        self._ids: dict[str, int] = {}
        for label in labels:
            self.intern(label)

    def intern(self, label: str) -> int:
        """Return the id of `label`, adding it if new."""
        idx = self._ids.get(label)
        if idx is None:
            if not isinstance(label, str):
                raise TypeError(f"labels must be str, got {type(label).__name__}: {label!r}")
            idx = len(self._labels)
            self._ids[label] = idx
            self._labels.append(label)
        return idx

    def intern_many(self, labels: Iterable[str]) -> np.ndarray:
        """Ids of `labels` as int32 ``[n]``, interning new ones."""
        intern = self.intern
        return np.fromiter((intern(x) for x in labels), dtype=np.int32)

    def get(self, label: str, default: int = -1) -> int:
        """The id of `label`, or `default` (-1) when it was never interned (it then occurs nowhere)."""
        return self._ids.get(label, default)

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Labels of `ids`."""
        return [self._labels[int(i)] for i in ids]

    def __getitem__(self, idx: int) -> str:
        return self._labels[idx]

    def __len__(self) -> int:
        return len(self._labels)

    def __contains__(self, label: object) -> bool:
        return label in self._ids

    def __iter__(self):
        return iter(self._labels)

    def __repr__(self) -> str:
        return f"Vocab({len(self)} labels)"


def check_rows(rows: Sequence[int] | np.ndarray | None, n: int, what: str = "sequences") -> np.ndarray:
    """Validate a row selection and return it as a sorted int64 array.

    `rows` are indices into a database of `n` entries; None means all. Rows must be unique (a sentence counts once)
    and in range; their order does not matter (the result is sorted).
    """
    if rows is None:
        return np.arange(n, dtype=np.int64)
    arr = np.asarray(rows)
    if arr.ndim != 1:
        raise ValueError(f"rows must be a 1-d array of {what} indices, got shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"rows must be integers, got dtype {arr.dtype}")
    arr = np.sort(arr.astype(np.int64, copy=False))
    if arr[0] < 0 or arr[-1] >= n:
        bad = arr[0] if arr[0] < 0 else arr[-1]
        raise IndexError(f"row {bad} out of range for a database of {n} {what}")
    if arr.size > 1 and np.any(arr[1:] == arr[:-1]):
        dup = arr[1:][arr[1:] == arr[:-1]][0]
        raise ValueError(f"rows must be unique; row {dup} is repeated")
    return arr


@dataclass(frozen=True, eq=False)
class SequenceDB:
    """Integer-encoded sequences (see the module docstring for the layout).

    Attributes:
        tokens: int32 ``[n_tokens]`` item ids, sequences concatenated.
        offsets: int64 ``[n_sequences + 1]`` start of each sequence in `tokens`, ``offsets[-1] == n_tokens``.
        vocab: the shared `Vocab` (None for raw integer data; then ids are their own labels).
        n_items: exclusive upper bound of item ids (``len(vocab)`` when there is one, else ``max(tokens) + 1``).
    """

    tokens: np.ndarray
    offsets: np.ndarray
    vocab: Vocab | None = None
    n_items: int = field(default=-1)

    def __post_init__(self) -> None:
        tokens = np.ascontiguousarray(self.tokens, dtype=np.int32)
        offsets = np.ascontiguousarray(self.offsets, dtype=np.int64)
        if tokens.ndim != 1 or offsets.ndim != 1 or offsets.size < 1:
            raise ValueError("tokens and offsets must be 1-d; offsets needs at least one entry")
        if offsets[0] != 0 or offsets[-1] != tokens.size or np.any(np.diff(offsets) < 0):
            raise ValueError("offsets must start at 0, be non-decreasing and end at len(tokens)")
        if tokens.size and tokens.min() < 0:
            raise ValueError("item ids must be >= 0")
        n_items = self.n_items
        if n_items < 0:
            n_items = len(self.vocab) if self.vocab is not None else (int(tokens.max()) + 1 if tokens.size else 0)
        if tokens.size and int(tokens.max()) >= n_items:
            raise ValueError(f"item id {int(tokens.max())} >= n_items {n_items}")
        object.__setattr__(self, "tokens", tokens)
        object.__setattr__(self, "offsets", offsets)
        object.__setattr__(self, "n_items", int(n_items))

    @classmethod
    def from_lists(cls, sequences: Iterable[Sequence[str]], vocab: Vocab | None = None) -> SequenceDB:
        """Encode sequences of string labels, interning them into `vocab` (a new one when None)."""
        vocab = Vocab() if vocab is None else vocab
        lengths: list[int] = []
        flat: list[str] = []
        for seq in sequences:
            if isinstance(seq, str):
                raise TypeError("each sequence must be a list of labels, not a string")
            lengths.append(len(seq))
            flat.extend(seq)
        tokens = vocab.intern_many(flat)
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return cls(tokens, offsets, vocab, len(vocab))

    @classmethod
    def from_ids(cls, sequences: Iterable[Sequence[int]], n_items: int | None = None) -> SequenceDB:
        """Sequences that are already integer ids (no vocabulary)."""
        seqs = [np.asarray(s, dtype=np.int64).reshape(-1) for s in sequences]
        lengths = np.array([s.size for s in seqs], dtype=np.int64)
        offsets = np.zeros(lengths.size + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        tokens = np.concatenate(seqs).astype(np.int32) if seqs else np.zeros(0, np.int32)
        return cls(tokens, offsets, None, -1 if n_items is None else n_items)

    @classmethod
    def from_encoded(cls, tokens: np.ndarray, offsets: np.ndarray, vocab: Vocab | None = None) -> SequenceDB:
        """Wrap already flat arrays (validated, not copied when dtypes match)."""
        return cls(tokens, offsets, vocab)

    def __len__(self) -> int:
        return self.offsets.size - 1

    @property
    def lengths(self) -> np.ndarray:
        """int64 ``[n_sequences]`` number of items per sequence."""
        return np.diff(self.offsets)

    def sequence(self, i: int) -> np.ndarray:
        """Item ids of sequence `i` (a view)."""
        return self.tokens[self.offsets[i] : self.offsets[i + 1]]

    def select_tokens(self, mask: np.ndarray) -> SequenceDB:
        """The same sequences keeping only the tokens where `mask` (bool ``[n_tokens]``) is true.

        Rows, vocabulary and ids are unchanged, so e.g. the nouns of each sentence are
        ``words.select_tokens(np.isin(tags.tokens, noun_tag_ids))`` for aligned word and tag databases.
        """
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != self.tokens.shape:
            raise ValueError(f"mask must have shape {self.tokens.shape}, got {mask.shape}")
        kept = np.zeros(self.tokens.size + 1, dtype=np.int64)
        np.cumsum(mask, out=kept[1:])
        return SequenceDB(self.tokens[mask], kept[self.offsets], self.vocab, self.n_items)

    def decode(self, items: Iterable[int]) -> list[str]:
        """Labels of `items` (their decimal strings when there is no vocabulary)."""
        if self.vocab is None:
            return [str(int(i)) for i in items]
        return self.vocab.decode(items)

    def item_id(self, label: str | int) -> int:
        """Id of a label (-1 if unknown); ints pass through."""
        if isinstance(label, str):
            if self.vocab is None:
                raise TypeError("this database has no vocabulary; give item ids as ints")
            return self.vocab.get(label)
        return int(label)


class BracketError(ValueError):
    """A malformed bracket string: names the tree's index in the input and the 0-based character position."""

    def __init__(self, tree_index: int, position: int, message: str) -> None:
        super().__init__(f"tree {tree_index}: character {position}: {message}")
        self.tree_index = tree_index
        self.position = position


_TOKEN_RE = re.compile(r"\(|\)|[^\s()]+|\s+")


def _parse_slow(text: str, tree_index: int) -> tuple[list[str], list[int]]:
    """Position-tracking parser: (labels, parents) in preorder, or a `BracketError` at the first fault."""
    labels: list[str] = []
    parents: list[int] = []
    stack: list[int] = []
    expect_label = False  # just after '('
    done = False  # the root has been closed
    started = False
    for m in _TOKEN_RE.finditer(text):
        tok, pos = m.group(), m.start()
        if tok.isspace():
            continue
        if done:
            if tok == ")":
                raise BracketError(tree_index, pos, "unbalanced ')' after the end of the tree")
            raise BracketError(tree_index, pos, f"unexpected {tok!r} after the end of the tree")
        if expect_label:
            if tok in "()":
                raise BracketError(tree_index, pos, f"expected a label after '(', got {tok!r}")
            parents.append(stack[-2] if len(stack) > 1 else -1)
            labels.append(tok)
            stack[-1] = len(labels) - 1
            expect_label = False
        elif tok == "(":
            stack.append(-1)
            started = True
            expect_label = True
        elif tok == ")":
            if not stack:
                raise BracketError(tree_index, pos, "unbalanced ')'")
            stack.pop()
            if not stack:
                done = True
        else:
            if not started:
                raise BracketError(tree_index, pos, f"expected '(' to open the tree, got {tok!r}")
            raise BracketError(
                tree_index, pos, f"unexpected label {tok!r}: a node has one label and its children are bracketed"
            )
    if expect_label:
        raise BracketError(tree_index, len(text), "expected a label after '(' but the string ended")
    if stack:
        raise BracketError(tree_index, len(text), f"{len(stack)} unclosed '(' at the end of the string")
    return labels, parents


def _parse_fast(text: str) -> tuple[list[str], list[int]] | None:
    """Split-based parser for well-formed input; None when anything looks off (then `_parse_slow` reports it)."""
    toks = text.replace("(", " ( ").replace(")", " ) ").split()
    labels: list[str] = []
    parents: list[int] = []
    stack: list[int] = []
    n = len(toks)
    i = 0
    while i < n:
        tok = toks[i]
        if tok == "(":
            if i + 1 >= n or toks[i + 1] in ("(", ")") or (not stack and labels):
                return None
            parents.append(stack[-1] if stack else -1)
            labels.append(toks[i + 1])
            stack.append(len(labels) - 1)
            i += 2
        elif tok == ")":
            if not stack:
                return None
            stack.pop()
            i += 1
        else:
            return None
    if stack:
        return None
    return labels, parents


def parse_bracket(text: str, tree_index: int = 0) -> tuple[list[str], list[int]]:
    """Parse one bracket string into preorder ``(labels, parents)`` (parent -1 for the root).

    The empty string gives ``([], [])``. Raises `BracketError` (with `tree_index` and the character position).
    """
    if not isinstance(text, str):
        raise BracketError(tree_index, 0, f"expected a str, got {type(text).__name__}")
    parsed = _parse_fast(text)
    if parsed is None:
        parsed = _parse_slow(text, tree_index)
    return parsed


def format_tree(labels: Sequence[str], depths: Sequence[int], compact: bool = False) -> str:
    """Bracket string of a preorder tree given by node labels and depths (root depth 0).

    ``compact=True`` gives ``(NP(DT)(NN))``, otherwise ``(NP (DT) (NN))``. An empty tree gives ``""``.
    """
    out: list[str] = []
    sep = "" if compact else " "
    prev = -1
    for k, (label, depth) in enumerate(zip(labels, depths, strict=True)):
        if k == 0:
            if depth != 0:
                raise ValueError("the root must have depth 0")
        else:
            if depth < 1 or depth > prev + 1:
                raise ValueError(f"invalid preorder depths at node {k}: {depth} after {prev}")
            out.append(")" * (prev - depth + 1))
            out.append(sep)
        out.append("(" + label)
        prev = depth
    if prev >= 0:
        out.append(")" * (prev + 1))
    return "".join(out)


@dataclass(frozen=True, eq=False)
class TreeDB:
    """Labelled ordered trees, flat in preorder (see the module docstring for the layout).

    Attributes:
        labels: int32 ``[n_nodes]`` label id per node.
        parent, first_child, next_sibling: int64 ``[n_nodes]`` global node indices, -1 for none.
        node_tree: int32 ``[n_nodes]`` tree index per node.
        depth: int32 ``[n_nodes]`` depth of each node in its tree (root 0).
        offsets: int64 ``[n_trees + 1]`` node range of each tree.
        vocab: the shared `Vocab` of labels.
    """

    labels: np.ndarray
    parent: np.ndarray
    first_child: np.ndarray
    next_sibling: np.ndarray
    node_tree: np.ndarray
    depth: np.ndarray
    offsets: np.ndarray
    vocab: Vocab

    @property
    def n_labels(self) -> int:
        return len(self.vocab)

    @classmethod
    def from_parents(
        cls, trees: Iterable[tuple[Sequence[str], Sequence[int]]], vocab: Vocab | None = None
    ) -> TreeDB:
        """Build from preorder ``(labels, parents)`` pairs, parents local to each tree (-1 for the root).

        Each tree must be in preorder: node 0 is the only root and every node's parent precedes it and lies on
        the path from the previous node to the root.
        """
        vocab = Vocab() if vocab is None else vocab
        all_labels: list[str] = []
        all_parents: list[int] = []
        sizes: list[int] = []
        for t, (labels, parents) in enumerate(trees):
            if len(labels) != len(parents):
                raise ValueError(f"tree {t}: {len(labels)} labels but {len(parents)} parents")
            sizes.append(len(labels))
            all_labels.extend(labels)
            all_parents.extend(parents)
        offsets = np.zeros(len(sizes) + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        lab = vocab.intern_many(all_labels)
        local_parent = np.asarray(all_parents, dtype=np.int64)
        return cls._from_arrays(lab, local_parent, offsets, vocab)

    @classmethod
    def from_brackets(cls, strings: Iterable[str], vocab: Vocab | None = None) -> TreeDB:
        """Parse bracket strings (see the module docstring); the empty string is an empty tree."""
        return cls.from_parents((parse_bracket(s, i) for i, s in enumerate(strings)), vocab)

    @classmethod
    def _from_arrays(cls, labels: np.ndarray, local_parent: np.ndarray, offsets: np.ndarray, vocab: Vocab) -> TreeDB:
        n = labels.size
        n_trees = offsets.size - 1
        sizes = np.diff(offsets)
        node_tree = np.repeat(np.arange(n_trees, dtype=np.int32), sizes)
        start = offsets[:-1][node_tree] if n else np.zeros(0, np.int64)
        parent, first_child, next_sibling, depth = _link_preorder(local_parent, start.astype(np.int64), node_tree)
        return cls(labels, parent, first_child, next_sibling, node_tree, depth, offsets, vocab)

    def __len__(self) -> int:
        return self.offsets.size - 1

    @property
    def n_nodes(self) -> int:
        return int(self.labels.size)

    def tree_depths(self, i: int) -> np.ndarray:
        """Depth of each node of tree `i` (root 0), int32."""
        return self.depth[self.offsets[i] : self.offsets[i + 1]]

    def subset(self, rows: Sequence[int] | np.ndarray | None) -> TreeDB:
        """The trees `rows` (sorted, unique) as a compact `TreeDB` with the same vocabulary; tree ``k`` of the
        result is tree ``sorted(rows)[k]`` of this one. O(nodes of the subset), vectorised; `self` when all rows."""
        rows_arr = check_rows(rows, len(self), "trees")
        if rows_arr.size == len(self):
            return self
        starts = self.offsets[rows_arr]
        sizes = self.offsets[rows_arr + 1] - starts
        offsets = np.zeros(rows_arr.size + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        shift_per_tree = offsets[:-1] - starts
        node_tree = np.repeat(np.arange(rows_arr.size, dtype=np.int32), sizes)
        shift = shift_per_tree[node_tree]
        nodes = np.arange(int(offsets[-1]), dtype=np.int64) - shift

        def moved(a: np.ndarray) -> np.ndarray:
            v = a[nodes]
            return np.where(v >= 0, v + shift, -1)

        return TreeDB(
            self.labels[nodes], moved(self.parent), moved(self.first_child), moved(self.next_sibling), node_tree,
            self.depth[nodes], offsets, self.vocab,
        )

    def to_bracket(self, i: int, compact: bool = False) -> str:
        """Canonical bracket string of tree `i`."""
        a, b = self.offsets[i], self.offsets[i + 1]
        return format_tree(self.vocab.decode(self.labels[a:b]), self.depth[a:b].tolist(), compact)


def _link_preorder(
    local_parent: np.ndarray, start: np.ndarray, node_tree: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Global parent / first child / next sibling / depth arrays from preorder local parents (validated)."""
    n = local_parent.size
    parent = np.where(local_parent >= 0, local_parent + start, -1).astype(np.int64)
    first_child = np.full(n, -1, dtype=np.int64)
    next_sibling = np.full(n, -1, dtype=np.int64)
    depth = np.zeros(n, dtype=np.int32)
    is_root = start == np.arange(n)
    bad_root = np.flatnonzero(is_root != (local_parent < 0))
    if bad_root.size:
        k = int(bad_root[0])
        raise ValueError(f"tree {int(node_tree[k])}: node {k - int(start[k])} must be the only root (parent -1)")
    nonroot = np.flatnonzero(~is_root)
    if nonroot.size:
        if np.any(parent[nonroot] >= nonroot):
            k = int(nonroot[np.argmax(parent[nonroot] >= nonroot)])
            raise ValueError(f"tree {int(node_tree[k])}: parent of node {k - int(start[k])} does not precede it")
    bad = _link_kernel(parent, first_child, next_sibling, depth)
    if bad >= 0:
        raise ValueError(
            f"tree {int(node_tree[bad])}: node {bad - int(start[bad])} breaks preorder "
            "(its parent is not on the path from the previous node to the root)"
        )
    return parent, first_child, next_sibling, depth


@njit(cache=True)
def _link_kernel(parent, first_child, next_sibling, depth):  # pragma: no cover - compiled
    """Fill first_child / next_sibling / depth from global parents; return the first non-preorder node or -1."""
    n = parent.size
    last_child = np.full(n, -1, np.int64)
    for x in range(n):
        p = parent[x]
        if p < 0:
            depth[x] = 0
            continue
        # preorder: the parent is the previous node or one of its ancestors
        y = x - 1
        while y != p and parent[y] >= 0:
            y = parent[y]
        if y != p:
            return x
        depth[x] = depth[p] + 1
        if last_child[p] < 0:
            first_child[p] = x
        else:
            next_sibling[last_child[p]] = x
        last_child[p] = x
    return -1
