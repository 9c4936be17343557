"""Controls scored on the same test sets as the explanations (the README's "Explanation scores" section):

* `derangement`: another neuron's explanation (a seeded derangement within the layer) on this neuron's test set:
  what an explanation scores by chance, given how the test set and the negatives differ in general.
* sentence length alone (`neurotext.scores.predict.sentence_lengths`): max pooling favours long sentences, and a sum
  of pattern weights grows with length, so an explanation that does not beat length explains nothing beyond it.
* `BagOfWords` / `bow_scores`: an L2 logistic regression on binary bag-of-words, trained on the explain part
  against the background sample: how lexically predictable the neuron is at all.
* metadata only: the ``metadata`` kind itself.
* `length_matched`: optional negatives drawn to match the positives' length distribution.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from neurotext.ids import sample_order
from neurotext.miners import SequenceDB

__all__ = ["BagOfWords", "derangement", "length_matched"]


def derangement(n: int, seed: int) -> np.ndarray:
    """int64 ``[n]``: neuron ``i``'s control uses neuron ``d[i]``'s explanation, ``d[i] != i`` for n >= 2 (one
    seeded cycle through a random permutation, so every neuron lends its explanation exactly once). n = 1: [0]."""
    if n < 0:
        raise ValueError("n must be >= 0")
    perm = np.random.default_rng(seed).permutation(n)
    d = np.empty(n, dtype=np.int64)
    d[perm] = np.roll(perm, -1)
    return d


@dataclass(frozen=True)
class BagOfWords:
    """Binary bag-of-words of every encoded sentence: a CSR matrix ``[n_rows, n_words]`` (float64 ones), built once
    per layer from the shared word encoding (tokens as the parser split them, lower-cased)."""

    matrix: sp.csr_matrix
    c: float = 1.0
    max_iter: int = 100

    @classmethod
    def build(cls, words: SequenceDB, c: float = 1.0, max_iter: int = 100) -> BagOfWords:
        lower = np.asarray([w.lower() for w in words.vocab], dtype=object) if len(words.vocab) else np.zeros(0, object)
        _, folded = np.unique(lower, return_inverse=True) if lower.size else (None, np.zeros(0, np.int64))
        cols = folded[words.tokens] if words.tokens.size else np.zeros(0, np.int64)
        rows = np.repeat(np.arange(len(words), dtype=np.int64), np.diff(words.offsets))
        n_cols = int(folded.max()) + 1 if folded.size else 1
        m = sp.csr_matrix((np.ones(cols.size), (rows, cols)), shape=(len(words), n_cols))
        m.sum_duplicates()
        m.data[:] = 1.0
        return cls(m, c, max_iter)

    def scores(self, positive: np.ndarray, negative: np.ndarray, evaluate: np.ndarray) -> np.ndarray:
        """Decision values (float64 ``[len(evaluate)]``) of a logistic regression (L2, C = `c`, balanced classes,
        liblinear, seeded) on the words of the `positive` rows (label 1) against the `negative` rows (label 0).
        Only words that occur in some positive row are features (a word absent from the explain part cannot raise a
        prediction, and the fit costs ~10 ms instead of seconds over the full vocabulary). NaN when either class is
        empty."""
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression

        if positive.size == 0 or negative.size == 0:
            return np.full(evaluate.size, np.nan)
        used = np.unique(self.matrix[positive].indices)
        x = self.matrix[np.concatenate([positive, negative])][:, used]
        y = np.concatenate([np.ones(positive.size), np.zeros(negative.size)])
        model = LogisticRegression(C=self.c, class_weight="balanced", max_iter=self.max_iter, solver="liblinear",
                                   random_state=0)  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(x, y)
        return model.decision_function(self.matrix[evaluate][:, used]).astype(np.float64)


def length_matched(
    positive_lengths: np.ndarray, negative_lengths: np.ndarray, negative_ids: np.ndarray, seed: int, bins: int = 10
) -> np.ndarray:
    """bool ``[n_neg]``: a subset of the negatives whose length distribution matches the positives'.

    Lengths are binned at the negatives' deciles (`bins` quantile bins); in every bin the negatives with the smallest
    splitmix64(sentence_id ^ seed) are kept, as many as the positives' share of that bin times the largest total
    every bin can supply. Empty positives: all negatives."""
    neg_len = np.asarray(negative_lengths, np.float64)
    pos_len = np.asarray(positive_lengths, np.float64)
    keep = np.zeros(neg_len.size, dtype=bool)
    if pos_len.size == 0 or neg_len.size == 0:
        keep[:] = True
        return keep
    edges = np.unique(np.quantile(neg_len, np.linspace(0, 1, bins + 1)[1:-1]))
    pos_bin = np.searchsorted(edges, pos_len, side="right")
    neg_bin = np.searchsorted(edges, neg_len, side="right")
    n_bins = edges.size + 1
    share = np.bincount(pos_bin, minlength=n_bins) / pos_len.size
    supply = np.bincount(neg_bin, minlength=n_bins)
    wanted = share > 0
    total = np.floor(np.min(supply[wanted] / share[wanted]))
    take = np.floor(share * total + 1e-9).astype(np.int64)
    order = np.lexsort((sample_order(np.asarray(negative_ids, np.uint32), seed), neg_bin))
    sorted_bins = neg_bin[order]
    first = np.searchsorted(sorted_bins, np.arange(n_bins))
    rank_in_bin = np.arange(order.size) - first[sorted_bins]
    keep[order[rank_in_bin < take[sorted_bins]]] = True
    return keep
