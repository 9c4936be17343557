"""Neuron records (issue 5): how each neuron behaves across its whole range, token by token, computed cheaply.

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
  Only the union of these sentences over all layers is re-run, never the corpus: one job for all layers, each
  sentence once, its forward pass stopped after the deepest layer that wants it (on the demo: 20.6k sentences,
  the work of 14.7k full passes, against 22.5k for one job per layer and 35.6k for the corpus). Each row holds the sentence's tokens that carry text (special tokens left out) with their character
  offsets into the corpus text (the fast tokenizer's offsets, so accents, emoji and other normalized characters
  still map to the original string) and the neuron's activation at each (float32, as computed in float32 or under
  the configured autocast dtype), plus the sentence's pooled activation recomputed here in the run's pooling
  (exclude_special as configured; a sentence of special tokens only pools over them and has empty token lists).

Config block ``records`` (`RecordSettings`): top_n (20), bands (5), per_band (5), seed (0),
histogram: {bins (64), margin (0.1)}.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from neurotext.config import ConfigError
from neurotext.ids import splitmix64
from neurotext.io import save_npz, write_parquet
from neurotext.logs import progress

if TYPE_CHECKING:  # torch and the encoder are imported where the model runs, so histogram jobs start in a second
    import torch

    from neurotext.encoder import Encoder, ModelSettings, Tokens

log = logging.getLogger("neurotext.records")

KINDS = ("top", "quantile")

#: `records/{model}/layer{L}.parquet`, rows sorted by (neuron, kind top first, band, rank).
RECORDS_SCHEMA = pa.schema(
    [
        pa.field("neuron", pa.int32(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),  # top | quantile
        pa.field("band", pa.int16()),  # quantile band, 0 = lowest; null for top
        pa.field("quantile", pa.float32()),  # (rank + 0.5) / n of the sentence in the sample, ascending; null for top
        pa.field("rank", pa.int32(), nullable=False),  # top: rank in the top K (0 = highest); quantile: pick order
        pa.field("sentence_id", pa.uint32(), nullable=False),
        pa.field("activation", pa.float32(), nullable=False),  # pooled (the run's pooling), recomputed here
        pa.field("truncated", pa.bool_(), nullable=False),  # the sentence had more than model.max_length tokens
        pa.field("token_char_start", pa.list_(pa.int32()), nullable=False),  # per text token, into the corpus text
        pa.field("token_char_end", pa.list_(pa.int32()), nullable=False),
        pa.field("token_activations", pa.list_(pa.float32()), nullable=False),
    ]
)

#: `records/{model}/hist_layer{L}.parquet`, one row per neuron.
HISTOGRAM_SCHEMA = pa.schema(
    [
        pa.field("neuron", pa.int32(), nullable=False),
        pa.field("edges", pa.list_(pa.float32()), nullable=False),  # bins + 1, strictly increasing
        pa.field("counts", pa.list_(pa.int64()), nullable=False),  # bins; bin j = [edges[j], edges[j + 1])
        pa.field("underflow", pa.int64(), nullable=False),  # values < edges[0], and NaN
        pa.field("overflow", pa.int64(), nullable=False),  # values >= edges[bins]
        pa.field("n", pa.int64(), nullable=False),  # sentences counted (the corpus)
        pa.field("min", pa.float32()),  # over the corpus, NaN ignored; null when nothing was counted
        pa.field("max", pa.float32()),
    ]
)


# --------------------------------------------------------------------------------------------------------------
# Settings


@dataclass(frozen=True)
class HistogramSettings:
    """``records.histogram``: bins per neuron and the margin (a fraction of the sample's range) added each side."""

    bins: int = 64
    margin: float = 0.1


@dataclass(frozen=True)
class RecordSettings:
    """The ``records`` config block, validated (see the module docstring)."""

    top_n: int = 20
    bands: int = 5
    per_band: int = 5
    seed: int = 0
    histogram: HistogramSettings = HistogramSettings()

    @classmethod
    def from_config(cls, block: Mapping[str, Any] | None) -> RecordSettings:
        """Validate the ``records`` block (None = defaults); a wrong or unknown key raises ConfigError naming it."""
        block = _block(block, "records", {"top_n", "bands", "per_band", "seed", "histogram"})
        hist = _block(block.get("histogram"), "records.histogram", {"bins", "margin"})
        defaults, hist_defaults = cls(), HistogramSettings()
        margin = hist.get("margin", hist_defaults.margin)
        if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0 <= margin <= 100:
            raise ConfigError(f"records.histogram.margin = {margin!r}: a number in 0..100 (fraction of the range)")
        return cls(
            top_n=_int(block, "records.top_n", defaults.top_n, 0),
            bands=_int(block, "records.bands", defaults.bands, 1),
            per_band=_int(block, "records.per_band", defaults.per_band, 0),
            seed=_int(block, "records.seed", defaults.seed, 0, 2**64 - 1),
            histogram=HistogramSettings(
                bins=_int(hist, "records.histogram.bins", hist_defaults.bins, 1, 100_000), margin=float(margin)
            ),
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


def _int(block: Mapping[str, Any], key: str, default: int, minimum: int, maximum: int | None = None) -> int:
    value = block.get(key.rsplit(".", 1)[1], default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or (maximum and value > maximum):
        bound = f" and at most {maximum}" if maximum else ""
        raise ConfigError(f"{key} = {value!r}: an integer >= {minimum}{bound}")
    return value


# --------------------------------------------------------------------------------------------------------------
# Histogram edges (before the scan) and the merged histograms (after it)

_LAYER_FILE = re.compile(r"layer(\d+)\.npy$")


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
    settings = RecordSettings.from_config({"histogram": dict(histogram or {})}).histogram
    arrays: dict[str, np.ndarray] = {}
    for path in sample_acts:
        match = _LAYER_FILE.search(Path(path).name)
        if not match:
            raise ValueError(f"sample activations {path!r}: expected a file named layer{{L}}.npy")
        values = np.load(path, allow_pickle=False)
        if values.ndim != 2:
            raise ValueError(f"{path}: expected sample activations [n_sample, n_neurons], got shape {values.shape}")
        arrays[f"layer{int(match.group(1))}"] = histogram_edges(values, settings.bins, settings.margin)
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
    """Read a ``hist_layer{L}.parquet`` back into arrays (counts with underflow first and overflow last)."""
    table = pq.read_table(path)
    n = table.num_rows
    edges = np.stack(table.column("edges").to_numpy(zero_copy_only=False)) if n else np.empty((0, 2), np.float32)
    bins = np.stack(table.column("counts").to_numpy(zero_copy_only=False)) if n else np.empty((0, 1), np.int64)
    counts = np.column_stack([table.column("underflow").to_numpy(), bins, table.column("overflow").to_numpy()])
    minimum = table.column("min").to_numpy(zero_copy_only=False).astype(np.float32)
    maximum = table.column("max").to_numpy(zero_copy_only=False).astype(np.float32)
    n_sentences = int(table.column("n").to_numpy()[0]) if n else 0
    return MergedHistogram(edges.astype(np.float32), counts.astype(np.int64), minimum, maximum, n_sentences)


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
    """Texts of `sentence_ids` (uint32, sorted and unique) from corpus parquet files, in that order. Row groups whose
    sentence_id statistics exclude every wanted id are skipped; a missing id is an error."""
    wanted = np.asarray(sentence_ids, dtype=np.uint32)
    texts: list[str | None] = [None] * len(wanted)
    for path in sorted(corpus):
        parquet = pq.ParquetFile(path)
        names = parquet.schema_arrow.names
        if "sentence_id" not in names or "text" not in names:
            raise ValueError(f"{path}: not a corpus file (needs sentence_id and text columns)")
        id_column = names.index("sentence_id")
        for group in range(parquet.metadata.num_row_groups):
            stats = parquet.metadata.row_group(group).column(id_column).statistics
            if stats is not None and stats.has_min_max:
                lo, hi = np.searchsorted(wanted, [stats.min, stats.max + 1])
                if lo == hi:
                    continue
            ids = parquet.read_row_group(group, columns=["sentence_id"]).column(0).to_numpy().astype(np.uint32)
            hit = np.flatnonzero(np.isin(ids, wanted))
            if not hit.size:
                continue
            found = parquet.read_row_group(group, columns=["text"]).column(0).take(pa.array(hit)).to_pylist()
            for position, text in zip(np.searchsorted(wanted, ids[hit]).tolist(), found, strict=True):
                if texts[position] is not None:
                    raise ValueError(f"{path}: sentence id {int(wanted[position])} appears in two corpus rows")
                texts[position] = text
    missing = [int(wanted[i]) for i, text in enumerate(texts) if text is None]
    if missing:
        raise ValueError(
            f"sentence id {missing[0]} (and {len(missing) - 1} more) of the top K / sample is in none of the corpus "
            f"files {sorted(corpus)}; they come from different runs: rerun the scan"
        )
    return texts  # type: ignore[return-value]


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


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The concatenated ranges [starts[i], starts[i] + counts[i]) as one int64 array."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64)
    before = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return np.repeat(np.asarray(starts, dtype=np.int64) - before, counts) + np.arange(total, dtype=np.int64)


class _StopForward(Exception):
    """Raised by the hook of the deepest wanted layer: the layers above it are never run."""


def run_layers(
    encoder: Encoder,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    layers: Sequence[int],
    on_layer: Callable[[int, torch.Tensor], None],
) -> None:
    """Run one padded batch through `encoder` and call ``on_layer(layer, activations)`` for each of `layers`
    (1-based) with that layer's site activations, float32 [B, T, H] on the encoder's device. The forward pass stops
    after the deepest of `layers`, so only one layer's activations are alive at a time."""
    import torch

    wanted = sorted(set(layers))
    if not wanted or wanted[0] < 1 or wanted[-1] > encoder.n_layers:
        raise ConfigError(f"layers {wanted}: the model has layers 1..{encoder.n_layers}")
    deepest = wanted[-1]

    def make_hook(layer: int) -> Callable[..., None]:
        def hook(_module: torch.nn.Module, _inputs: Any, output: Any) -> None:
            on_layer(layer, (output[0] if isinstance(output, tuple) else output).float())
            if layer == deepest:
                raise _StopForward

        return hook

    handles = [encoder.site_modules[layer - 1].register_forward_hook(make_hook(layer)) for layer in wanted]
    autocast = (
        torch.autocast(device_type=encoder.device.type, dtype=encoder.autocast_dtype)
        if encoder.autocast_dtype is not None
        else contextlib.nullcontext()
    )
    try:
        with torch.inference_mode(), autocast:
            encoder.model(input_ids=input_ids, attention_mask=attention_mask)
    except _StopForward:
        pass
    finally:
        for handle in handles:
            handle.remove()


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
        source = _ranges(text.offsets[rows[layer]], counts)
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
            src = _ranges(text.offsets[rows[layer][wanted]], counts)
            dst = _ranges(out.offsets[wanted], counts)
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
) -> None:
    """Write ``records/{model}/layer{L}.parquet`` (`outputs[i]`) for each layer L = `layers[i]`: token-level
    activations of each neuron over its top ``records.top_n`` sentences (`topk[i]`) and its quantile samples (from
    `sample` + `sample_acts[i]`, the run's pooling). Only the union of these sentences is re-run (texts from
    `corpus`), each sentence once and only up to the deepest layer that wants it. `model` / `scan` / `records` are
    the config blocks (device, dtype, threads and token budget from `scan`). Same inputs and config, same bytes."""
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
    wanted = [r.sentence_id for r in requests.values()]
    sentence_ids = np.unique(np.concatenate(wanted)) if wanted else np.empty(0, np.uint32)
    texts = read_texts(corpus, sentence_ids)
    tokens = tokenize(load_tokenizer(model_dir), texts, model_settings.max_length)
    check_offsets(texts, text_tokens(tokens))
    log.info("%d distinct sentences (%d tokens) to re-run for %d layers", len(sentence_ids), len(tokens.input_ids),
             len(requests))  # fmt: skip
    encoder = Encoder.load(
        model_dir, site=model_settings.site, device=scan_settings.device, dtype=scan_settings.dtype,
        threads=scan_settings.threads,
    )  # fmt: skip
    if n_neurons is not None and encoder.n_neurons != n_neurons:
        raise ValueError(
            f"{sample_acts[0]}: {n_neurons} neurons, but the model's site {model_settings.site!r} has "
            f"{encoder.n_neurons}; rerun sample_activations with this config"
        )
    recorded = record_tokens(encoder, tokens, sentence_ids, requests, model_settings, scan_settings.token_budget)
    for layer, out in zip(layers, outputs, strict=True):
        wanted_layer = requests[int(layer)]
        truncated = tokens.truncated[np.searchsorted(sentence_ids, wanted_layer.sentence_id)]
        write_parquet(records_table(wanted_layer, recorded[int(layer)], truncated), out, config_hash)
    log.info("%d layers, %d sentences re-run, %d records in %.1f s", len(requests), len(sentence_ids),
             sum(len(r) for r in requests.values()), time.perf_counter() - started)  # fmt: skip
