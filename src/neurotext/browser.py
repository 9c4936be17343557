"""Browser stage: a static neuron browser that works from ``file://`` with no server and no network.

Files written under ``results/{run}/browser/`` (`build_browser`):

* ``index.html``, ``neuron.html``, ``assets/browser.js``, ``assets/style.css``: copied verbatim from the package's
  ``browser_assets/`` (hand-written; no CDN, no build step). They hold no run data.
* ``data/meta.js``: ``window.NEUROTEXT.meta`` = provenance (run, config hash, model, date, git commit), the layers,
  the sections the run had and the build settings.
* ``data/index.js``: ``window.NEUROTEXT.index`` = one compact row per neuron (name, summary, dominant domain and
  share, top patterns, top tokens, maximum activation, cluster, fine-tuning change) for the index page's search.
* ``data/layer{L}.js``: ``window.NEUROTEXT.layers[L]`` = the layer's sentence table (each shown sentence once) and
  one entry per neuron (top sentences with token activations, quantile samples, histogram, patterns, metadata bars,
  cluster mates, overlap partners, fine-tuning change), plus the layer's t-SNE map. ``neuron.html?L6.200`` loads
  only ``data/layer6.js``.

Why JavaScript data files: Chromium blocks ``fetch()`` of local files from a ``file://`` page, but loads
``<script src>``. Every corpus string reaches the page as a JSON string inside such a file (`js_assignment`: ``<``,
``>``, ``&``, U+2028 and U+2029 escaped, so no string can close a script element or break the JavaScript) and is put
into the page with ``textContent`` / DOM nodes only (``browser.js`` never uses ``innerHTML``).

Inputs, every one optional except the top K and the corpus (`BrowserInputs`; the page says what a run lacks):

* ``topk/base/layer{L}.parquet`` (`formats.TOPK_SCHEMA`): the top sentences (rank < `BrowserSettings.top_sentences`),
  each with its max token's span as the highlight when there are no records; the K-th activation (histogram mark);
  the dominant domain of the top K when there are no profiles.
* ``corpus/{dataset}.parquet`` (`formats.CORPUS_SCHEMA`): texts and metadata of the shown sentences, read once, row
  group by row group (row groups without a wanted id are skipped by their statistics).
* ``records/base/layer{L}.parquet``: token-level activations (`RECORD_COLUMNS` names the accepted columns): rows of
  kind ``top`` replace the top-K highlights, other kinds (quantile samples) replace the sample's quantile picks.
* ``sample/sentences.parquet`` + ``sample/base/{pooling}/layer{L}.npy`` (float32 [n_sample, n_neurons], rows in
  sentence-id order): each neuron's activation histogram over the sample and, without records, its quantile samples.
* ``patterns/layer{L}.parquet`` (kind + `formats.PATTERNS_SCHEMA`), ``profiles/layer{L}.parquet`` (summary,
  dominant domain), ``profiles/metadata/layer{L}.parquet`` (per field and value: share in the top K and in the
  corpus).
* ``relations/layer{L}/clusters_k{k}.parquet``, ``tsne.parquet``, ``overlap.parquet``.
* ``finetune/neurons.parquet`` (`finetune.NEURONS_SCHEMA`): one row per (layer, neuron); the `FINETUNE_FIELDS` it
  has are shown (the first, ``mean_abs_change``, also in the index).
* ``provenance.json``.

Sizes: a token is three small integers (`ShownSentence.tokens`: its start as a gap after the previous token, its
length, its activation quantized per neuron to -127..127 of the neuron's largest absolute token activation, so the
page shows ``q * scale / 127``, within 0.4% of that maximum); other floats keep 4 significant digits
(`round_significant`). Same inputs and settings give the same bytes (no clock, no set order).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from neurotext.config import ConfigError
from neurotext.formats import METADATA_FIELDS
from neurotext.io import atomic_output, read_config_hash, write_text
from neurotext.logs import progress

log = logging.getLogger("neurotext.browser")

PathLike = str | os.PathLike[str]

#: Static files copied from the package's ``browser_assets/`` into the browser directory (source -> target).
ASSET_FILES: dict[str, str] = {
    "index.html": "index.html",
    "neuron.html": "neuron.html",
    "browser.js": "assets/browser.js",
    "style.css": "assets/style.css",
}

#: Accepted column names of the records file, first match wins (issue 5's file; the lists keep the browser working
#: whichever of these spellings it settles on). Required: neuron, sentence_id, starts, ends, values.
RECORD_COLUMNS: dict[str, tuple[str, ...]] = {
    "neuron": ("neuron",),
    "sentence_id": ("sentence_id",),
    "kind": ("kind", "section", "group", "sample"),
    "rank": ("rank",),
    "quantile": ("quantile", "band"),
    "activation": ("activation", "sentence_activation"),
    "starts": ("token_char_start", "token_char_starts", "char_starts", "char_start"),
    "ends": ("token_char_end", "token_char_ends", "char_ends", "char_end"),
    "values": ("token_activation", "token_activations", "token_values", "activations", "values"),
}

#: Metadata fields shown beside each sentence (after dataset and domain), each value cut to `_DETAIL_CHARS`.
SENTENCE_DETAIL_FIELDS = ("sentiment", "topic", "category", "genre", "author", "entity", "title", "year")
_DETAIL_CHARS = 60
_QUANT = 127  # token activations are stored as integers -_QUANT.._QUANT of the neuron's scale
_LAYER_IN_PATH = re.compile(r"layer(\d+)")


# --- settings ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BrowserSettings:
    """The ``browser`` config block.

    top_sentences: top sentences shown per neuron (capped by what the records or the top K hold).
    quantiles: quantiles (0..1) of the sample's activations whose sentences are shown (when the records have none).
    quantile_samples: sentences shown per quantile.
    histogram_bins: bins of each neuron's activation histogram over the sample.
    patterns_per_kind: rows per pattern kind on a neuron page (words: per word class).
    index_patterns: patterns per kind kept in the index (searchable; the first few are shown).
    metadata_values: values per metadata field on a neuron page.
    cluster_mates: cluster mates linked per neuron (nearest to the cluster centre first).
    overlap_partners: most-overlapping neurons linked per neuron and partner layer.
    top_tokens: most frequent max-activating tokens listed per neuron.
    """

    top_sentences: int = 20
    quantiles: tuple[float, ...] = (0.99, 0.9, 0.75, 0.5, 0.25, 0.1)
    quantile_samples: int = 1
    histogram_bins: int = 40
    patterns_per_kind: int = 10
    index_patterns: int = 3
    metadata_values: int = 8
    cluster_mates: int = 12
    overlap_partners: int = 5
    top_tokens: int = 5

    @classmethod
    def from_config(cls, block: Mapping[str, Any] | None) -> BrowserSettings:
        """Validate the ``browser`` config block; a wrong or unknown key raises `ConfigError` naming it."""
        if block is not None and not isinstance(block, Mapping):
            raise ConfigError(f"browser = {block!r}: give a mapping of browser settings")
        block = dict(block or {})
        known = {f.name for f in cls.__dataclass_fields__.values()}  # type: ignore[attr-defined]
        unknown = sorted(set(block) - known)
        if unknown:
            raise ConfigError(f"browser.{unknown[0]}: unknown key; known keys are {', '.join(sorted(known))}")
        values: dict[str, Any] = {}
        for name in known - {"quantiles"}:
            value = block.get(name, getattr(cls, name))
            minimum = 1 if name in ("quantile_samples", "histogram_bins") else 0
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ConfigError(f"browser.{name} = {value!r}: give an integer >= {minimum}")
            values[name] = value
        quantiles = block.get("quantiles", list(cls.quantiles))
        if not isinstance(quantiles, list | tuple) or not all(
            isinstance(q, int | float) and not isinstance(q, bool) and 0.0 <= q <= 1.0 for q in quantiles
        ):
            raise ConfigError(f"browser.quantiles = {quantiles!r}: give a list of numbers between 0 and 1")
        return cls(quantiles=tuple(float(q) for q in quantiles), **values)

    def as_dict(self) -> dict[str, Any]:
        return {name: (list(v) if isinstance(v, tuple) else v) for name, v in vars(self).items()}


# --- inputs -----------------------------------------------------------------------------------------------------


#: Per-layer inputs of `LayerInputs` (the names the rule's input uses).
LAYER_INPUTS: tuple[str, ...] = (
    "topk", "records", "patterns", "profiles", "profile_metadata", "clusters", "tsne", "overlap", "sample_acts",
)  # fmt: skip


@dataclass(frozen=True)
class LayerInputs:
    """One layer's input files; every one but `topk` may be None."""

    layer: int
    topk: Path
    records: Path | None = None
    patterns: Path | None = None
    profiles: Path | None = None
    profile_metadata: Path | None = None
    clusters: Path | None = None
    tsne: Path | None = None
    overlap: Path | None = None
    sample_acts: Path | None = None


@dataclass(frozen=True)
class BrowserInputs:
    """Everything the browser reads (see the module docstring)."""

    layers: tuple[LayerInputs, ...]
    corpus: tuple[Path, ...]
    sample: Path | None = None
    provenance: Path | None = None
    finetune: Path | None = None

    @classmethod
    def from_files(cls, named: Mapping[str, Sequence[PathLike] | PathLike | None]) -> BrowserInputs:
        """Inputs from the rule's named file lists: the per-layer names of `LAYER_INPUTS` (each path's layer read
        from its ``layer{L}`` part, as DESIGN.md names them), ``corpus``, and single ``sample``, ``provenance``,
        ``finetune``. A per-layer file whose layer has no top K is an error naming it."""
        by_layer: dict[str, dict[int, Path]] = {}
        for name in LAYER_INPUTS:
            files = _as_list(named.get(name))
            mapping: dict[int, Path] = {}
            for path in files:
                found = _LAYER_IN_PATH.findall(Path(path).as_posix())
                if not found:
                    raise ValueError(f"browser input {name}: {path} has no layer{{L}} in its path")
                layer = int(found[-1])
                if layer in mapping:
                    raise ValueError(f"browser input {name}: two files for layer {layer}: {mapping[layer]}, {path}")
                mapping[layer] = Path(path)
            by_layer[name] = mapping
        if not by_layer["topk"]:
            raise ValueError("browser input topk: no top-K file given; the browser needs topk/base/layer{L}.parquet")
        for name, mapping in by_layer.items():
            extra = sorted(set(mapping) - set(by_layer["topk"]))
            if extra:
                raise ValueError(
                    f"browser input {name}: {mapping[extra[0]]} is for layer {extra[0]}, which has no top K"
                )
        layers = tuple(
            LayerInputs(layer, **{name: by_layer[name].get(layer) for name in LAYER_INPUTS})  # type: ignore[arg-type]
            for layer in sorted(by_layer["topk"])
        )
        corpus = tuple(Path(p) for p in _as_list(named.get("corpus")))
        if not corpus:
            raise ValueError("browser input corpus: no corpus file given; the browser needs corpus/{dataset}.parquet")
        return cls(layers, corpus, *(_single(named.get(n), n) for n in ("sample", "provenance", "finetune")))


def _as_list(value: Sequence[PathLike] | PathLike | None) -> list[PathLike]:
    if value is None:
        return []
    if isinstance(value, str | os.PathLike):
        return [value]
    return list(value)


def _single(value: Sequence[PathLike] | PathLike | None, name: str) -> Path | None:
    files = _as_list(value)
    if len(files) > 1:
        raise ValueError(f"browser input {name}: give one file, not {len(files)}")
    return Path(files[0]) if files else None


# --- shown sentences --------------------------------------------------------------------------------------------


@dataclass
class ShownSentence:
    """One sentence shown for a neuron, its token highlights already encoded for the page.

    `tokens`: flat ``[gap, length, q, gap, length, q, ...]``, tokens sorted by start: a token starts `gap` characters
    (code points) after the previous token's end (the first: after 0) and spans `length` characters; q =
    round(127 * token activation / the neuron's scale), clipped to -127..127. None when there are no token
    activations (a quantile sample from the sample activations). `best`: the span of the most activating
    token (None: none). `label`: '' for a top sentence, the quantile (e.g. 'q0.90') for a quantile sample.
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
    factor = np.divide(_QUANT, peak, out=np.zeros(size), where=peak > 0)
    q = np.clip(np.rint(values * factor[neuron_of]), -_QUANT, _QUANT).astype(np.int64)
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
    table = pq.read_table(topk, filters=pc.field("rank") < n).sort_by([("neuron", "ascending"), ("rank", "ascending")])
    neurons = table["neuron"].to_numpy().astype(np.int64)
    acts = table["activation"].to_numpy().astype(np.float64)
    encoded = encode_token_rows(TokenRows(neurons, np.arange(len(neurons) + 1), table["char_start"].to_numpy().astype(
        np.int64), table["char_end"].to_numpy().astype(np.int64), acts))  # fmt: skip
    result = NeuronSentences(scale=encoded.scale)
    for i, (neuron, sentence_id, act) in enumerate(zip(neurons.tolist(), table["sentence_id"].to_pylist(),
                                                        acts.tolist(), strict=True)):  # fmt: skip
        result.top.setdefault(neuron, []).append(ShownSentence(sentence_id, act, encoded.tokens[i], encoded.best[i]))
    return result


def _record_column(table: pa.Table, key: str) -> str | None:
    for name in RECORD_COLUMNS[key]:
        if name in table.column_names:
            return name
    return None


def _flat_list_column(column: pa.ChunkedArray, dtype: type) -> tuple[np.ndarray, np.ndarray]:
    """A list column as (lengths int64 [rows], flat values [sum lengths]); a null list counts as empty."""
    array = column.combine_chunks()
    lengths = pc.fill_null(pc.list_value_length(array), 0).to_numpy().astype(np.int64)
    flat = pc.list_flatten(array).to_numpy(zero_copy_only=False)
    return lengths, np.asarray(flat, dtype=dtype)


def read_records(path: PathLike, n_top: int) -> NeuronSentences:
    """Top sentences (kind 'top', the first `n_top` by rank) and quantile samples (any other kind) with every token's
    activation, from a records file (`RECORD_COLUMNS`); a null token activation counts as missing."""
    table = pq.read_table(path)
    names = {key: _record_column(table, key) for key in RECORD_COLUMNS}
    lists = ("starts", "ends", "values")
    missing = [key for key in ("neuron", "sentence_id", *lists) if names[key] is None]
    if missing or not all(pa.types.is_list(table[names[k]].type) or pa.types.is_large_list(table[names[k]].type)
                          for k in lists):  # fmt: skip
        wanted = "; ".join(f"{k}: one of {', '.join(RECORD_COLUMNS[k])}" for k in ("neuron", "sentence_id", *lists))
        raise ValueError(f"{path}: not a records file the browser can read (columns {table.column_names}); it needs "
                         f"{wanted}, the last three as lists (one entry per token)")  # fmt: skip
    n = table.num_rows
    kinds = [str(k) for k in table[names["kind"]].to_pylist()] if names["kind"] else ["top"] * n
    ranks = table[names["rank"]].to_numpy() if names["rank"] else np.arange(n)
    quants = table[names["quantile"]].to_pylist() if names["quantile"] else [None] * n
    neurons = table[names["neuron"]].to_numpy().astype(np.int64)
    sentence_ids = table[names["sentence_id"]].to_pylist()
    order = sorted(range(n), key=lambda i: (neurons[i], kinds[i] != "top", kinds[i], quants[i] or 0.0, ranks[i],
                                            sentence_ids[i]))  # fmt: skip
    table = table.take(pa.array(order, pa.int64()))
    kinds, quants, sentence_ids = (
        [kinds[i] for i in order],
        [quants[i] for i in order],
        [sentence_ids[i] for i in order],
    )
    neurons = neurons[order]
    (len_s, starts), (len_e, ends), (len_v, values) = (
        _flat_list_column(table[names["starts"]], np.int64), _flat_list_column(table[names["ends"]], np.int64),
        _flat_list_column(table[names["values"]], np.float64))  # fmt: skip
    bad = np.flatnonzero((len_s != len_e) | (len_s != len_v))
    if len(bad):
        i = int(bad[0])
        raise ValueError(f"{path}: the row of neuron {neurons[i]}, sentence {sentence_ids[i]} has {len_s[i]} starts, "
                         f"{len_e[i]} ends and {len_v[i]} token activations; they must match")  # fmt: skip
    offsets = np.concatenate([[0], np.cumsum(len_s)])
    encoded = encode_token_rows(TokenRows(neurons, offsets, starts, ends, values))
    if names["activation"]:
        acts = table[names["activation"]].to_numpy(zero_copy_only=False).astype(np.float64).tolist()
    else:
        acts = [max(values[a:b][np.isfinite(values[a:b])], default=math.nan) for a, b in zip(offsets[:-1], offsets[1:])]
    result = NeuronSentences(scale=encoded.scale, token_level=True)
    for i, neuron in enumerate(neurons.tolist()):
        if kinds[i] == "top":
            rows = result.top.setdefault(neuron, [])
            if len(rows) < n_top:
                rows.append(ShownSentence(sentence_ids[i], acts[i], encoded.tokens[i], encoded.best[i]))
        else:
            label = f"q{float(quants[i]):.2f}" if quants[i] is not None else kinds[i]
            result.quantile.setdefault(neuron, []).append(
                ShownSentence(sentence_ids[i], acts[i], encoded.tokens[i], encoded.best[i], label)
            )
    return result


# --- sample activations: histograms and quantile picks ----------------------------------------------------------


@dataclass(frozen=True)
class SampleActivations:
    """A layer's sentence activations over the sample: float32 [n_sample, n_neurons], rows = `sentence_ids`."""

    sentence_ids: np.ndarray  # uint32 [n_sample], ascending
    values: np.ndarray

    @classmethod
    def load(cls, sample: PathLike, acts: PathLike) -> SampleActivations:
        ids = np.sort(pq.read_table(sample, columns=["sentence_id"])["sentence_id"].to_numpy().astype(np.uint32))
        values = np.load(acts, mmap_mode="r")
        if values.ndim != 2 or values.shape[0] != len(ids):
            raise ValueError(f"{acts}: shape {values.shape}; expected [{len(ids)} sample sentences, neurons] as in "
                             f"{sample}; rerun the sample activations")  # fmt: skip
        return cls(ids, np.asarray(values, dtype=np.float32))


@dataclass(frozen=True)
class Histograms:
    """Per neuron, counts of sample activations in `bins` equal bins over [lo, hi]: int64 [n_neurons, bins]."""

    lo: np.ndarray  # float64 [n_neurons]
    hi: np.ndarray
    counts: np.ndarray


def histograms(values: np.ndarray, bins: int, top_max: np.ndarray | None = None) -> Histograms:
    """Histogram of each column of `values` (float32 [n, neurons]) over [column min, max(column max, top_max)], so the
    top sentences (activation up to `top_max`, float [neurons]) fall inside the axis; non-finite values are left out."""
    n, m = values.shape
    finite = np.isfinite(values)
    any_finite = finite.any(0) if n else np.zeros(m, bool)
    lo = np.where(any_finite, np.where(finite, values, np.inf).min(0, initial=np.inf), 0.0)
    hi = np.where(any_finite, np.where(finite, values, -np.inf).max(0, initial=-np.inf), 0.0)
    if top_max is not None:
        known = np.isfinite(top_max)
        hi = np.where(known & (~any_finite | (top_max > hi)), top_max, hi)
        lo = np.where(known & ~any_finite, top_max, lo)
    lo = lo.astype(np.float64)
    hi = hi.astype(np.float64)
    width = np.where(hi > lo, hi - lo, 1.0)
    index = np.floor((values.astype(np.float64) - lo) / width * bins)
    index = np.clip(np.nan_to_num(index, nan=-1), -1, bins - 1).astype(np.int64)
    index[~finite] = -1
    flat = (np.arange(m, dtype=np.int64) * bins)[None, :] + index
    counts = np.bincount(flat[index >= 0].ravel(), minlength=m * bins).reshape(m, bins)
    return Histograms(lo, hi, counts)


def quantile_picks(values: np.ndarray, quantiles: Sequence[float], per_quantile: int) -> np.ndarray:
    """Row indices of the sample sentences nearest each quantile of each neuron's activations: int64
    [n_neurons, len(quantiles), per_quantile] (rank position round(q * (n - 1)) in ascending order, then the next
    ones above it; ties by row, i.e. by sentence id). Empty when the sample is."""
    n, m = values.shape
    if n == 0:
        return np.zeros((m, len(quantiles), 0), np.int64)
    columns = np.ascontiguousarray(np.nan_to_num(values, nan=-np.inf).T)  # [m, n]: each neuron's row contiguous
    order = np.argsort(columns, axis=1, kind="stable").T  # [n, m]
    per = min(per_quantile, n)
    picks = np.zeros((m, len(quantiles), per), np.int64)
    for j, q in enumerate(quantiles):
        first = min(int(round(q * (n - 1))), n - per)
        picks[:, j, :] = order[first : first + per, :].T
    return picks


def quantile_from_sample(
    sample: SampleActivations, quantiles: Sequence[float], per_quantile: int
) -> dict[int, list[ShownSentence]]:
    """Quantile samples of every neuron from the sample activations (no token activations: shown unhighlighted)."""
    picks = quantile_picks(sample.values, quantiles, per_quantile)
    out: dict[int, list[ShownSentence]] = {}
    for neuron in range(picks.shape[0]):
        rows = []
        for j, q in enumerate(quantiles):
            for row in picks[neuron, j]:
                rows.append(ShownSentence(int(sample.sentence_ids[row]), float(sample.values[row, neuron]), None,
                                          label=f"q{q:.2f}"))  # fmt: skip
        out[neuron] = rows
    return out


# --- corpus ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SentenceInfo:
    """A shown sentence's text and the metadata printed beside it."""

    text: str
    dataset: str
    domain: str | None
    detail: str


@dataclass
class DomainLookup:
    """Domain of every corpus sentence, by dataset code and row (sentence_id >> 27, sentence_id & (2^27 - 1)):
    int32 codes into `names`, -1 = no domain; built only when a layer has no profile metadata."""

    names: list[str] = field(default_factory=list)
    by_code: dict[int, np.ndarray] = field(default_factory=dict)

    def add(self, sentence_ids: np.ndarray, domains: list[str | None]) -> None:
        index = {name: i for i, name in enumerate(self.names)}
        codes = np.empty(len(domains), np.int32)
        for i, domain in enumerate(domains):
            if domain is None:
                codes[i] = -1
                continue
            if domain not in index:
                index[domain] = len(self.names)
                self.names.append(domain)
            codes[i] = index[domain]
        datasets = sentence_ids >> 27
        rows = (sentence_ids & ((1 << 27) - 1)).astype(np.int64)
        for code in np.unique(datasets):
            mask = datasets == code
            array = self.by_code.get(int(code), np.full(0, -1, np.int32))
            need = int(rows[mask].max()) + 1
            if need > len(array):
                grown = np.full(max(need, 2 * len(array)), -1, np.int32)
                grown[: len(array)] = array
                array = grown
            array[rows[mask]] = codes[mask]
            self.by_code[int(code)] = array

    def codes_of(self, sentence_ids: np.ndarray) -> np.ndarray:
        """Domain codes of `sentence_ids` (uint32 [n]) -> int32 [n], -1 where unknown."""
        out = np.full(len(sentence_ids), -1, np.int32)
        datasets = sentence_ids >> 27
        rows = (sentence_ids & ((1 << 27) - 1)).astype(np.int64)
        for code, array in self.by_code.items():
            mask = (datasets == code) & (rows < len(array))
            out[mask] = array[rows[mask]]
        return out

    def corpus_counts(self) -> np.ndarray:
        """Sentences per domain over the corpus: int64 [len(names)]."""
        total = np.zeros(len(self.names), np.int64)
        for array in self.by_code.values():
            total += np.bincount(array[array >= 0], minlength=len(self.names))
        return total


def _detail(row: Mapping[str, Any]) -> str:
    parts = []
    for name in SENTENCE_DETAIL_FIELDS:
        value = row.get(name)
        if value is not None and str(value) != "":
            text = str(value)
            parts.append(f"{name}: {text if len(text) <= _DETAIL_CHARS else text[: _DETAIL_CHARS - 1] + '…'}")
    return "; ".join(parts)


def read_corpus(
    corpus_files: Sequence[PathLike], wanted: np.ndarray, domains: DomainLookup | None = None
) -> dict[int, SentenceInfo]:
    """Texts and metadata of the `wanted` sentence ids (uint32, sorted), reading each corpus file row group by row
    group; a row group whose sentence_id statistics exclude every wanted id is skipped (unless `domains`, the
    lookup filled with every sentence's domain, is given). A wanted id found nowhere is left out (logged)."""
    wanted = np.unique(np.asarray(wanted, np.uint32))
    found: dict[int, SentenceInfo] = {}
    value_set = pa.array(wanted, pa.uint32())
    columns = ["sentence_id", "dataset", "text", "domain", *SENTENCE_DETAIL_FIELDS]
    for path in corpus_files:
        parquet = pq.ParquetFile(path)
        missing = [c for c in ("sentence_id", "text") if c not in parquet.schema_arrow.names]
        if missing:
            raise ValueError(f"{path}: not a corpus file (no column {missing[0]}); expected formats.CORPUS_SCHEMA")
        present = [c for c in columns if c in parquet.schema_arrow.names]
        id_column = parquet.schema_arrow.names.index("sentence_id")
        for group in range(parquet.num_row_groups):
            if domains is not None and "domain" in present:
                head = parquet.read_row_group(group, columns=["sentence_id", "domain"])
                domains.add(head["sentence_id"].to_numpy().astype(np.uint32), head["domain"].to_pylist())
            stats = parquet.metadata.row_group(group).column(id_column).statistics
            if stats is not None and stats.has_min_max:
                lo, hi = np.searchsorted(wanted, [stats.min, stats.max + 1])
                if lo == hi:
                    continue
            table = parquet.read_row_group(group, columns=present)
            table = table.filter(pc.is_in(table["sentence_id"], value_set=value_set))
            for row in table.to_pylist():
                found[int(row["sentence_id"])] = SentenceInfo(row["text"], row.get("dataset") or "", row.get("domain"),
                                                              _detail(row))  # fmt: skip
    if len(found) < len(wanted):
        lost = np.setdiff1d(wanted, np.fromiter(found, np.uint32, len(found)))
        log.warning("%d shown sentence ids are in no corpus file (first: %d); they are shown as missing",
                    len(lost), int(lost[0]))  # fmt: skip
    return found


# --- per-layer tables -------------------------------------------------------------------------------------------


def _number(value: Any, digits: int = 4) -> float | None:
    """`value` with `digits` significant digits; None for None/NaN/inf (JSON has no NaN)."""
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value):
        return None
    return float(f"{value:.{digits}g}")


def round_significant(values: Any, digits: int = 4) -> list[float | None]:
    """`_number` over an array (float [n]), vectorized: x rounded half-even to `digits` significant digits, as the
    nearest float to that decimal (so JSON writes it short); None where not finite."""
    x = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(x)
    out = np.where(finite, x, 0.0)
    nonzero = out != 0
    exponent = np.zeros_like(out)
    exponent[nonzero] = np.floor(np.log10(np.abs(out[nonzero])))
    # Decimals to keep (negative: round to tens, hundreds, ...). Powers of ten up to 1e22 are exact doubles, so
    # the final division (or product) is one correctly rounded operation: the nearest double to the decimal.
    shift = np.clip(digits - 1 - exponent, -22, 22)
    exact = np.abs(digits - 1 - exponent) <= 22
    up = shift >= 0
    power = 10.0 ** np.abs(shift)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow only where not `exact`, redone below
        scaled = np.where(up, np.round(out * power) / power, np.round(out / power) * power)
    result = scaled.tolist()
    for i in np.flatnonzero(finite & ~exact):  # beyond 1e+-22 of rounding unit: the scalar route
        result[i] = float(f"{out[i]:.{digits}g}")
    return [r if f else None for r, f in zip(result, finite.tolist(), strict=True)]


def _rows_by_neuron(table: pa.Table) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {}
    for row in table.to_pylist():
        out.setdefault(int(row["neuron"]), []).append(row)
    return out


#: Pattern kinds in the order of a neuron page's tables (Table 2's rows); other kinds follow, by name.
PAGE_KINDS = ("words:noun", "words:verb", "words:adjective", "skipgrams", "posgrams", "subtrees")
#: Pattern kinds in the index, coded by position (others get the next codes as they come); its first chips show
#: the best pattern of each kind in this order.
INDEX_KINDS = ("skipgrams", "words:noun", "words:verb", "words:adjective", "subtrees", "posgrams")


def read_patterns(path: PathLike, per_kind: int, index_per_kind: int) -> tuple[dict[int, list], dict[int, list]]:
    """Per neuron, the page's pattern tables ``[[kind, [[pattern, support_top, support_bg, z, lift, q], ...]], ...]``
    (words split by class into ``words:noun`` etc.; file order = best first) and the index's ``[[kind, pattern]]``."""
    table = pq.read_table(path)
    if "kind" not in table.column_names:
        table = table.append_column("kind", pa.array(["patterns"] * table.num_rows, pa.string()))
    limit = max(per_kind, index_per_kind)
    counts: Counter[tuple[int, str]] = Counter()
    keep: list[int] = []
    groups: list[tuple[int, str, str]] = []
    neurons = table["neuron"].to_numpy().tolist()
    for i, (neuron, kind, pattern) in enumerate(zip(neurons, table["kind"].to_pylist(), table["pattern"].to_pylist(),
                                                    strict=True)):  # fmt: skip
        if kind == "words" and ":" in pattern:
            word_class, _, pattern = pattern.partition(":")
            kind = f"words:{word_class}"
        if counts[(neuron, kind)] < limit:
            counts[(neuron, kind)] += 1
            keep.append(i)
            groups.append((neuron, kind, pattern))
    kept = table.take(pa.array(keep, pa.int64()))
    columns = [kept["support_top"].to_pylist(), kept["support_bg"].to_pylist(), round_significant(kept["z"]),
               round_significant(kept["lift"]), round_significant(kept["q"], 3)]  # fmt: skip
    page: dict[int, dict[str, list]] = {}
    for j, (neuron, kind, pattern) in enumerate(groups):
        page.setdefault(neuron, {}).setdefault(kind, []).append([pattern, *(column[j] for column in columns)])

    def table_order(kind: str) -> tuple[int, str]:
        return (PAGE_KINDS.index(kind) if kind in PAGE_KINDS else len(PAGE_KINDS), kind)

    def index_order(kind: str) -> tuple[int, str]:
        return (INDEX_KINDS.index(kind) if kind in INDEX_KINDS else len(INDEX_KINDS), kind)

    tables = {n: [[k, kinds[k][:per_kind]] for k in sorted(kinds, key=table_order)] for n, kinds in page.items()}
    index = {}
    for neuron, kinds in page.items():  # round robin: the best of each kind first, then the second best, ...
        ordered = sorted(kinds, key=index_order)
        index[neuron] = [[k, kinds[k][r][0]] for r in range(index_per_kind) for k in ordered if r < len(kinds[k])]
    return tables, index


def read_profiles(path: PathLike) -> dict[int, dict[str, Any]]:
    """Per neuron, the profile fields the browser shows (summary, status, dominant domain, shares, counts)."""
    keep = ("summary", "status", "n_top", "n_patterns", "n_significant", "dominant_domain", "dominant_domain_share",
            "dominant_domain_corpus_share")  # fmt: skip
    out = {}
    for row in pq.read_table(path).to_pylist():
        out[int(row["neuron"])] = {k: (_number(row[k]) if isinstance(row[k], float) else row[k]) for k in keep
                                   if k in row}  # fmt: skip
    return out


def read_profile_metadata(path: PathLike, per_field: int) -> dict[int, list]:
    """Per neuron ``[[field, [[value, share_top, share_corpus, count_top], ...]], ...]``, fields in
    `formats.METADATA_FIELDS` order, the `per_field` most frequent values in the top K first."""
    order = {name: i for i, name in enumerate(METADATA_FIELDS)}
    out: dict[int, list] = {}
    for neuron, rows in _rows_by_neuron(pq.read_table(path)).items():
        fields: dict[str, list] = {}
        for row in sorted(rows, key=lambda r: (order.get(r["field"], len(order)), r["field"], -r["count_top"],
                                               str(r["value"]))):  # fmt: skip
            values = fields.setdefault(row["field"], [])
            if len(values) < per_field:
                values.append([str(row["value"]), _number(row["share_top"]), _number(row["share_corpus"]),
                               int(row["count_top"])])  # fmt: skip
        out[neuron] = [[name, values] for name, values in fields.items()]
    return out


@dataclass(frozen=True)
class Clusters:
    """A layer's k-means partition: each neuron's cluster and up to `cluster_mates` mates (nearest centre first)."""

    cluster: dict[int, int]
    mates: dict[int, list[int]]
    sizes: dict[int, int]


def read_clusters(path: PathLike, n_mates: int) -> Clusters:
    table = pq.read_table(path)
    neurons = table["neuron"].to_numpy()
    labels = table["cluster"].to_numpy()
    distance = table["distance"].to_numpy() if "distance" in table.column_names else np.zeros(len(neurons))
    members: dict[int, list[int]] = {}
    for i in np.lexsort((neurons, distance, labels)):
        members.setdefault(int(labels[i]), []).append(int(neurons[i]))
    cluster = {int(n): int(c) for n, c in zip(neurons, labels, strict=True)}
    mates = {n: [m for m in members[c] if m != n][:n_mates] for n, c in cluster.items()}
    return Clusters(cluster, mates, {c: len(m) for c, m in members.items()})


def read_overlap(path: PathLike, per_layer: int) -> dict[int, list]:
    """Per neuron ``[[other_layer, other_neuron, jaccard, intersection], ...]``: the `per_layer` best partners in
    each partner layer (by the file's rank)."""
    table = pq.read_table(path).sort_by([("neuron", "ascending"), ("other_layer", "ascending"), ("rank", "ascending")])
    out: dict[int, list] = {}
    count: Counter[tuple[int, int]] = Counter()
    for row in table.to_pylist():
        key = (int(row["neuron"]), int(row["other_layer"]))
        if count[key] < per_layer:
            count[key] += 1
            out.setdefault(key[0], []).append([key[1], int(row["other_neuron"]), _number(row["jaccard"], 3),
                                               int(row["intersection"])])  # fmt: skip
    return out


def read_tsne(path: PathLike, clusters: Clusters | None) -> list[list] | None:
    """The layer's t-SNE map scaled to 0..1000 (ints): ``[[x, y, cluster or -1], ...]`` by neuron."""
    table = pq.read_table(path).sort_by("neuron")
    x = table["x"].to_numpy().astype(np.float64)
    y = table["y"].to_numpy().astype(np.float64)
    if len(x) == 0:
        return None

    def scale(v: np.ndarray) -> np.ndarray:
        span = np.nanmax(v) - np.nanmin(v)
        return np.round((v - np.nanmin(v)) / (span if span > 0 else 1.0) * 1000).astype(int)

    neurons = table["neuron"].to_numpy()
    cluster = clusters.cluster if clusters else {}
    return [[int(a), int(b), cluster.get(int(n), -1)] for n, a, b in zip(neurons, scale(x), scale(y), strict=True)]


#: Fine-tuning columns shown when present, in this order (issue 10's `finetune.NEURONS_SCHEMA`); a file with none
#: of them shows every numeric column but layer and neuron.
FINETUNE_FIELDS: tuple[str, ...] = (
    "mean_abs_change", "relative_change", "jaccard", "change_train", "change_holdout", "change_out_of_domain",
    "mean_change", "base_std", "top_k", "top_dataset_before", "top_share_before", "top_dataset_after",
    "top_share_after",
)  # fmt: skip


def read_finetune(path: PathLike) -> tuple[list[str], dict[tuple[int, int], dict[str, Any]]]:
    """Fine-tuning changes per (layer, neuron): the `FINETUNE_FIELDS` the file has (numbers to 4 significant
    digits, strings as they are), else every numeric column but layer and neuron, in file order."""
    table = pq.read_table(path)
    if "layer" not in table.column_names or "neuron" not in table.column_names:
        raise ValueError(f"{path}: the fine-tuning file needs columns layer and neuron (has {table.column_names})")
    shown = [name for name in FINETUNE_FIELDS if name in table.column_names]
    if not shown:
        shown = [f.name for f in table.schema if f.name not in ("layer", "neuron")
                 and (pa.types.is_integer(f.type) or pa.types.is_floating(f.type))]  # fmt: skip
    columns = [table[name].to_pylist() if pa.types.is_string(table.schema.field(name).type)
               else round_significant(table[name].to_numpy(zero_copy_only=False)) for name in shown]  # fmt: skip
    keys = zip(table["layer"].to_pylist(), table["neuron"].to_pylist(), strict=True)
    out = {key: {name: column[i] for name, column in zip(shown, columns, strict=True)} for i, key in enumerate(keys)}
    return shown, out


@dataclass(frozen=True)
class TopKSummary:
    """Per neuron of a layer: K (rows), the highest and the K-th activation, from the whole top-K file."""

    k: dict[int, int]
    top: dict[int, float]
    kth: dict[int, float]
    n_neurons: int


def summarize_topk(path: PathLike) -> TopKSummary:
    table = pq.read_table(path, columns=["neuron", "activation"])
    neurons = table["neuron"].to_numpy()
    acts = table["activation"].to_numpy().astype(np.float64)
    if len(neurons) == 0:
        return TopKSummary({}, {}, {}, 0)
    order = np.lexsort((acts, neurons))
    neurons, acts = neurons[order], acts[order]
    starts = np.flatnonzero(np.r_[True, neurons[1:] != neurons[:-1]])
    ends = np.r_[starts[1:], len(neurons)]
    k = {int(neurons[s]): int(e - s) for s, e in zip(starts, ends, strict=True)}
    kth = {int(neurons[s]): float(acts[s]) for s in starts}
    top = {int(neurons[s]): float(acts[e - 1]) for s, e in zip(starts, ends, strict=True)}
    return TopKSummary(k, top, kth, int(neurons.max()) + 1)


def domain_bars_from_topk(path: PathLike, domains: DomainLookup, per_field: int) -> dict[int, list]:
    """Without profile metadata: per neuron ``[["domain", [[value, share_top, share_corpus, count_top], ...]]]``
    over its whole top K, from the corpus domains."""
    table = pq.read_table(path, columns=["neuron", "sentence_id"])
    neurons = table["neuron"].to_numpy()
    codes = domains.codes_of(table["sentence_id"].to_numpy().astype(np.uint32))
    corpus = domains.corpus_counts()
    corpus_share = corpus / max(int(corpus.sum()), 1)
    n_names = len(domains.names)
    out: dict[int, list] = {}
    if n_names == 0:
        return out
    keep = codes >= 0
    counts = np.zeros((int(neurons.max()) + 1 if len(neurons) else 0, n_names), np.int64)
    np.add.at(counts, (neurons[keep], codes[keep]), 1)
    for neuron in np.unique(neurons):
        row = counts[neuron]
        total = int(row.sum())
        if total == 0:
            continue
        order = sorted(np.flatnonzero(row), key=lambda c: (-row[c], domains.names[c]))[:per_field]
        out[int(neuron)] = [["domain", [[domains.names[c], _number(row[c] / total), _number(corpus_share[c]),
                                         int(row[c])] for c in order]]]  # fmt: skip
    return out


# --- assembling the data files ----------------------------------------------------------------------------------


class SentenceTable:
    """A layer's shown sentences, each once: ``[text, dataset, domain, detail]`` rows referenced by index."""

    def __init__(self, corpus: Mapping[int, SentenceInfo]):
        self._corpus = corpus
        self._index: dict[int, int] = {}
        self.rows: list[list] = []

    def ref(self, sentence_id: int) -> int:
        if sentence_id not in self._index:
            info = self._corpus.get(sentence_id)
            self._index[sentence_id] = len(self.rows)
            self.rows.append([info.text, info.dataset, info.domain, info.detail] if info else
                             [None, "", None, f"sentence {sentence_id} is in no corpus file"])  # fmt: skip
        return self._index[sentence_id]


def _top_tokens(rows: Sequence[ShownSentence], corpus: Mapping[int, SentenceInfo], n: int) -> list[list]:
    """The most frequent max-activating token texts of the top sentences, ``[[token, count], ...]`` (ties: the
    one from the better-ranked sentence first)."""
    counts: Counter[str] = Counter()  # insertion order = first appearance, rank order
    for s in rows:
        info = corpus.get(s.sentence_id)
        if info is None or s.best is None:
            continue
        token = info.text[s.best[0] : s.best[1]].strip()
        if token:
            counts[token] += 1
    return [[t, c] for t, c in sorted(counts.items(), key=lambda tc: -tc[1])[:n]]


@dataclass
class LayerSources:
    """Everything read for one layer before the corpus pass (see `build_browser`)."""

    inputs: LayerInputs
    summary: TopKSummary
    sentences: NeuronSentences
    hist: Histograms | None = None
    sample_size: int = 0


@dataclass(frozen=True)
class BuildStats:
    """What `build_browser` made: neurons, bytes per file kind, seconds."""

    n_neurons: int
    n_layers: int
    bytes_total: int
    bytes_by_file: dict[str, int]
    seconds: float


def js_assignment(target: str, value: Any) -> str:
    """``{target} = {value as JSON};`` safe inside any script: no raw ``<``, ``>``, ``&``, U+2028 or U+2029 (all
    written as \\u escapes inside JSON strings, where alone they occur), no NaN (JSON has none: pass None)."""
    payload = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                         ("\u2029", "\\u2029")):  # fmt: skip
        payload = payload.replace(raw, escaped)
    return f"{target} = {payload};\n"


_DATA_PRELUDE = "window.NEUROTEXT = window.NEUROTEXT || {layers: {}};\n"


def read_provenance(path: PathLike | None, fallback_hash: str, run: str) -> dict[str, Any]:
    """The footer's provenance: run, config hash, model, date, git commit (from provenance.json when given)."""
    meta: dict[str, Any] = {"run": run, "config_hash": fallback_hash, "model": None, "created": None,
                            "git_commit": None, "git_dirty": None}  # fmt: skip
    if path is None:
        return meta
    try:
        prov = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: cannot read provenance ({error}); rerun the provenance rule") from error
    model = prov.get("model")
    meta.update(
        config_hash=prov.get("config_hash") or fallback_hash,
        model=(model.get("path") or model.get("directory")) if isinstance(model, dict) else model,
        model_sha256=model.get("sha256") if isinstance(model, dict) else None,
        created=prov.get("created"),
        git_commit=prov.get("git_commit"),
        git_dirty=prov.get("git_dirty"),
        device=prov.get("device"),
        dtype=prov.get("dtype"),
    )
    return meta


def _read_layer_sources(layer: LayerInputs, settings: BrowserSettings, sample_path: Path | None) -> LayerSources:
    summary = summarize_topk(layer.topk)
    if layer.records is not None:
        sentences = read_records(layer.records, settings.top_sentences)
    else:
        sentences = top_from_topk(layer.topk, settings.top_sentences)
    sources = LayerSources(layer, summary, sentences)
    if layer.sample_acts is not None and sample_path is not None:
        sample = SampleActivations.load(sample_path, layer.sample_acts)
        n = sample.values.shape[1]
        top_max = np.array([summary.top.get(i, np.nan) for i in range(n)], np.float64)
        sources.hist = histograms(sample.values, settings.histogram_bins, top_max)
        sources.sample_size = sample.values.shape[0]
        if not sentences.quantile:
            sentences.quantile = quantile_from_sample(sample, settings.quantiles, settings.quantile_samples)
    return sources


def _neuron_entry(
    neuron: int,
    src: LayerSources,
    table: SentenceTable,
    corpus: Mapping[int, SentenceInfo],
    extras: Mapping[str, Any],
    settings: BrowserSettings,
) -> dict[str, Any]:
    """One neuron's page data: top sentences and quantile samples (sentence references into `table`), K, top and
    K-th activation, token scale, top tokens, histogram, and the `extras` that are not None."""
    top = src.sentences.top.get(neuron, [])
    quant = src.sentences.quantile.get(neuron, [])
    scale = src.sentences.scale.get(neuron, 0.0)
    entry: dict[str, Any] = {
        "neuron": neuron,
        "k": src.summary.k.get(neuron, 0),
        "max": _number(src.summary.top.get(neuron)),
        "kth": _number(src.summary.kth.get(neuron)),
        "scale": _number(scale, 6),
        "top": [[table.ref(s.sentence_id), _number(s.activation), s.tokens] for s in top],
        "quantiles": [[s.label, table.ref(s.sentence_id), _number(s.activation), s.tokens]
                      for s in quant],  # fmt: skip
        "top_tokens": _top_tokens(top, corpus, settings.top_tokens),
    }
    if src.hist is not None and neuron < src.hist.counts.shape[0]:
        entry["hist"] = {"lo": _number(src.hist.lo[neuron]), "hi": _number(src.hist.hi[neuron]),
                         "counts": src.hist.counts[neuron].tolist(), "n": src.sample_size}  # fmt: skip
    for key, value in extras.items():
        if value is not None:
            entry[key] = value
    return entry


def _index_row(layer: int, entry: Mapping[str, Any], index_patterns: Sequence[list], kinds: dict[str, int]) -> list:
    """``[layer, neuron, summary, domain, domain_share, patterns, top_tokens, max, cluster, finetune]``; patterns as
    ``[[kind code, pattern], ...]``, codes into `kinds` (extended here: the index's kind list)."""
    profile = entry.get("profile") or {}
    domain, share = profile.get("dominant_domain"), profile.get("dominant_domain_share")
    if domain is None:
        for field_name, values in entry.get("metadata", []):
            if field_name == "domain" and values:
                domain, share = values[0][0], values[0][1]
    finetune = entry.get("finetune") or {}
    first = next(iter(finetune.values()), None) if finetune else None
    patterns = [[kinds.setdefault(kind, len(kinds)), pattern] for kind, pattern in index_patterns]
    return [layer, entry["neuron"], profile.get("summary") or "", domain, share, patterns,
            [t for t, _ in entry["top_tokens"]], entry["max"], entry.get("cluster"), first]  # fmt: skip


INDEX_FIELDS = ("layer", "neuron", "summary", "domain", "domain_share", "patterns", "top_tokens", "max", "cluster",
                "finetune")  # fmt: skip


def _write_js(path: Path, text: str, sizes: dict[str, int], root: Path) -> None:
    write_text(path, text)
    path.chmod(0o644)  # readable by a web server too (the atomic writer's temporary file is private)
    sizes[path.relative_to(root).as_posix()] = len(text.encode("utf-8"))


def copy_assets(out_dir: Path, sizes: dict[str, int]) -> None:
    """Copy the static pages, script and style sheet from the package's ``browser_assets/``."""
    source = resources.files("neurotext").joinpath("browser_assets")
    for name, target in ASSET_FILES.items():
        data = source.joinpath(name).read_bytes()
        path = out_dir / target
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(path) as tmp:
            tmp.write_bytes(data)
        path.chmod(0o644)
        sizes[target] = len(data)


@dataclass
class LayerTables:
    """A layer's optional per-neuron tables (empty, or None for the single-valued ones, when the run lacks them)."""

    patterns: dict[int, list] | None
    index_patterns: dict[int, list]
    profiles: dict[int, dict[str, Any]]
    metadata: dict[int, list]
    clusters: Clusters | None
    overlap: dict[int, list] | None
    tsne: list[list] | None

    @classmethod
    def read(cls, layer: LayerInputs, settings: BrowserSettings, domains: DomainLookup | None) -> LayerTables:
        tables, index = ({}, {})
        if layer.patterns:
            tables, index = read_patterns(layer.patterns, settings.patterns_per_kind, settings.index_patterns)
        if layer.profile_metadata is not None:
            metadata = read_profile_metadata(layer.profile_metadata, settings.metadata_values)
        else:
            metadata = domain_bars_from_topk(layer.topk, domains, settings.metadata_values) if domains else {}
        clusters = read_clusters(layer.clusters, settings.cluster_mates) if layer.clusters else None
        return cls(
            patterns=tables if layer.patterns else None,
            index_patterns=index,
            profiles=read_profiles(layer.profiles) if layer.profiles else {},
            metadata=metadata,
            clusters=clusters,
            overlap=read_overlap(layer.overlap, settings.overlap_partners) if layer.overlap else None,
            tsne=read_tsne(layer.tsne, clusters) if layer.tsne else None,
        )

    def extras(self, neuron: int, finetune: dict[str, Any] | None) -> dict[str, Any]:
        """A neuron's entries from these tables (None = the run has no such table: left out of the page data)."""
        clusters = self.clusters
        cluster = clusters.cluster.get(neuron) if clusters else None
        return {
            "profile": self.profiles.get(neuron),
            "patterns": self.patterns.get(neuron, []) if self.patterns is not None else None,
            "metadata": self.metadata.get(neuron, []),
            "cluster": cluster,
            "cluster_size": clusters.sizes.get(cluster) if clusters and cluster is not None else None,
            "mates": clusters.mates.get(neuron, []) if clusters else None,
            "overlap": self.overlap.get(neuron, []) if self.overlap is not None else None,
            "finetune": finetune,
        }


def _sections(src: LayerSources, tables: LayerTables, has_finetune: bool) -> dict[str, bool]:
    """Which optional parts one layer has (meta.js ORs them over the layers; the index names what is missing)."""
    return {
        "records": src.sentences.token_level, "histogram": src.hist is not None,
        "patterns": tables.patterns is not None, "profiles": bool(tables.profiles),
        "clusters": tables.clusters is not None, "overlap": tables.overlap is not None,
        "tsne": tables.tsne is not None, "finetune": has_finetune,
    }  # fmt: skip


def _layer_data(
    src: LayerSources,
    tables: LayerTables,
    corpus: Mapping[int, SentenceInfo],
    finetune: Mapping[tuple[int, int], dict[str, Any]],
    settings: BrowserSettings,
    kinds: dict[str, int],
) -> tuple[dict[str, Any], list[list]]:
    """A layer's data (`data/layer{L}.js`) and its index rows; neurons 0..n-1, n the largest neuron any input has."""
    layer = src.inputs.layer
    sizes = [src.summary.n_neurons, src.hist.counts.shape[0] if src.hist else 0]
    sizes += [max(d) + 1 for d in (tables.profiles, tables.patterns) if d]
    n_neurons = max(sizes)
    table = SentenceTable(corpus)
    neurons, index_rows = [], []
    for neuron in range(n_neurons):
        extras = tables.extras(neuron, finetune.get((layer, neuron)))
        entry = _neuron_entry(neuron, src, table, corpus, extras, settings)
        index_rows.append(_index_row(layer, entry, tables.index_patterns.get(neuron, []), kinds))
        neurons.append(entry)
    data = {"layer": layer, "n_neurons": n_neurons, "sentences": table.rows, "neurons": neurons, "tsne": tables.tsne,
            "token_level": src.sentences.token_level}  # fmt: skip
    return data, index_rows


def build_browser(
    inputs: BrowserInputs,
    out_dir: PathLike,
    settings: BrowserSettings | None = None,
    run: str = "",
    config_hash: str = "",
) -> BuildStats:
    """Write the browser into `out_dir` (see the module docstring) and return its size and build time.

    Steps: each layer's top K, records and sample activations are read first; then the corpus once, for the texts
    of every shown sentence (and every sentence's domain when a layer has no profile metadata); then each layer's
    data file is assembled and written, one at a time, and the index and meta files last.
    """
    settings = settings or BrowserSettings()
    started = time.perf_counter()
    out = Path(out_dir)
    sizes: dict[str, int] = {}
    layers = [_read_layer_sources(layer, settings, inputs.sample)
              for layer in progress(inputs.layers, desc="browser: top K, records, sample", unit="layer")]  # fmt: skip
    wanted = np.unique(np.concatenate([src.sentences.sentence_ids() for src in layers] or [np.zeros(0, np.uint32)]))
    domains = DomainLookup() if any(src.inputs.profile_metadata is None for src in layers) else None
    corpus = read_corpus(inputs.corpus, wanted, domains)
    ft_fields, finetune = read_finetune(inputs.finetune) if inputs.finetune else ([], {})
    index_rows: list[list] = []
    kinds = {kind: i for i, kind in enumerate(INDEX_KINDS)}
    sections: dict[str, bool] = {}
    for src in progress(layers, desc="browser: layer pages", unit="layer"):
        tables = LayerTables.read(src.inputs, settings, domains)
        for name, present in _sections(src, tables, inputs.finetune is not None).items():
            sections[name] = sections.get(name, False) or present
        data, rows = _layer_data(src, tables, corpus, finetune, settings, kinds)
        index_rows += rows
        layer = src.inputs.layer
        text = _DATA_PRELUDE + js_assignment(f"window.NEUROTEXT.layers[{layer}]", data)
        _write_js(out / "data" / f"layer{layer}.js", text, sizes, out)
    meta = read_provenance(inputs.provenance, config_hash or read_config_hash(inputs.layers[0].topk), run)
    meta.update(layers=[src.inputs.layer for src in layers], n_neurons=len(index_rows), sections=sections,
                settings=settings.as_dict(), finetune_fields=ft_fields, quant=_QUANT)  # fmt: skip
    _write_js(out / "data" / "meta.js", _DATA_PRELUDE + js_assignment("window.NEUROTEXT.meta", meta), sizes, out)
    index = {"fields": list(INDEX_FIELDS), "kinds": list(kinds), "rows": index_rows}
    _write_js(out / "data" / "index.js", _DATA_PRELUDE + js_assignment("window.NEUROTEXT.index", index), sizes, out)
    copy_assets(out, sizes)
    stats = BuildStats(len(index_rows), len(layers), sum(sizes.values()), dict(sorted(sizes.items())),
                       time.perf_counter() - started)  # fmt: skip
    log.info("browser: %d neurons in %d layers, %.1f MB, %.1f s", stats.n_neurons, stats.n_layers,
             stats.bytes_total / 1e6, stats.seconds)  # fmt: skip
    return stats


# --- the rules' inputs -----------------------------------------------------------------------------------------

#: The paper's tables and figures under ``results/{run}/`` (what the ``paper`` target collects).
PAPER_FILES: tuple[str, ...] = (
    *(f"tables/table{i}.{ext}" for i in (1, 2, 3) for ext in ("md", "csv")),
    *(f"figures/fig{i}.{ext}" for i in (1, 2, 3, 4) for ext in ("png", "pdf")),
)


def paper_targets(out: str, producible: Callable[[str], bool]) -> list[str]:
    """``{out}/tables/...`` and ``{out}/figures/...`` of `PAPER_FILES` that `producible` accepts (a rule makes them
    or they exist); the others are named on stderr, so a Snakefile without, say, the fine-tuning stage still builds
    the rest."""
    paths = [f"{out}/{name}" for name in PAPER_FILES]
    kept = [path for path in paths if producible(path)]
    if len(kept) < len(paths):
        print(f"neurotext: no rule makes {', '.join(p for p in paths if p not in kept)}; left out of the paper target",
              file=sys.stderr)  # fmt: skip
    return kept


def browser_rule_inputs(
    out: str, layers: Sequence[int], datasets: Sequence[str], pooling: str, clusters_k: int | None,
    producible: Callable[[str], bool],
) -> dict[str, list[str]]:  # fmt: skip
    """The browser rule's named inputs for the run under `out` (``results/{run}``): every file of
    `BrowserInputs.from_files` that `producible` accepts. The sample activations are those of `pooling` (the
    config's, as the top K's sentence activation); the clusters those of k = `clusters_k` (None: no clusters)."""
    k = clusters_k
    per_layer = {
        "topk": "topk/base/layer{layer}.parquet",
        "records": "records/base/layer{layer}.parquet",
        "sample_acts": f"sample/base/{pooling}/layer{{layer}}.npy",
        "patterns": "patterns/layer{layer}.parquet",
        "profiles": "profiles/layer{layer}.parquet",
        "profile_metadata": "profiles/metadata/layer{layer}.parquet",
        "clusters": f"relations/layer{{layer}}/clusters_k{k}.parquet" if k else None,
        "tsne": "relations/layer{layer}/tsne.parquet",
        "overlap": "relations/layer{layer}/overlap.parquet",
    }
    named = {name: [p for layer in layers if producible(p := f"{out}/{pattern.format(layer=layer)}")]
             for name, pattern in per_layer.items() if pattern}  # fmt: skip
    named["corpus"] = [f"{out}/corpus/{dataset}.parquet" for dataset in datasets]
    for name, path in (("sample", "sample/sentences.parquet"), ("provenance", "provenance.json"),
                       ("finetune", "finetune/neurons.parquet")):  # fmt: skip
        named[name] = [f"{out}/{path}"] if producible(f"{out}/{path}") else []
    return {name: files for name, files in named.items() if files}


def clean_stale_layers(out_dir: PathLike, layers: Iterable[int]) -> None:
    """Remove ``data/layer{L}.js`` files of layers no longer built (a rerun with fewer layers)."""
    keep = {f"layer{layer}.js" for layer in layers}
    data = Path(out_dir) / "data"
    if data.is_dir():
        for path in data.glob("layer*.js"):
            if path.name not in keep:
                path.unlink()


def run_browser_job(named_inputs: Mapping[str, Any], out_index: PathLike, browser_config: Mapping[str, Any] | None,
                    run: str, config_hash: str) -> BuildStats:  # fmt: skip
    """The rule's entry point: inputs by name (see `BrowserInputs.from_files`), the path of ``index.html``."""
    settings = BrowserSettings.from_config(browser_config)
    inputs = BrowserInputs.from_files(named_inputs)
    out_dir = Path(out_index).parent
    clean_stale_layers(out_dir, [layer.layer for layer in inputs.layers])
    return build_browser(inputs, out_dir, settings, run=run, config_hash=config_hash)


__all__ = [
    "ASSET_FILES", "BrowserInputs", "BrowserSettings", "BuildStats", "LayerInputs", "RECORD_COLUMNS",
    "PAPER_FILES", "browser_rule_inputs", "build_browser", "histograms", "js_assignment", "paper_targets",
    "quantile_picks", "read_corpus", "read_records",
    "run_browser_job",
]  # fmt: skip
