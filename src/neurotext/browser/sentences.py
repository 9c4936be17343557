"""The sentences a neuron page shows, with their token highlights encoded for the page: the top sentences and the
quantile-band samples of the records (every token's activation), or without records each top-K sentence's max
token."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np

from neurotext.artifacts.records import LayerRecords, concat_ranges
from neurotext.artifacts.topk import read_topk

PathLike = str | os.PathLike[str]

QUANT = 127  # token activations are stored as integers -QUANT..QUANT of the neuron's scale


@dataclass
class ShownSentence:
    """One sentence shown for a neuron, its token highlights already encoded for the page.

    `tokens`: flat ``[gap, length, q, gap, length, q, ...]``, tokens sorted by start: a token starts `gap` characters
    (code points) after the previous token's end (the first: after 0) and spans `length` characters; q =
    round(127 * token activation / the neuron's scale), clipped to -127..127. None when there are no token
    activations. `best`: the span of the most activating token (None: none). `label`: '' for a top sentence, the
    sentence's quantile in the sample (e.g. 'q0.90') for a quantile-band sample.
    """

    sentence_id: int
    activation: float
    tokens: list[int] | None
    best: tuple[int, int] | None = None
    label: str = ""


@dataclass
class NeuronSentences:
    """What a layer shows of each neuron's sentences: top sentences and quantile samples, each neuron's token scale
    (its largest absolute token activation among them), and whether tokens are per token (records)."""

    top: dict[int, list[ShownSentence]] = field(default_factory=dict)
    quantile: dict[int, list[ShownSentence]] = field(default_factory=dict)
    scale: dict[int, float] = field(default_factory=dict)
    token_level: bool = False

    def sentence_ids(self) -> np.ndarray:
        ids = [s.sentence_id for group in (self.top, self.quantile) for rows in group.values() for s in rows]
        return np.unique(np.asarray(ids, dtype=np.uint32))


@dataclass(frozen=True)
class TokenRows:
    """Token activations of many shown sentences, flat: row i owns tokens ``offsets[i]:offsets[i + 1]``.

    neurons: int64 [rows]; starts, ends: int64 [tokens] (code point offsets); values: float64 [tokens].
    """

    neurons: np.ndarray
    offsets: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    values: np.ndarray


@dataclass(frozen=True)
class EncodedRows:
    """`encode_token_rows`' result: per row its flat token list and best span; per neuron its scale."""

    tokens: list[list[int]]
    best: list[tuple[int, int] | None]
    scale: dict[int, float]


def encode_token_rows(rows: TokenRows) -> EncodedRows:
    """Drop empty spans (special tokens are (0, 0)) and non-finite values, quantize each neuron's tokens to
    -127..127 of its largest absolute value, sort each row's tokens by start, and find each row's best token (the
    first of the largest). Vectorized over all tokens; one list per row is built at the end."""
    n_rows = len(rows.neurons)
    lengths = np.diff(rows.offsets)
    row_of = np.repeat(np.arange(n_rows), lengths)
    keep = (rows.starts < rows.ends) & np.isfinite(rows.values)
    row_of, starts, ends, values = row_of[keep], rows.starts[keep], rows.ends[keep], rows.values[keep]
    neuron_of = rows.neurons[row_of]
    size = int(rows.neurons.max()) + 1 if n_rows else 0
    peak = np.zeros(size)
    np.maximum.at(peak, neuron_of, np.abs(values))
    factor = np.divide(QUANT, peak, out=np.zeros(size), where=peak > 0)
    q = np.clip(np.rint(values * factor[neuron_of]), -QUANT, QUANT).astype(np.int64)
    order = np.lexsort((starts, row_of))
    bounds = np.concatenate([[0], np.cumsum(np.bincount(row_of, minlength=n_rows))])
    sorted_starts, sorted_ends = starts[order], ends[order]
    previous_end = np.r_[0, sorted_ends[:-1]]
    previous_end[bounds[:-1][bounds[:-1] < len(order)]] = 0  # each row starts counting from 0
    triples = np.stack([sorted_starts - previous_end, sorted_ends - sorted_starts, q[order]], 1)
    flat = [triples[bounds[i] : bounds[i + 1]].ravel().tolist() for i in range(n_rows)]
    first_best = np.lexsort((np.arange(len(values)), -values, row_of))  # per row: largest value, then first token
    best: list[tuple[int, int] | None] = [None] * n_rows
    group_starts = np.flatnonzero(np.r_[True, row_of[first_best][1:] != row_of[first_best][:-1]]) if len(values) else []
    for i in group_starts:
        j = first_best[i]
        best[int(row_of[j])] = (int(starts[j]), int(ends[j]))
    neurons = np.unique(rows.neurons)
    return EncodedRows(flat, best, {int(n): float(peak[n]) for n in neurons})


def top_from_topk(topk: PathLike, n: int) -> NeuronSentences:
    """Each neuron's first `n` top-K rows, best first, with the max token's span as the only highlighted token
    (an empty span, e.g. a pooled or special-token activation, highlights nothing)."""
    table = read_topk(topk, max_rank=n)
    neurons = table["neuron"].to_numpy().astype(np.int64)
    acts = table["activation"].to_numpy().astype(np.float64)
    encoded = encode_token_rows(TokenRows(neurons, np.arange(len(neurons) + 1), table["char_start"].to_numpy().astype(
        np.int64), table["char_end"].to_numpy().astype(np.int64), acts))  # fmt: skip
    result = NeuronSentences(scale=encoded.scale)
    for i, (neuron, sentence_id, act) in enumerate(zip(neurons.tolist(), table["sentence_id"].to_pylist(),
                                                        acts.tolist(), strict=True)):  # fmt: skip
        result.top.setdefault(neuron, []).append(ShownSentence(sentence_id, act, encoded.tokens[i], encoded.best[i]))
    return result


def sentences_from_records(records: LayerRecords, n_top: int) -> NeuronSentences:
    """Top sentences (kind 'top', the first `n_top` by rank) and quantile-band samples (kind 'quantile', by
    quantile) with every token's activation, from a layer's records; a NaN token activation counts as missing."""
    n = len(records)
    kinds, quants, ranks, sentence_ids = records.kind, records.quantile, records.rank, records.sentence_id.tolist()
    order = sorted(range(n), key=lambda i: (records.neuron[i], kinds[i] != "top", kinds[i],
                                            0.0 if math.isnan(quants[i]) else quants[i], ranks[i],
                                            sentence_ids[i]))  # fmt: skip
    index = np.asarray(order, dtype=np.int64)
    lengths = np.diff(records.offsets)[index]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    tokens = concat_ranges(records.offsets[:-1][index], lengths)
    neurons = records.neuron[index]
    encoded = encode_token_rows(TokenRows(neurons, offsets, records.char_start[tokens], records.char_end[tokens],
                                          records.values[tokens]))  # fmt: skip
    result = NeuronSentences(scale=encoded.scale, token_level=True)
    for j, i in enumerate(order):
        neuron = int(neurons[j])
        shown = ShownSentence(sentence_ids[i], float(records.activation[i]), encoded.tokens[j], encoded.best[j])
        if kinds[i] == "top":
            rows = result.top.setdefault(neuron, [])
            if len(rows) < n_top:
                rows.append(shown)
        else:
            shown.label = f"q{float(quants[i]):.2f}" if not math.isnan(quants[i]) else kinds[i]
            result.quantile.setdefault(neuron, []).append(shown)
    return result
