"""Candidate patterns of one neuron: mined from its top sentences, counted in the background.

Kinds (`PATTERN_KINDS`): words by class (``noun:Olympics``), skip-n-grams (``is going be``), POS n-grams
(``IN DT CD``) and labels-only subtrees (``(VBD (PRP) (NN))``); docs/ARCHITECTURE.md, "Pattern mining" (and "How to
add a pattern kind").
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from neurotext.miners import (
    SequenceDB,
    SequenceIndex,
    count_skipgrams,
    SubtreePattern,
    SubtreeTable,
    closed_subtrees,
    count_subtrees,
    frequent_items,
    mine_skipgrams,
    mine_subtree_table,
)
from neurotext.miners.presence import Matches, match_skipgrams, match_subtrees
from neurotext.mining.encode import Background, EncodedSentences
from neurotext.mining.settings import PatternSettings

#: The pattern kinds, in the order of the profile, of the patterns files and of Table 2.
PATTERN_KINDS: tuple[str, ...] = ("words", "skipgrams", "posgrams", "subtrees")
#: How tables and pages name each kind (words are shown per class, by the class name).
KIND_LABELS: dict[str, str] = {"words": "Words", "skipgrams": "Skip-n-grams", "posgrams": "POS n-grams",
                               "subtrees": "Subtrees"}  # fmt: skip


@dataclass
class Candidates:
    """Mined candidates of one kind (or one word class) for one neuron, with their counts (int64 ``[m]``).

    ``support_top`` of ``n_top`` eligible top sentences, ``support_bg`` of ``n_bg`` background sentences,
    ``occurrences`` in the top K (the miners' definition); ``min_support`` is the threshold they passed.
    """

    kind: str
    group: str  # the word class for words, else the kind
    patterns: list[str]
    support_top: np.ndarray
    occurrences: np.ndarray
    support_bg: np.ndarray
    n_top: int
    n_bg: int
    min_support: int

    def __len__(self) -> int:
        return len(self.patterns)


@dataclass(frozen=True)
class TopRows:
    """A neuron's top rows split by eligibility, with their overlap with the background and the background sizes.

    A top sentence that is also a background sentence counts once, in the top group (the two groups are disjoint).
    """

    all: np.ndarray
    tokenized: np.ndarray
    parsed: np.ndarray
    overlap_tokenized: np.ndarray
    overlap_parsed: np.ndarray
    n_bg_tokenized: int
    n_bg_parsed: int

    @classmethod
    def split(cls, enc: EncodedSentences, bg: Background, rows: np.ndarray) -> TopRows:
        """Split the top rows `rows` (int, rows of `enc`; repeats are dropped) by eligibility."""
        rows = np.unique(np.asarray(rows, dtype=np.int64))
        tokenized = rows[enc.tokenized[rows]]
        parsed = rows[enc.parsed[rows]]
        overlap_tokenized = tokenized[bg.member[tokenized]]
        overlap_parsed = parsed[bg.member[parsed]]
        return cls(rows, tokenized, parsed, overlap_tokenized, overlap_parsed,
                   int(bg.tokenized_rows.size - overlap_tokenized.size),
                   int(bg.parsed_rows.size - overlap_parsed.size))  # fmt: skip


#: Per background index (a `Background`'s words / tags / class words / trees, shared by every neuron mined against
#: it) and counting semantics: each pattern's support in the whole index. A pattern's support does not depend on
#: the other patterns counted with it, so neurons that share candidates count them once per layer.
#: Entries kept per cache before it is emptied (about 100-200 MB).
_MAX_CACHED = 1_000_000
_INDEX_SUPPORT: weakref.WeakKeyDictionary[Any, dict[Any, dict[tuple, int]]] = weakref.WeakKeyDictionary()


def _pattern_key(pattern: Any) -> tuple:
    """A hashable identity of a mined pattern: skip-n-gram items, or a subtree's labels and depths."""
    items = getattr(pattern, "items", None)
    return (items,) if items is not None else (pattern.labels, pattern.depths)


def _index_support(
    count: Callable[..., Any], index: Any, patterns: Any, semantics: Any, keys: Sequence[tuple] | None = None
) -> np.ndarray:
    """Each pattern's support in the whole `index` (int64 ``[m]``), counted once per index and `semantics`.
    `patterns`: a list, or a `SubtreeTable` with the `keys` of its patterns."""
    cache = _INDEX_SUPPORT.setdefault(index, {}).setdefault(semantics, {})
    if len(cache) > _MAX_CACHED:  # bounded memory on paper-scale layers; counts are recomputed, never changed
        cache.clear()
    if keys is None:
        keys = [_pattern_key(p) for p in patterns]
    missing = [i for i, key in enumerate(keys) if key not in cache]
    if missing:
        subset = (patterns.take(np.array(missing, np.int64)) if isinstance(patterns, SubtreeTable)
                  else [patterns[i] for i in missing])  # fmt: skip
        counted = count(index, subset).support
        for i, value in zip(missing, counted.tolist(), strict=True):
            cache[keys[i]] = int(value)
    return np.array([cache[key] for key in keys], np.int64)


def _background_support(
    count: Callable[..., Any], index: Any, db: Any, patterns: Any, overlap: np.ndarray,
    semantics: Any = None, keys: Sequence[tuple] | None = None,
) -> np.ndarray:  # fmt: skip
    """Support in the background minus the support in the background's rows that are this neuron's top sentences.
    `semantics` names how `count` counts (e.g. the skip-n-gram gap), so cached index supports are not mixed up;
    `patterns` and `keys` as for `_index_support`."""
    if not len(patterns):
        return np.zeros(0, np.int64)
    support = _index_support(count, index, patterns, semantics, keys)
    if overlap.size:
        support = support - count(db, patterns, rows=overlap).support.astype(np.int64)
    return support


def _sequence_candidates(
    kind: str, group: str, db: SequenceDB, index: SequenceIndex, rows: np.ndarray, overlap: np.ndarray, n_bg: int,
    mine: Callable[[int], list[Any]], max_gap: int | None, label: Callable[[Any], str], settings: PatternSettings,
) -> Candidates:  # fmt: skip
    """Mine sequence patterns from the top `rows` (via `mine(min_support)`) and count them in the background."""
    min_support = settings.min_support_for(rows.size)
    patterns = mine(min_support) if rows.size >= min_support else []

    def count(target, pats, rows=None):
        return count_skipgrams(target, pats, max_gap=max_gap, rows=rows)

    return Candidates(
        kind=kind, group=group, patterns=[label(p) for p in patterns],
        support_top=np.array([p.support for p in patterns], np.int64),
        occurrences=np.array([p.occurrences for p in patterns], np.int64),
        support_bg=_background_support(count, index, db, patterns, overlap, ("skipgrams", max_gap)),
        n_top=int(rows.size), n_bg=n_bg, min_support=min_support,
    )  # fmt: skip


#: Per tree database: each subtree pattern's bracket string (formatting is a large share of a neuron's mining cost).
_BRACKETS: weakref.WeakKeyDictionary[Any, dict[tuple, str]] = weakref.WeakKeyDictionary()


def _brackets(trees: Any, patterns: Sequence[Any]) -> list[str]:
    """``(NP (DT) (NN))`` strings of subtree `patterns` over the `trees` vocabulary, each formatted once per layer."""
    cache = _BRACKETS.setdefault(trees, {})
    if len(cache) > _MAX_CACHED:
        cache.clear()
    out = []
    for p in patterns:
        key = (p.labels, p.depths)
        text = cache.get(key)
        if text is None:
            text = cache[key] = p.to_bracket(trees.vocab)
        out.append(text)
    return out


def _subtree_candidates(enc: EncodedSentences, bg: Background, top: TopRows, settings: PatternSettings) -> Candidates:
    rows = top.parsed
    min_support = settings.min_support_for(rows.size)
    patterns: list[SubtreePattern] = []
    table: SubtreeTable | list = []  # what the background counter counts: the closed patterns' table
    if rows.size >= min_support:
        table = mine_subtree_table(
            enc.trees, rows, min_support=min_support, max_nodes=settings.subtree_max_nodes,
            min_nodes=settings.subtree_min_nodes,
        )  # fmt: skip
        table = table.take(np.flatnonzero(closed_subtrees(table, settings.subtree_max_nodes)))
        patterns = table.patterns()
    keys = [(p.labels, p.depths) for p in patterns]
    return Candidates(
        kind="subtrees", group="subtrees", patterns=_brackets(enc.trees, patterns),
        support_top=np.array([p.support for p in patterns], np.int64),
        occurrences=np.array([p.occurrences for p in patterns], np.int64),
        support_bg=_background_support(count_subtrees, bg.trees, enc.trees, table,
                                       top.overlap_parsed, "subtrees", keys),
        n_top=int(rows.size), n_bg=top.n_bg_parsed, min_support=min_support,
    )  # fmt: skip


def neuron_candidates(
    enc: EncodedSentences, bg: Background, top: TopRows, settings: PatternSettings
) -> list[Candidates]:
    """Closed candidates of every kind (words: one entry per class) with top and background counts."""
    result = []
    for name, _ in settings.word_classes:
        db = enc.class_words[name]
        result.append(_sequence_candidates(
            "words", name, db, bg.class_words[name], top.parsed, top.overlap_parsed, top.n_bg_parsed,
            lambda s, db=db: frequent_items(db, top.parsed, min_support=s), None,
            lambda p, db=db, name=name: f"{name}:{db.vocab[p.items[0]]}", settings,
        ))  # fmt: skip
    skip = settings.skipgrams
    result.append(_sequence_candidates(
        "skipgrams", "skipgrams", enc.words, bg.words, top.tokenized, top.overlap_tokenized, top.n_bg_tokenized,
        lambda s: mine_skipgrams(enc.words, top.tokenized, min_support=s, min_len=skip.min_len,
                                 max_len=skip.max_len, max_gap=skip.max_gap, closed=True),
        skip.max_gap, lambda p: " ".join(enc.words.vocab.decode(p.items)), settings,
    ))  # fmt: skip
    pos = settings.posgrams
    result.append(_sequence_candidates(
        "posgrams", "posgrams", enc.tags, bg.tags, top.parsed, top.overlap_parsed, top.n_bg_parsed,
        lambda s: mine_skipgrams(enc.tags, top.parsed, min_support=s, min_len=pos.min_len, max_len=pos.max_len,
                                 max_gap=0, closed=True),
        0, lambda p: " ".join(enc.tags.vocab.decode(p.items)), settings,
    ))  # fmt: skip
    result.append(_subtree_candidates(enc, bg, top, settings))
    return result


def _match_words(bg: Background, patterns: Sequence[str]) -> Matches:
    """Words ``class:word``: one single-item match per class, reassembled in the patterns' order."""
    by_class: dict[str, list[int]] = {}
    for i, pattern in enumerate(patterns):
        by_class.setdefault(pattern.split(":", 1)[0], []).append(i)
    found: dict[int, np.ndarray] = {}
    for name, members in by_class.items():
        index = bg.class_words.get(name)
        if index is None:
            raise ValueError(f"word class {name!r} of a pattern is not among patterns.words.classes")
        matches = match_skipgrams(index, [(patterns[i].split(":", 1)[1],) for i in members], max_gap=None)
        for j, i in enumerate(members):
            found[i] = matches.rows_of(j)
    rows = [found[i] for i in range(len(patterns))]
    offsets = np.zeros(len(rows) + 1, np.int64)
    np.cumsum([r.size for r in rows], out=offsets[1:])
    flat = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    return Matches(offsets, flat.astype(np.int64))


def match_patterns(kind: str, bg: Background, patterns: Sequence[str], settings: PatternSettings) -> Matches:
    """The rows of `bg` (any `Background`, e.g. ``Background.build(enc, rows)`` over the sentences to predict)
    containing each pattern string of `kind`, written as the patterns stage writes it, with the semantics it was
    counted with: a word of its class, a skip-n-gram with at most ``skipgrams.max_gap`` tokens between items, a
    contiguous POS n-gram, an induced subtree of the labels-only tree."""
    if kind == "words":
        return _match_words(bg, patterns)
    if kind == "skipgrams":
        return match_skipgrams(bg.words, [tuple(p.split(" ")) for p in patterns], max_gap=settings.skipgrams.max_gap)
    if kind == "posgrams":
        return match_skipgrams(bg.tags, [tuple(p.split(" ")) for p in patterns], max_gap=settings.posgrams.max_gap)
    if kind == "subtrees":
        return match_subtrees(bg.trees, list(patterns))
    raise ValueError(f"unknown pattern kind {kind!r}; the kinds are {', '.join(PATTERN_KINDS)}")
