"""Neuron records (docs/ARCHITECTURE.md, "Records"): how each neuron behaves across its whole range, token by
token, computed cheaply.

Files under ``results/{run}/records/{model}/``:

* ``histogram_edges.npz`` (`write_histogram_edges`, before the scan): per layer ``layer{L}`` float32
  [n_neurons, bins + 1], each neuron's bin edges, strictly increasing. They come from the sample's pooled
  activations (``sample/{model}/{pooling}/layer{L}.npy``, the run's pooling): the sample's range [min, max] widened
  by ``margin`` x range on each side, cut into ``bins`` equal bins (a constant neuron gets
  [v - h, v + h] with h = max(|v|, 1) / 2). Why from the sample and not fixed numbers in the config: neurons differ
  by orders of magnitude (BERT's outlier dimensions reach -10 and beyond while most neurons stay within +-2), so one
  fixed range would waste most bins of most neurons. The edges are one file made before any shard is scanned, so
  every shard counts with the same edges and shard histograms add exactly.
* ``hist_layer{L}.parquet`` (`merge_histograms`, all layers in one job, `HISTOGRAM_SCHEMA`): each neuron's histogram of its pooled
  activation over the whole corpus: the int64 counts of the acts files (`neurotext.scan` counts each shard's
  sentences into the edges above) summed, which is exact in any order; min and max merged likewise. Bin j counts
  values in [edges[j], edges[j + 1]); `underflow` counts values below edges[0] (and NaN), `overflow` values at or
  above edges[bins].
* ``layer{L}.parquet`` (`build_records`, `RECORDS_SCHEMA`): token-level activations of each neuron over
  - its top ``top_n`` sentences (kind ``top``, ranks from ``topk/{model}/layer{L}.parquet``), and
  - its quantile samples (kind ``quantile``): the sample sentences sorted by the neuron's activation (ascending,
    ties by sentence id; NaN lowest) are cut by rank into ``bands`` equal bands (band 0 lowest; band b holds ranks
    [b n // B, (b + 1) n // B)); each band gives its ``per_band`` sentences with the smallest
    splitmix64(sentence_id ^ seed). The sample is a uniform random sample of the corpus, so a band of the sample
    stands for the same quantile band of the corpus. The priority does not depend on the neuron, so a uniform pick
    within each band of each neuron still reuses the same few sentences across neurons: the quantile union stays at
    a few dozen to a few hundred sentences however many neurons there are, and re-running them is nearly free.
  The top sentences are not re-run: the scan keeps each neuron's top ``top_n`` sentences of every shard with the
  neuron's activation at each token (`neurotext.toptokens`, ``acts/{model}/{dataset}/{shard}.toptokens.npz``), and
  the top rows are looked up there (their pooled activation is the top K's own). Only the quantile samples'
  sentences (a few hundred) are re-run: one job for all layers, each sentence once, its forward pass stopped after
  the deepest layer that wants it. (Re-running the top sentences too, as before, cost most of a second scan on the
  demo: 20.6k sentences, 58% of the corpus; `build_records` without `top_tokens` still does that.) Each row holds the
  sentence's tokens that carry text (special tokens left out) with their character
  offsets into the corpus text (the fast tokenizer's offsets, so accents, emoji and other normalized characters
  still map to the original string) and the neuron's activation at each (float32, as computed in float32 or under
  the configured autocast dtype), plus the sentence's pooled activation recomputed here in the run's pooling
  (exclude_special as configured; a sentence of special tokens only pools over them and has empty token lists).

Config block ``records`` (`RecordSettings`): top_n (20), bands (5), per_band (5), seed (0),
histogram: {bins (64), margin (0.1)}.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from neurotext.artifacts import records as artifacts_records
from neurotext.artifacts.corpus import read_texts as read_corpus_texts
from neurotext.artifacts.paths import layer_of_path
from neurotext.artifacts.records import HISTOGRAM_SCHEMA, KINDS, RECORDS_SCHEMA, concat_ranges
from neurotext.config import ConfigError
from neurotext.ids import splitmix64
from neurotext.io import save_npz, write_parquet
from neurotext.logs import progress

if TYPE_CHECKING:  # torch and the encoder are imported where the model runs, so histogram jobs start in a second
    import torch

    from neurotext.encoder import Encoder, ModelSettings, Tokens

log = logging.getLogger("neurotext.records")

# --------------------------------------------------------------------------------------------------------------
# Settings


@dataclass(frozen=True)
class HistogramSettings:
    """``records.histogram``: bins per neuron and the margin (a fraction of the sample's range) added each side."""

    bins: int
    margin: float

    @classmethod
    def from_config(cls, block: Mapping[str, Any] | None) -> HistogramSettings:
        """The validated ``records.histogram`` block (schema defaults filled); a wrong, unknown or missing key
        raises ConfigError naming it."""
        hist = _block(block, "records.histogram", {"bins", "margin"})
        margin = _require(hist, "records.histogram.margin")
        if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0 <= margin <= 100:
            raise ConfigError(f"records.histogram.margin = {margin!r}: a number in 0..100 (fraction of the range)")
        return cls(bins=_int(hist, "records.histogram.bins", 1, 100_000), margin=float(margin))


@dataclass(frozen=True)
class RecordSettings:
    """The ``records`` config block, validated (see the module docstring; the defaults are the config schema's,
    filled in by `neurotext.validate`: none here)."""

    top_n: int
    bands: int
    per_band: int
    seed: int
    histogram: HistogramSettings

    @classmethod
    def from_config(cls, block: Mapping[str, Any] | None) -> RecordSettings:
        """The validated ``records`` block (schema defaults filled; partial blocks:
        ``neurotext.validate.with_defaults("records", partial)``); a wrong, unknown or missing key raises
        ConfigError naming it."""
        block = _block(block, "records", {"top_n", "bands", "per_band", "seed", "histogram"})
        return cls(
            top_n=_int(block, "records.top_n", 0),
            bands=_int(block, "records.bands", 1),
            per_band=_int(block, "records.per_band", 0),
            seed=_int(block, "records.seed", 0, 2**64 - 1),
            histogram=HistogramSettings.from_config(_require(block, "records.histogram")),
        )


def _block(block: Any, key: str, known: set[str]) -> Mapping[str, Any]:
    if block is None:
        return {}
    if not isinstance(block, Mapping):
        raise ConfigError(f"{key} = {block!r}: a mapping of settings")
    unknown = sorted(set(block) - known)
    if unknown:
        raise ConfigError(f"{key}.{unknown[0]}: unknown key; the keys are {', '.join(sorted(known))}")
    return block


def _require(block: Mapping[str, Any], key: str) -> Any:
    """``block[last part of key]``; missing = ConfigError naming `key` (every default is filled by validation)."""
    name = key.rsplit(".", 1)[1]
    if name not in block:
        raise ConfigError(
            f"config key `{key}` is missing: the config schema fills its default, so this block was not validated "
            "(use neurotext.validate.check_config, or with_defaults for a partial block)"
        )
    return block[name]


def _int(block: Mapping[str, Any], key: str, minimum: int, maximum: int | None = None) -> int:
    value = _require(block, key)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or (maximum and value > maximum):
        bound = f" and at most {maximum}" if maximum else ""
        raise ConfigError(f"{key} = {value!r}: an integer >= {minimum}{bound}")
    return value


# --------------------------------------------------------------------------------------------------------------
# Histogram edges (before the scan) and the merged histograms (after it)


def histogram_edges(values: np.ndarray, bins: int, margin: float) -> np.ndarray:
    """Bin edges per neuron from sample activations `values` float [n, H]: float32 [H, bins + 1], strictly
    increasing. Range: the finite values' [min, max] widened by margin x (max - min) on each side; a constant (or
    empty) neuron v gets [v - h, v + h], h = max(|v|, 1) / 2."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.where(np.isfinite(values), values, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns (empty sample) give NaN: handled below
        low = np.nanmin(finite, axis=0) if len(finite) else np.full(values.shape[1], np.nan)
        high = np.nanmax(finite, axis=0) if len(finite) else np.full(values.shape[1], np.nan)
    low, high = np.nan_to_num(low, nan=0.0), np.nan_to_num(high, nan=0.0)
    span = high - low
    constant = 0.5 * np.maximum(np.abs(low), 1.0)
    lo = np.where(span > 0, low - margin * span, low - constant)
    hi = np.where(span > 0, high + margin * span, high + constant)
    fractions = np.arange(bins + 1, dtype=np.float64) / bins
    edges = (lo[:, None] + (hi - lo)[:, None] * fractions[None, :]).astype(np.float32)
    edges[:, -1] = hi.astype(np.float32)
    for j in range(1, bins + 1):  # float32 rounding may merge neighbours of a narrow range: keep them apart
        edges[:, j] = np.maximum(edges[:, j], np.nextafter(edges[:, j - 1], np.float32(np.inf)))
    return edges


def write_histogram_edges(sample_acts: Sequence[str], histogram: Mapping[str, Any] | None, out: str) -> None:
    """Write ``histogram_edges.npz`` (key ``layer{L}`` per input) from the sample activation files
    ``.../layer{L}.npy`` (float32 [n_sample, n_neurons]); `histogram` is the ``records.histogram`` block."""
    settings = HistogramSettings.from_config(histogram)
    arrays: dict[str, np.ndarray] = {}
    for path in sample_acts:
        layer = layer_of_path(path)
        values = np.load(path, allow_pickle=False)
        if values.ndim != 2:
            raise ValueError(f"{path}: expected sample activations [n_sample, n_neurons], got shape {values.shape}")
        arrays[f"layer{layer}"] = histogram_edges(values, settings.bins, settings.margin)
    log.info("histogram edges: %d layers, %d bins, margin %g", len(arrays), settings.bins, settings.margin)
    save_npz(out, arrays)


@dataclass
class MergedHistogram:
    """One layer's histograms: edges float32 [H, bins + 1]; counts int64 [H, bins + 2] (underflow, bins,
    overflow); minimum / maximum float32 [H] (+inf / -inf when nothing was counted); n_sentences."""

    edges: np.ndarray
    counts: np.ndarray
    minimum: np.ndarray
    maximum: np.ndarray
    n_sentences: int


def read_acts_histogram(path: str | os.PathLike[str], layer: int) -> MergedHistogram:
    """The histogram of layer `layer` stored in one acts npz by the scan; errors name the file."""
    names = [f"layer{layer}_hist", f"layer{layer}_hist_edges", f"layer{layer}_hist_min", f"layer{layer}_hist_max"]
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [name for name in names if name not in archive.files]
            if missing:
                raise ValueError(
                    f"{path}: holds no histogram of layer {layer} ({missing[0]} missing): it was scanned without "
                    "histogram edges; rerun its scan_shard job with the records rules in the workflow"
                )
            counts, edges, minimum, maximum = (archive[name] for name in names)
            n_sentences = int(archive["n_sentences"][0])
    except (OSError, KeyError, EOFError) as error:
        raise ValueError(f"{path}: not a readable acts file ({error}); rerun its scan_shard job") from error
    if counts.shape != (edges.shape[0], edges.shape[1] + 1) or counts.dtype != np.int64:
        raise ValueError(f"{path}: layer {layer} histogram {counts.shape} does not fit its edges {edges.shape}")
    if (counts.sum(axis=1) != n_sentences).any():
        raise ValueError(f"{path}: layer {layer} histogram does not count each of its {n_sentences} sentences once")
    return MergedHistogram(edges, counts, minimum, maximum, n_sentences)


def merge_histogram_parts(parts: Sequence[MergedHistogram], names: Sequence[str] = ()) -> MergedHistogram:
    """Sum the counts and merge min / max of histograms with identical edges (exact in any order). `names` label
    the parts in errors."""
    if not parts:
        raise ValueError("merge_histograms: no acts files")
    first = parts[0]
    counts = np.zeros_like(first.counts)
    minimum = np.full(first.minimum.shape, np.inf, dtype=np.float32)
    maximum = np.full(first.maximum.shape, -np.inf, dtype=np.float32)
    n_sentences = 0
    for index, part in enumerate(parts):
        if part.edges.shape != first.edges.shape or not np.array_equal(part.edges, first.edges):
            name = names[index] if index < len(names) else f"part {index}"
            raise ValueError(
                f"{name}: counted with other histogram edges than {names[0] if names else 'part 0'}; rerun the "
                "scan_shard jobs after records/{model}/histogram_edges.npz changed"
            )
        counts += part.counts
        minimum = np.fmin(minimum, part.minimum.astype(np.float32))
        maximum = np.fmax(maximum, part.maximum.astype(np.float32))
        n_sentences += part.n_sentences
    return MergedHistogram(first.edges, counts, minimum, maximum, n_sentences)


def histogram_table(merged: MergedHistogram) -> pa.Table:
    """A `HISTOGRAM_SCHEMA` table, one row per neuron."""
    n_neurons, n_edges = merged.edges.shape
    bins = n_edges - 1

    def lists(values: np.ndarray, width: int, value_type: pa.DataType) -> pa.Array:
        offsets = pa.array(np.arange(n_neurons + 1, dtype=np.int32) * width)
        return pa.ListArray.from_arrays(offsets, pa.array(np.ascontiguousarray(values).ravel(), value_type))

    empty = ~np.isfinite(merged.minimum)
    return pa.Table.from_arrays(
        [
            pa.array(np.arange(n_neurons, dtype=np.int32)),
            lists(merged.edges, n_edges, pa.float32()),
            lists(merged.counts[:, 1:-1], bins, pa.int64()),
            pa.array(merged.counts[:, 0]),
            pa.array(merged.counts[:, -1]),
            pa.array(np.full(n_neurons, merged.n_sentences, dtype=np.int64)),
            pa.array(merged.minimum.astype(np.float32), mask=empty),
            pa.array(merged.maximum.astype(np.float32), mask=empty),
        ],
        schema=HISTOGRAM_SCHEMA,
    )


def merge_histograms(acts: Sequence[str], layers: Sequence[int], outputs: Sequence[str], config_hash: str) -> None:
    """For each layer L = `layers[i]`, merge L's histograms of all acts files into `outputs[i]`
    (``hist_layer{L}.parquet``); the order of `acts` does not change the bytes. Every file must have been counted
    with the same edges."""
    if len(layers) != len(outputs):
        raise ValueError("merge_histograms: layers and outputs must be parallel lists")
    paths = sorted(acts)
    for layer, out in zip(layers, outputs, strict=True):
        parts = [read_acts_histogram(path, int(layer)) for path in progress(paths, desc=f"histograms layer {layer}")]
        merged = merge_histogram_parts(parts, paths)
        log.info("layer %d: histograms of %d neurons over %d sentences from %d acts files", layer,
                 merged.edges.shape[0], merged.n_sentences, len(paths))  # fmt: skip
        write_parquet(histogram_table(merged), out, config_hash)


def read_histograms(path: str | os.PathLike[str]) -> MergedHistogram:
    """Read a ``hist_layer{L}.parquet`` back into arrays (counts with underflow first and overflow last), through
    `neurotext.artifacts.records.read_histograms`."""
    hist = artifacts_records.read_histograms(path)
    counts = np.column_stack([hist.underflow, hist.counts, hist.overflow]).astype(np.int64)
    n_sentences = int(hist.n[0]) if len(hist) else 0
    return MergedHistogram(hist.edges.astype(np.float32), counts, hist.minimum.astype(np.float32),
                           hist.maximum.astype(np.float32), n_sentences)  # fmt: skip


# --------------------------------------------------------------------------------------------------------------
# Which (neuron, sentence) pairs get token-level records


@dataclass
class Requests:
    """(neuron, sentence) pairs to record, arrays of one length R: neuron int32, kind uint8 (index into KINDS),
    band int16 (-1 for top), quantile float32 (NaN for top), rank int32, sentence_id uint32."""

    neuron: np.ndarray
    kind: np.ndarray
    band: np.ndarray
    quantile: np.ndarray
    rank: np.ndarray
    sentence_id: np.ndarray

    def __len__(self) -> int:
        return len(self.neuron)

    @classmethod
    def concat(cls, parts: Sequence[Requests]) -> Requests:
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in cls.__dataclass_fields__))

    def sorted(self) -> Requests:
        """Sorted by (neuron, kind, band, rank)."""
        order = np.lexsort((self.rank, self.band, self.kind, self.neuron))
        return Requests(*(getattr(self, f)[order] for f in self.__dataclass_fields__))


def top_requests(topk: str | os.PathLike[str], top_n: int) -> Requests:
    """Each neuron's top `top_n` sentences from a ``topk/{model}/layer{L}.parquet`` (fewer when K is smaller)."""
    try:
        table = pq.read_table(topk, columns=["neuron", "rank", "sentence_id"])
    except (OSError, pa.ArrowInvalid, KeyError) as error:
        raise ValueError(f"{topk}: not a readable top-K file ({error}); rerun merge_topk") from error
    rank = table.column("rank").to_numpy()
    keep = np.flatnonzero(rank < top_n)
    n = len(keep)
    return Requests(
        neuron=table.column("neuron").to_numpy()[keep].astype(np.int32),
        kind=np.zeros(n, dtype=np.uint8),
        band=np.full(n, -1, dtype=np.int16),
        quantile=np.full(n, np.nan, dtype=np.float32),
        rank=rank[keep].astype(np.int32),
        sentence_id=table.column("sentence_id").to_numpy()[keep].astype(np.uint32),
    )


def band_starts(n: int, bands: int) -> np.ndarray:
    """First rank of each band, int64 [bands + 1] (the last is n): band b holds ranks [b n // B, (b + 1) n // B)."""
    return np.arange(bands + 1, dtype=np.int64) * n // bands


def quantile_requests(
    values: np.ndarray, sentence_ids: np.ndarray, bands: int, per_band: int, seed: int, chunk: int = 512
) -> Requests:
    """Quantile samples of every neuron from sample activations `values` float [n, H] whose rows are the sample
    sentences `sentence_ids` (uint32 [n], increasing). Per neuron: rows sorted by activation ascending (ties: lower
    sentence id first; NaN lowest), cut by rank into `bands` bands, and from each band the `per_band` rows with the
    smallest splitmix64(sentence_id ^ seed) (ties: lower id); rank = pick order, quantile = (rank in the sample +
    0.5) / n. Neurons are processed `chunk` at a time (memory: a few [n, chunk] int64 arrays)."""
    values = np.asarray(values)
    n, n_neurons = values.shape
    sentence_ids = np.asarray(sentence_ids, dtype=np.uint32)
    if len(sentence_ids) != n:
        raise ValueError(f"{len(sentence_ids)} sample sentence ids for {n} rows of sample activations")
    starts = band_starts(n, bands)
    band_of_rank = (np.searchsorted(starts, np.arange(n), side="right") - 1).astype(np.int16)
    priority = splitmix64(sentence_ids.astype(np.uint64) ^ np.uint64(seed))
    by_priority = np.lexsort((sentence_ids, priority))  # rows in pick order, the same for every neuron
    parts: list[Requests] = []
    for begin in range(0, n_neurons, chunk):
        block = values[:, begin : begin + chunk].astype(np.float64)
        block = np.where(np.isnan(block), -np.inf, block)
        order = np.argsort(block, axis=0, kind="stable")  # rows are in id order, so ties go to the lower id
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, np.arange(n)[:, None].repeat(block.shape[1], axis=1), axis=0)
        band = band_of_rank[rank][by_priority]  # [n, chunk], rows in pick order
        for b in range(bands):
            in_band = band == b
            pick = np.cumsum(in_band, axis=0)
            position, column = np.nonzero(in_band & (pick <= per_band))
            rows = by_priority[position]
            parts.append(
                Requests(
                    neuron=(begin + column).astype(np.int32),
                    kind=np.ones(len(rows), dtype=np.uint8),
                    band=np.full(len(rows), b, dtype=np.int16),
                    quantile=((rank[rows, column] + 0.5) / n).astype(np.float32),
                    rank=(pick[position, column] - 1).astype(np.int32),
                    sentence_id=sentence_ids[rows],
                )
            )
    return Requests.concat(parts) if parts else empty_requests()


def empty_requests() -> Requests:
    """No requests."""
    return Requests(
        np.empty(0, np.int32), np.empty(0, np.uint8), np.empty(0, np.int16), np.empty(0, np.float32),
        np.empty(0, np.int32), np.empty(0, np.uint32),
    )  # fmt: skip


def read_sample(sample: str | os.PathLike[str], sample_acts: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Sample sentence ids (uint32 [n], increasing) and their activations (float32 [n, H]), checked to match."""
    ids = pq.read_table(sample, columns=["sentence_id"]).column(0).to_numpy().astype(np.uint32)
    order = np.argsort(ids, kind="stable")
    ids = ids[order]
    values = np.load(sample_acts, allow_pickle=False)
    if values.ndim != 2 or values.shape[0] != len(ids):
        raise ValueError(
            f"{sample_acts}: shape {values.shape} does not fit the {len(ids)} sentences of {sample}; rerun "
            "sample_activations"
        )
    if len(ids) > 1 and not (np.diff(ids.astype(np.int64)) > 0).all():
        raise ValueError(f"{sample}: repeats a sentence id; rerun sample_sentences")
    return ids, values


# --------------------------------------------------------------------------------------------------------------
# Texts and token-level activations


def read_texts(corpus: Sequence[str], sentence_ids: np.ndarray) -> list[str]:
    """Texts of `sentence_ids` (uint32, sorted and unique) from corpus parquet files, in that order
    (`artifacts.corpus.read_texts`: only the row groups holding a wanted id are read; a missing id is an error)."""
    try:
        texts = read_corpus_texts(corpus, sentence_ids)
    except ValueError as error:
        raise ValueError(f"{error} (corpus files: {', '.join(sorted(map(str, corpus)))}); rerun the scan") from error
    return [texts[int(i)] for i in np.asarray(sentence_ids, dtype=np.uint32)]


@dataclass
class TextTokens:
    """The tokens that carry text (non-special) of n sentences, flat: sentence i owns [offsets[i], offsets[i+1]).
    positions: int64 index within the sentence's tokens; char_start / char_end: int32 offsets into its text."""

    offsets: np.ndarray
    positions: np.ndarray
    char_start: np.ndarray
    char_end: np.ndarray


def text_tokens(tokens: Tokens) -> TextTokens:
    """The non-special tokens of `tokens`."""
    n = len(tokens)
    sentence = np.repeat(np.arange(n), tokens.lengths)
    local = np.arange(len(tokens.input_ids), dtype=np.int64) - tokens.offsets[sentence]
    keep = ~tokens.special_mask
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(sentence[keep], minlength=n), out=offsets[1:])
    return TextTokens(offsets, local[keep], tokens.char_start[keep], tokens.char_end[keep])


def check_offsets(texts: Sequence[str], text: TextTokens) -> None:
    """Every text token's span lies inside its sentence's text (0 <= start <= end <= len(text))."""
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    limit = np.repeat(lengths, np.diff(text.offsets))
    bad = np.flatnonzero((text.char_start < 0) | (text.char_start > text.char_end) | (text.char_end > limit))
    if bad.size:
        sentence = int(np.searchsorted(text.offsets, bad[0], side="right") - 1)
        raise ValueError(
            f"token offsets ({text.char_start[bad[0]]}, {text.char_end[bad[0]]}) fall outside sentence {sentence} "
            f"of {lengths[sentence]} characters: the tokenizer's offsets do not index the text (a fast tokenizer "
            "with character offsets is needed)"
        )


def run_layers(
    encoder: Encoder,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    layers: Sequence[int],
    on_layer: Callable[[int, torch.Tensor], None],
) -> None:
    """Run one padded batch through `encoder` and call ``on_layer(layer, activations)`` for each of `layers`
    (1-based) with that layer's site activations, float32 [B, T, H] on the encoder's device. The forward pass stops
    after the deepest of `layers`, so only one layer's activations are alive at a time (`Encoder.run`; with
    `model.features` the values are the layer's features)."""
    wanted = sorted(set(layers))
    if not wanted or wanted[0] < 1 or wanted[-1] > encoder.n_layers:
        raise ConfigError(f"layers {wanted}: the model has layers 1..{encoder.n_layers}")
    encoder.run(input_ids, attention_mask, lambda layer, acts: on_layer(layer, acts.float()), layers=wanted)


@dataclass
class TokenRecords:
    """Recomputed values of R requests of one layer: activation float32 [R] (pooled); offsets int64 [R + 1] into
    the flat char_start / char_end int32 and values float32 arrays (one entry per text token of the sentence)."""

    activation: np.ndarray
    offsets: np.ndarray
    char_start: np.ndarray
    char_end: np.ndarray
    values: np.ndarray


def depth_batches(
    tokens: Tokens, sentence_ids: np.ndarray, depth: np.ndarray, token_budget: int
) -> list[tuple[int, np.ndarray]]:
    """Batches of (depth, row indices): the sentences grouped by the deepest layer any request needs (`depth` int
    [n]), shallow groups first, each group in the scan's batch plan (length, then id, within `token_budget`)."""
    from neurotext.encoder import plan_batches

    batches: list[tuple[int, np.ndarray]] = []
    for layer in np.unique(depth).tolist():
        rows = np.flatnonzero(depth == layer)
        plan = plan_batches(tokens.lengths[rows], sentence_ids[rows], token_budget)
        batches.extend((int(layer), rows[batch]) for batch in plan)
    return batches


def record_tokens(
    encoder: Encoder,
    tokens: Tokens,
    sentence_ids: np.ndarray,
    requests: Mapping[int, Requests],
    model: ModelSettings,
    token_budget: int,
) -> dict[int, TokenRecords]:
    """For each layer's `requests`, the pooled activation and the neuron's activation at every text token of the
    request's sentence. `sentence_ids` (uint32, sorted, unique; `tokens` in the same order) must hold every
    requested sentence. Each sentence is run once, up to the deepest layer that requests it."""
    from neurotext.encoder import make_batch, pool_activations

    text = text_tokens(tokens)
    n_tokens = np.diff(text.offsets)
    depth = np.zeros(len(sentence_ids), dtype=np.int64)
    rows: dict[int, np.ndarray] = {}
    results: dict[int, TokenRecords] = {}
    for layer, wanted in requests.items():
        rows[layer] = np.searchsorted(sentence_ids, wanted.sentence_id)
        np.maximum.at(depth, rows[layer], layer)
        counts = n_tokens[rows[layer]]
        offsets = np.zeros(len(wanted) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        source = concat_ranges(text.offsets[rows[layer]], counts)
        results[layer] = TokenRecords(
            activation=np.full(len(wanted), np.nan, dtype=np.float32),
            offsets=offsets,
            char_start=text.char_start[source],
            char_end=text.char_end[source],
            values=np.full(int(offsets[-1]), np.nan, dtype=np.float32),
        )
    batches = depth_batches(tokens, sentence_ids, depth, token_budget)
    batch_of_row = np.full(len(sentence_ids), -1, dtype=np.int64)
    slot_of_row = np.zeros(len(sentence_ids), dtype=np.int64)
    for index, (_, batch_rows) in enumerate(batches):
        batch_of_row[batch_rows] = index
        slot_of_row[batch_rows] = np.arange(len(batch_rows))
    by_batch = {layer: np.argsort(batch_of_row[rows[layer]], kind="stable") for layer in requests}
    bounds = {
        layer: np.searchsorted(batch_of_row[rows[layer]][by_batch[layer]], np.arange(len(batches) + 1))
        for layer in requests
    }
    for index in progress(range(len(batches)), desc="records", unit="batch"):
        deepest, batch_rows = batches[index]
        batch = make_batch(tokens, batch_rows, model.exclude_special, encoder.device)

        def gather(
            layer: int, acts: torch.Tensor, index: int = index, pool_mask: torch.Tensor = batch.pool_mask
        ) -> None:
            wanted = by_batch[layer][bounds[layer][index] : bounds[layer][index + 1]]
            if not wanted.size:
                return
            out = results[layer]
            slot = slot_of_row[rows[layer][wanted]]
            neuron = requests[layer].neuron[wanted]
            pooled = pool_activations(acts, pool_mask, model.pooling).values.cpu().numpy()
            out.activation[wanted] = pooled[slot, neuron]
            counts = n_tokens[rows[layer][wanted]]
            src = concat_ranges(text.offsets[rows[layer][wanted]], counts)
            dst = concat_ranges(out.offsets[wanted], counts)
            acts_np = acts.cpu().numpy()
            out.values[dst] = acts_np[np.repeat(slot, counts), text.positions[src], np.repeat(neuron, counts)]

        layers = [layer for layer in requests if layer <= deepest]
        run_layers(encoder, batch.input_ids, batch.attention_mask, layers, gather)
    return results


def records_table(requests: Requests, recorded: TokenRecords, truncated: np.ndarray) -> pa.Table:
    """A `RECORDS_SCHEMA` table from sorted requests and their recomputed values (`truncated` bool [R])."""
    offsets = pa.array(recorded.offsets.astype(np.int32))

    def lists(values: np.ndarray, value_type: pa.DataType) -> pa.Array:
        return pa.ListArray.from_arrays(offsets, pa.array(values, type=value_type))

    top = requests.kind == 0
    return pa.Table.from_arrays(
        [
            pa.array(requests.neuron, pa.int32()),
            pa.array(np.asarray(KINDS, dtype=object)[requests.kind], pa.string()),
            pa.array(requests.band, pa.int16(), mask=top),
            pa.array(requests.quantile, pa.float32(), mask=top),
            pa.array(requests.rank, pa.int32()),
            pa.array(requests.sentence_id, pa.uint32()),
            pa.array(recorded.activation, pa.float32()),
            pa.array(truncated, pa.bool_()),
            lists(recorded.char_start, pa.int32()),
            lists(recorded.char_end, pa.int32()),
            lists(recorded.values, pa.float32()),
        ],
        schema=RECORDS_SCHEMA,
    )


def layer_requests(
    topk: str, sample_ids: np.ndarray, sample_values: np.ndarray, settings: RecordSettings
) -> tuple[Requests, int, int]:
    """One layer's requests, sorted: the top `settings.top_n` of `topk` and the quantile samples of the sample's
    activations `sample_values` [n, H]; also the counts of top and quantile rows."""
    top = top_requests(topk, settings.top_n)
    quantile = quantile_requests(sample_values, sample_ids, settings.bands, settings.per_band, settings.seed)
    n_neurons = sample_values.shape[1]
    if len(top) and int(top.neuron.max()) >= n_neurons:
        raise ValueError(f"{topk}: neuron {int(top.neuron.max())}, but the sample activations have {n_neurons} neurons")
    return Requests.concat([top, quantile]).sorted(), len(top), len(quantile)


def build_records(
    topk: Sequence[str],
    sample: str,
    sample_acts: Sequence[str],
    corpus: Sequence[str],
    model_dir: str,
    model: Mapping[str, Any],
    scan: Mapping[str, Any],
    records: Mapping[str, Any] | None,
    layers: Sequence[int],
    outputs: Sequence[str],
    config_hash: str = "",
    top_tokens: Sequence[str] = (),
    shards: Sequence[str] = (),
) -> None:
    """Write ``records/{model}/layer{L}.parquet`` (`outputs[i]`) for each layer L = `layers[i]`: token-level
    activations of each neuron over its top ``records.top_n`` sentences (`topk[i]`) and its quantile samples (from
    `sample` + `sample_acts[i]`, the run's pooling). Only the union of these sentences is re-run (texts from
    `corpus`), each sentence once and only up to the deepest layer that wants it. `model` / `scan` / `records` are
    the config blocks (device, dtype, threads and token budget from `scan`). Same inputs and config, same bytes.

    With `top_tokens` (the scan's ``{shard}.toptokens.npz`` files, `shards[i]` the token shard of `top_tokens[i]`)
    the top rows are read from there (`neurotext.toptokens`: kept by the scan, their activation is the top K's) and
    only the quantile samples' sentences are re-run."""
    from neurotext.encoder import Encoder, ModelSettings, ScanSettings, load_tokenizer, tokenize

    if not len(topk) == len(sample_acts) == len(layers) == len(outputs):
        raise ValueError("build_records: topk, sample_acts, layers and outputs must be parallel lists")
    started = time.perf_counter()
    model_settings = ModelSettings.from_config(model)
    scan_settings = ScanSettings.from_config(scan)
    settings = RecordSettings.from_config(records)
    requests: dict[int, Requests] = {}
    n_neurons = None
    for layer, topk_path, acts_path in zip(layers, topk, sample_acts, strict=True):
        sample_ids, sample_values = read_sample(sample, acts_path)
        n_neurons = sample_values.shape[1]
        requests[int(layer)], n_top, n_quantile = layer_requests(topk_path, sample_ids, sample_values, settings)
        log.info("layer %d: %d top rows (top_n %d) + %d quantile rows (%d bands x %d), %d distinct sentences",
                 layer, n_top, settings.top_n, n_quantile, settings.bands, settings.per_band,
                 len(np.unique(requests[int(layer)].sentence_id)))  # fmt: skip
    from_scan = bool(top_tokens)
    rerun = {layer: _subset(r, r.kind != 0) for layer, r in requests.items()} if from_scan else requests
    wanted = [r.sentence_id for r in rerun.values()]
    sentence_ids = np.unique(np.concatenate(wanted)) if wanted else np.empty(0, np.uint32)
    texts = read_texts(corpus, sentence_ids)
    tokens = tokenize(load_tokenizer(model_dir), texts, model_settings.max_length)
    check_offsets(texts, text_tokens(tokens))
    log.info("%d distinct sentences (%d tokens) to re-run for %d layers", len(sentence_ids), len(tokens.input_ids),
             len(requests))  # fmt: skip
    recorded: dict[int, TokenRecords] = {}
    if len(sentence_ids):
        encoder = Encoder.from_settings(model_dir, model_settings, scan_settings)  # site, layers, features
        if n_neurons is not None and encoder.n_neurons != n_neurons:
            raise ValueError(
                f"{sample_acts[0]}: {n_neurons} neurons, but the model's site {model_settings.site!r} has "
                f"{encoder.n_neurons}; rerun sample_activations with this config"
            )
        recorded = record_tokens(encoder, tokens, sentence_ids, rerun, model_settings, scan_settings.token_budget)
    shard_cache: dict = {}  # each token shard read once for all layers
    for layer, out in zip(layers, outputs, strict=True):
        wanted_layer = requests[int(layer)]
        if from_scan:
            table = _records_from_scan(int(layer), wanted_layer, rerun[int(layer)], recorded.get(int(layer)),
                                       tokens, sentence_ids, top_tokens, shards, shard_cache)  # fmt: skip
        else:
            truncated = tokens.truncated[np.searchsorted(sentence_ids, wanted_layer.sentence_id)]
            table = records_table(wanted_layer, recorded[int(layer)], truncated)
        write_parquet(table, out, config_hash)
    log.info("%d layers, %d sentences re-run, %d records in %.1f s", len(requests), len(sentence_ids),
             sum(len(r) for r in requests.values()), time.perf_counter() - started)  # fmt: skip


def _subset(requests: Requests, mask: np.ndarray) -> Requests:
    """The requests where `mask` (bool [R]) holds, in their order."""
    return Requests(*(getattr(requests, f)[mask] for f in requests.__dataclass_fields__))


def _records_from_scan(
    layer: int,
    requests: Requests,
    quantile: Requests,
    recorded: TokenRecords | None,
    tokens: Tokens,
    sentence_ids: np.ndarray,
    top_tokens: Sequence[str],
    shards: Sequence[str],
    shard_cache: dict | None = None,
) -> pa.Table:
    """One layer's records table: top rows from the scan's top tokens, quantile rows from `recorded` (the re-run of
    `quantile`, the requests' quantile rows in order), merged back into the order of `requests` (sorted)."""
    from neurotext.toptokens import match_top_tokens

    is_top = requests.kind == 0
    top_rows, quantile_rows = np.flatnonzero(is_top), np.flatnonzero(~is_top)
    match = match_top_tokens(layer, requests.neuron[top_rows], requests.sentence_id[top_rows], top_tokens, shards,
                             shard_cache)  # fmt: skip
    n = len(requests)
    activation = np.full(n, np.nan, dtype=np.float32)
    truncated = np.zeros(n, dtype=bool)
    counts = np.zeros(n, dtype=np.int64)
    activation[top_rows], truncated[top_rows] = match.activation, match.truncated
    counts[top_rows] = np.diff(match.offsets)
    if len(quantile_rows):
        assert recorded is not None and len(quantile) == len(quantile_rows)
        activation[quantile_rows] = recorded.activation
        truncated[quantile_rows] = tokens.truncated[np.searchsorted(sentence_ids, quantile.sentence_id)]
        counts[quantile_rows] = np.diff(recorded.offsets)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    total = int(offsets[-1])
    merged = TokenRecords(activation, offsets, np.zeros(total, np.int32), np.zeros(total, np.int32),
                          np.zeros(total, np.float32))  # fmt: skip
    parts = [(top_rows, match.char_start, match.char_end, match.values)]
    if len(quantile_rows) and recorded is not None:
        parts.append((quantile_rows, recorded.char_start, recorded.char_end, recorded.values))
    for rows, char_start, char_end, values in parts:
        target = concat_ranges(offsets[rows], counts[rows])
        merged.char_start[target], merged.char_end[target], merged.values[target] = char_start, char_end, values
    return records_table(requests, merged, truncated)
