"""The predictor: a kind's prediction for a sentence is the sum of the weights of that kind's explain-part patterns
the sentence contains (weight: the pattern's log-odds z); metadata: the z of the sentence's value of each field;
``all`` adds the kinds. Containment is the miners' background matching (`neurotext.miners.presence`, the same
semantics as the counts the patterns were scored with): a word of its POS class, a skip-n-gram with at most
``max_gap`` tokens between items, a contiguous POS n-gram, an induced subtree of the labels-only parse tree.

Which patterns enter (`select_rows`): ``significant`` (q < q_max and z > 0) or ``top`` (the `top_n` kept patterns
with the largest z; every kept pattern has z > 0).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neurotext.artifacts.scores import KINDS
from neurotext.mining import PATTERN_KINDS, Background
from neurotext.miners.presence import Matches, match_skipgrams, match_subtrees

__all__ = ["Explanation", "Prediction", "predict", "select_rows", "sentence_lengths"]

SELECTIONS: tuple[str, ...] = ("top", "significant")


def select_rows(z: Sequence[float], q: Sequence[float], selection: str, top_n: int, q_max: float) -> np.ndarray:
    """Indices (int64) of the patterns that enter, best z first (ties: original order): z > 0 and, for
    ``significant``, q < `q_max`; at most `top_n`."""
    z_arr = np.asarray(z, dtype=np.float64)
    ok = z_arr > 0
    if selection == "significant":
        ok &= np.asarray(q, dtype=np.float64) < q_max
    elif selection != "top":
        raise ValueError(f"scores.patterns = {selection!r}: choose one of {', '.join(SELECTIONS)}")
    idx = np.flatnonzero(ok)
    idx = idx[np.argsort(-z_arr[idx], kind="stable")]
    return idx[:top_n].astype(np.int64)


@dataclass
class Explanation:
    """One neuron's explain-part patterns that enter its predictions.

    ``patterns[kind]`` (kinds of `PATTERN_KINDS`) are the patterns' strings as the patterns stage writes them
    (``noun:Olympics``, ``is going be``, ``IN DT``, ``(VBD (PRP))``), ``weights[kind]`` their z (float64);
    metadata: per entry its field, its value's code in the corpus counts and its z.
    """

    patterns: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in PATTERN_KINDS})
    weights: dict[str, np.ndarray] = field(default_factory=lambda: {k: np.zeros(0) for k in PATTERN_KINDS})
    meta_fields: list[str] = field(default_factory=list)
    meta_values: list[str] = field(default_factory=list)
    meta_codes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    meta_weights: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def n_patterns(self) -> np.ndarray:
        """int64 ``[len(KINDS)]``: patterns entering each kind (``all``: their total)."""
        counts = [len(self.patterns[k]) for k in PATTERN_KINDS] + [len(self.meta_codes)]
        return np.array([*counts, sum(counts)], dtype=np.int64)

    @classmethod
    def from_rows(
        cls, kept: Mapping[str, Any], metadata: Sequence[Mapping[str, Any]],
        corpus_index: Mapping[str, Mapping[str, int]], selection: str, top_n: int, q_max: float,
    ) -> Explanation:  # fmt: skip
        """From the patterns stage's kept rows per kind (objects with ``pattern``, ``z``, ``q`` lists) and metadata
        rows (dicts with field, value, z, q); `corpus_index` maps field -> value -> code."""
        expl = cls()
        for kind in PATTERN_KINDS:
            rows = kept[kind]
            idx = select_rows(rows.z, rows.q, selection, top_n, q_max)
            expl.patterns[kind] = [rows.pattern[i] for i in idx]
            expl.weights[kind] = np.asarray(rows.z, dtype=np.float64)[idx] if idx.size else np.zeros(0)
        idx = select_rows([r["z"] for r in metadata], [r["q"] for r in metadata], selection, top_n, q_max)
        chosen = [metadata[i] for i in idx]
        expl.meta_fields = [r["field"] for r in chosen]
        expl.meta_values = [r["value"] for r in chosen]
        expl.meta_codes = np.array([corpus_index[r["field"]][r["value"]] for r in chosen], dtype=np.int64)
        expl.meta_weights = np.array([r["z"] for r in chosen], dtype=np.float64)
        return expl


@dataclass(frozen=True)
class Prediction:
    """Predictions of every kind for a set of rows: values float64 ``[len(KINDS), n]``, present bool
    ``[len(KINDS), n]`` (the sentence contains at least one entering pattern of the kind); hits (when computed):
    per kind of `PATTERN_KINDS` and metadata, int64 ``[2, n_hits]``: (pattern index in the explanation, position
    among the rows) of every pattern occurrence."""

    values: np.ndarray
    present: np.ndarray
    hits: dict[str, np.ndarray] = field(default_factory=dict)

    def pattern_counts(self, kind: str, n_patterns: int, positions: np.ndarray | None = None) -> np.ndarray:
        """int64 ``[n_patterns]``: rows containing each pattern of `kind`, among `positions` (bool mask over the
        rows; None = all)."""
        hits = self.hits.get(kind, np.zeros((2, 0), np.int64))
        pattern = hits[0] if positions is None else hits[0][positions[hits[1]]]
        return np.bincount(pattern, minlength=n_patterns).astype(np.int64)


def _accumulate(matches: Matches, weights: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pos = np.searchsorted(rows, matches.rows)
    pattern = matches.pattern_of_match
    w = weights[pattern] if matches.rows.size else np.zeros(0)
    values = np.bincount(pos, weights=w, minlength=rows.size).astype(np.float64)
    present = np.bincount(pos, minlength=rows.size) > 0
    return values, present, np.stack([pattern, pos.astype(np.int64)])


def _words_matches(index: Background, patterns: Sequence[str]) -> Matches:
    """Words ``class:word``: one single-item match per class, reassembled in the patterns' order."""
    offsets = [0]
    rows = []
    by_class: dict[str, list[int]] = {}
    for i, p in enumerate(patterns):
        by_class.setdefault(p.split(":", 1)[0], []).append(i)
    found: dict[int, np.ndarray] = {}
    for name, members in by_class.items():
        idx = index.class_words.get(name)
        if idx is None:
            raise ValueError(f"word class {name!r} of a pattern is not among patterns.words.classes")
        m = match_skipgrams(idx, [(patterns[i].split(":", 1)[1],) for i in members], max_gap=None)
        for j, i in enumerate(members):
            found[i] = m.rows_of(j)
    for i in range(len(patterns)):
        rows.append(found[i])
        offsets.append(offsets[-1] + found[i].size)
    flat = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    return Matches(np.asarray(offsets, np.int64), flat.astype(np.int64))


def predict(
    enc: Any, index: Background, rows: np.ndarray, expl: Explanation, skip_gap: int | None, pos_gap: int = 0
) -> Prediction:
    """Every kind's prediction for the encoded `rows` (sorted int64; `index` is ``Background.build(enc, rows)``, the
    miners' indexes over them) from `expl`; `skip_gap`: patterns.skipgrams.max_gap."""
    rows = np.asarray(rows, dtype=np.int64)
    n = rows.size
    values = np.zeros((len(KINDS), n))
    present = np.zeros((len(KINDS), n), dtype=bool)
    hits: dict[str, np.ndarray] = {}
    matchers = {
        "words": lambda pats: _words_matches(index, pats),
        "skipgrams": lambda pats: match_skipgrams(index.words, [tuple(p.split(" ")) for p in pats], max_gap=skip_gap),
        "posgrams": lambda pats: match_skipgrams(index.tags, [tuple(p.split(" ")) for p in pats], max_gap=pos_gap),
        "subtrees": lambda pats: match_subtrees(index.trees, pats),
    }
    for k, kind in enumerate(KINDS[:4]):
        pats = expl.patterns[kind]
        if pats:
            values[k], present[k], hits[kind] = _accumulate(matchers[kind](pats), expl.weights[kind], rows)
    m = KINDS.index("metadata")
    meta_hits = []
    for name in dict.fromkeys(expl.meta_fields):
        entries = np.flatnonzero(np.array([f == name for f in expl.meta_fields]))
        codes, weights = expl.meta_codes[entries], expl.meta_weights[entries]
        row_codes = enc.metadata_codes[name][rows].astype(np.int64)
        order = np.argsort(codes, kind="stable")
        at = np.clip(np.searchsorted(codes[order], row_codes), 0, max(codes.size - 1, 0))
        hit = (row_codes >= 0) & (codes[order][at] == row_codes)
        values[m] += np.where(hit, weights[order][at], 0.0)
        present[m] |= hit
        where = np.flatnonzero(hit)
        meta_hits.append(np.stack([entries[order[at[where]]], where]))
    if meta_hits:
        hits["metadata"] = np.concatenate(meta_hits, axis=1).astype(np.int64)
    values[-1] = values[:-1].sum(axis=0)
    present[-1] = present[:-1].any(axis=0)
    return Prediction(values, present, hits)


def sentence_lengths(enc: Any, rows: np.ndarray) -> np.ndarray:
    """Tokens (as the parser split them) of each of `rows`, float64: the length control's prediction."""
    lengths = np.diff(enc.words.offsets)
    return lengths[np.asarray(rows, dtype=np.int64)].astype(np.float64)

