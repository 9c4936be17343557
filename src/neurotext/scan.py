"""The scan: each neuron's top K sentences per shard, their exact merge per layer, and the sample's activations.

* `scan_shard`: runs the encoder over a token shard in the batch plan (docs/ARCHITECTURE.md, "Scan and top K":
  sorted by (token length, sentence_id), batches of at most `scan.token_budget` padded tokens), pools every
  layer's site per sentence, and keeps each neuron's top K by the unique int64 keys of `neurotext.topk` (CPU:
  thresholds; GPU: `torch.topk` on the device). Memory: one batch of activations plus the running top K, never all
  activations. Output `acts/{model}/{dataset}/{shard}.npz` (see `ACTS_FIELDS`).
* `merge_topk`: the exact top K of one layer over all shards' acts files (any order, same bytes), decoded to
  sentence ids and activations, with the token of the max mapped to character offsets from the shard files.
* `sample_activations`: float32 [n_sample, n_neurons] activations of the sample per pooling and layer.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from neurotext.config import ConfigError
from neurotext.encoder import (
    Encoder,
    ModelSettings,
    ScanSettings,
    Tokens,
    check_pooling,
    load_tokenizer,
    plan_batches,
    tokenize,
)
from neurotext.artifacts.paths import layer_of_path
from neurotext.artifacts.topk import TOPK_SCHEMA
from neurotext.io import save_npy, save_npz, write_parquet
from neurotext.logs import progress
from neurotext.shards import read_shard
from neurotext.toptokens import LayerTopTokens, ScanTopTokens, save_top_tokens
from neurotext.topk import TopK, TopKResult, activation_keys, decode_keys, merge_keys_with_payload
from neurotext.validate import warn_k_exceeds_corpus

log = logging.getLogger("neurotext.scan")

#: Token index stored for poolings that do not pick a token: cls reads token 0, mean reads all (-1).
POOLED_TOKEN_INDEX = {"cls": 0, "mean": -1}

#: Arrays of an acts npz. Per layer L (1..n_layers): `layer{L}_keys` int64 [n_neurons, K'] sorted descending,
#: `layer{L}_token_index` int16/int32 [n_neurons, K'] (token of the max, an index into the shard's input_ids;
#: 0 for cls pooling, -1 for mean). Counts (int64, shape [1]): `n_sentences`, `n_truncated`, `k` (the configured K),
#: `n_layers`. K' = min(k, n_sentences).
#: With histogram edges (`records/{model}/histogram_edges.npz`), per layer also: `layer{L}_hist` int64
#: [n_neurons, bins + 2] (column 0: values < edges[0] or NaN; column j: [edges[j-1], edges[j]); last: >= edges[bins]),
#: `layer{L}_hist_edges` float32 [n_neurons, bins + 1] (the edges used), `layer{L}_hist_min` / `_hist_max` float32
#: [n_neurons] (NaN ignored; +inf / -inf for an empty shard). Counts add exactly across shards.
ACTS_FIELDS = ("n_sentences", "n_truncated", "k", "n_layers")


def token_index_dtype(max_tokens: int) -> np.dtype:
    """int16 when every token index fits, else int32."""
    return np.dtype(np.int16) if max_tokens <= np.iinfo(np.int16).max else np.dtype(np.int32)


@dataclass
class ScanResult:
    """Per scanned layer (index i = `encoder.layers[i]`) each neuron's top K keys and token indices; n_sentences
    scanned."""

    layers: list[TopKResult]
    n_sentences: int
    histograms: list[LayerHistogram] | None = None  # per layer, when histogram edges were given
    top_tokens: list[LayerTopTokens] | None = None  # per layer, when top_n > 0 (neurotext.toptokens)


def scan_tokens(
    encoder: Encoder,
    sentence_ids: np.ndarray,
    tokens: Tokens,
    model: ModelSettings,
    scan: ScanSettings,
    description: str = "scan",
    topk_strategy: str = "auto",
    histogram_edges: Sequence[np.ndarray] | None = None,
    top_n: int = 0,
) -> ScanResult:
    """Run `encoder` over `tokens` (sentence ids uint32 [n]) in the batch plan and keep each neuron's top K.

    topk_strategy: 'auto' (thresholds on the CPU, `torch.topk` on a GPU), 'threshold' or 'topk'.
    histogram_edges: per layer float32 [n_neurons, bins + 1] edges; each neuron's pooled activations are counted
    into them (`HistogramAccumulator`, on the encoder's device).
    top_n: also keep each neuron's top `top_n` sentences with its activation at every token
    (`neurotext.toptokens`; the records stage reads them instead of re-running those sentences).
    """
    n = len(tokens)
    max_tokens = int(tokens.lengths.max(initial=0))
    payload_dtype = token_index_dtype(max(max_tokens, model.max_length))
    payload_torch = getattr(torch, payload_dtype.name)
    accumulators = [
        TopK(encoder.n_neurons, scan.k, payload_dtype, device=encoder.device, strategy=topk_strategy)
        for _ in encoder.layers
    ]
    histograms = (
        [HistogramAccumulator(edges, encoder.device) for edges in histogram_edges] if histogram_edges else None
    )
    batches = plan_batches(tokens.lengths, sentence_ids, scan.token_budget)
    log.info(
        "%s: %d sentences, %d tokens, %d batches (token budget %d), %d layers x %d neurons, K = %d",
        description,
        n,
        len(tokens.input_ids),
        len(batches),
        scan.token_budget,
        len(encoder.layers),
        encoder.n_neurons,
        scan.k,
    )
    all_ids = torch.from_numpy(np.asarray(sentence_ids, dtype=np.uint32).astype(np.int64))
    started = time.perf_counter()
    bar = lambda items: progress(items, total=len(batches), desc=description, unit="batch")  # noqa: E731
    recorder = ScanTopTokens(encoder, top_n) if top_n > 0 else None
    for rows, pooled in encoder.iter_pooled(tokens, batches, [model.pooling], model.exclude_special, bar):
        batch_ids = all_ids[torch.from_numpy(rows)].to(encoder.device, non_blocking=True)[:, None]
        for index, (accumulator, layer) in enumerate(zip(accumulators, pooled[model.pooling], strict=True)):
            keys = activation_keys(layer.values, batch_ids)
            if recorder is not None:
                recorder.add(index, rows, keys)
            if layer.token_index is not None:
                payload = layer.token_index.to(payload_torch)
            else:
                payload = torch.full_like(keys, POOLED_TOKEN_INDEX[model.pooling], dtype=payload_torch)
            accumulator.add(keys, payload)
        for histogram, layer in zip(histograms or (), pooled[model.pooling], strict=False):
            histogram.add(layer.values)
    top_tokens = recorder.results(tokens) if recorder is not None else None
    if recorder is not None:
        recorder.close()
    results = []
    while accumulators:  # free each layer's buffers as soon as its result is out (K = 10,000: ~100 MB a layer)
        results.append(accumulators.pop(0).result())
    elapsed = time.perf_counter() - started
    log.info("%s: %d sentences in %.1f s, %.1f sentences/s", description, n, elapsed, n / elapsed if elapsed else 0.0)
    return ScanResult(results, n, [h.result() for h in histograms] if histograms else None, top_tokens)


def scan_shard(
    shard: str, model_dir: str, model: dict, scan: dict, out: str, histogram_edges: str | None = None,
    top_tokens: str | None = None, top_n: int = 0,
) -> None:
    """Scan one token shard (`shards/{dataset}/{shard}.parquet`) and write its acts npz to `out`.

    `histogram_edges`: an npz of per-layer edges (`read_histogram_edges`); when given, each neuron's histogram is
    counted too. `top_tokens`: also write each neuron's top `top_n` sentences with token activations there
    (`neurotext.toptokens`).

    `model` is the config's `model:` block (site, pooling, exclude_special, max_length), `scan` its `scan:` block
    (k, token_budget, device, dtype, threads). The npz holds the arrays described in `ACTS_FIELDS`; same shard and
    config, same bytes.
    """
    model_settings = ModelSettings.from_config(model)
    scan_settings = ScanSettings.from_config(scan)
    data = read_shard(shard)
    encoder = Encoder.from_settings(model_dir, model_settings, scan_settings)
    encoder.check_pooling(model_settings.pooling)
    check_vocabulary(encoder, data.tokens, shard)
    edges = (
        read_histogram_edges(histogram_edges, encoder.layers, encoder.n_neurons) if histogram_edges else None
    )
    result = scan_tokens(
        encoder, data.sentence_ids, data.tokens, model_settings, scan_settings, Path(shard).name,
        histogram_edges=edges, top_n=top_n if top_tokens else 0,
    )  # fmt: skip
    if top_tokens:
        save_top_tokens(top_tokens, encoder.layers, result.top_tokens or [], top_n, result.n_sentences)
    arrays: dict[str, np.ndarray] = {
        "n_sentences": np.array([result.n_sentences], dtype=np.int64),
        "n_truncated": np.array([data.n_truncated], dtype=np.int64),
        "k": np.array([scan_settings.k], dtype=np.int64),
        "n_layers": np.array([encoder.n_layers], dtype=np.int64),
    }
    for index, layer in zip(encoder.layers, result.layers, strict=True):
        arrays[f"layer{index}_keys"] = layer.keys
        arrays[f"layer{index}_token_index"] = layer.payload
    for index, histogram in zip(encoder.layers, result.histograms or (), strict=False):
        arrays[f"layer{index}_hist"] = histogram.counts
        arrays[f"layer{index}_hist_edges"] = histogram.edges
        arrays[f"layer{index}_hist_min"] = histogram.minimum
        arrays[f"layer{index}_hist_max"] = histogram.maximum
    log.info("%s: %d truncated sentences", shard, data.n_truncated)
    save_npz(out, arrays)


def check_vocabulary(encoder: Encoder, tokens: Tokens, shard: str) -> None:
    """Refuse token ids beyond the model's embedding table (a shard made with another model's tokenizer)."""
    embeddings = encoder.model.get_input_embeddings()
    size = getattr(embeddings, "num_embeddings", None)
    top = int(tokens.input_ids.max(initial=0))
    if size is not None and top >= size:
        raise ConfigError(
            f"{shard}: token id {top} is beyond the model's {size} embeddings: the shard was made with another "
            "tokenizer than model.path's; rerun make_shard (delete the shards) for this model"
        )


# --------------------------------------------------------------------------------------------------------------
# Merge


@dataclass
class ActsLayer:
    """One layer of one acts file: keys int64 [n_neurons, K'], token_index [n_neurons, K'], and the file's
    configured k and sentence count."""

    keys: np.ndarray
    token_index: np.ndarray
    k: int
    n_sentences: int


def read_acts_layer(path: str | os.PathLike[str], layer: int) -> ActsLayer:
    """Read layer `layer` (1-based) of an acts npz; errors name the file."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            n_layers = int(archive["n_layers"][0])
            if not 1 <= layer <= n_layers:
                raise ValueError(f"{path}: has layers 1..{n_layers}, not layer {layer}")
            if f"layer{layer}_keys" not in archive.files:
                raise ValueError(f"{path}: layer {layer} was not scanned (model.layers); rerun its scan_shard job")
            return ActsLayer(
                keys=archive[f"layer{layer}_keys"],
                token_index=archive[f"layer{layer}_token_index"].astype(np.int32),
                k=int(archive["k"][0]),
                n_sentences=int(archive["n_sentences"][0]),
            )
    except (OSError, KeyError, EOFError) as error:
        raise ValueError(f"{path}: not a readable acts file ({error}); rerun its scan_shard job") from error


def _char_offsets(
    shards: Sequence[str], sentence_ids: np.ndarray, token_index: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Character offsets (char_start, char_end), int32 like `token_index`, of the token `token_index` of each
    sentence in `sentence_ids`, read from the shard files; -1 where token_index is -1."""
    if sentence_ids.size == 0:
        return np.empty(0, dtype=np.int32), np.empty(0, dtype=np.int32)
    wanted = np.unique(sentence_ids)
    found_ids: list[np.ndarray] = []
    found_starts: list[pa.Array] = []
    found_ends: list[pa.Array] = []
    for shard in shards:
        parquet = pq.ParquetFile(shard)
        for batch in parquet.iter_batches(batch_size=65_536, columns=["sentence_id", "char_start", "char_end"]):
            ids = batch.column(0).to_numpy().astype(np.uint32)
            hit = np.flatnonzero(np.isin(ids, wanted))
            if hit.size:
                found_ids.append(ids[hit])
                found_starts.append(batch.column(1).take(pa.array(hit)))
                found_ends.append(batch.column(2).take(pa.array(hit)))
    ids = np.concatenate(found_ids) if found_ids else np.empty(0, dtype=np.uint32)
    missing = np.setdiff1d(wanted, ids)
    if missing.size:
        raise ValueError(
            f"sentence id {int(missing[0])} (and {missing.size - 1} more) of the acts files is in none of the "
            f"{len(shards)} shard files; acts and shards come from different runs: rerun the scan"
        )
    starts = pa.chunked_array(found_starts, type=pa.list_(pa.int32())).combine_chunks()
    ends = pa.chunked_array(found_ends, type=pa.list_(pa.int32())).combine_chunks()
    list_offsets = starts.offsets.to_numpy().astype(np.int64)
    flat_starts = starts.values.to_numpy()
    flat_ends = ends.values.to_numpy()
    order = np.argsort(ids, kind="stable")
    position = order[np.searchsorted(ids[order], sentence_ids)]
    lengths = list_offsets[position + 1] - list_offsets[position]
    if (token_index >= lengths).any():
        raise ValueError("a token index of the acts files lies beyond its sentence in the shard files: rerun the scan")
    flat = list_offsets[position] + np.maximum(token_index, 0)
    pooled = token_index < 0
    char_start = np.where(pooled, -1, flat_starts[flat])
    char_end = np.where(pooled, -1, flat_ends[flat])
    return char_start.astype(np.int32), char_end.astype(np.int32)


def merge_topk(acts: list[str], shards: list[str], layer: int, k: int, out: str, config_hash: str) -> None:
    """Exact top `k` of layer `layer` over all acts files, written as `artifacts.topk.TOPK_SCHEMA` rows sorted by
    (neuron, rank). The order of `acts` and `shards` does not change the bytes. A neuron keeps
    min(k, sentences scanned) rows; token_index -1 (mean pooling) has char offsets -1."""
    if not isinstance(k, int) or k < 1:
        raise ConfigError(f"scan.k = {k!r}: a positive integer")
    if not acts:
        raise ValueError("merge_topk: no acts files")
    merged_keys: np.ndarray | None = None
    merged_tokens: np.ndarray | None = None
    n_sentences = 0
    for path in progress(sorted(acts), desc=f"merge layer {layer}", unit="file"):
        part = read_acts_layer(path, layer)
        if part.keys.shape[1] < min(k, part.n_sentences):
            raise ConfigError(
                f"{path}: holds the top {part.k} per neuron but scan.k = {k}; rerun its scan with the same scan.k"
            )
        if merged_keys is not None and part.keys.shape[0] != merged_keys.shape[0]:
            raise ValueError(
                f"{path}: layer {layer} has {part.keys.shape[0]} neurons, other acts files {merged_keys.shape[0]}"
            )
        n_sentences += part.n_sentences
        if merged_keys is None:
            merged_keys, merged_tokens = merge_keys_with_payload([part.keys], [part.token_index], k)
        else:
            merged_keys, merged_tokens = merge_keys_with_payload(
                [merged_keys, part.keys], [merged_tokens, part.token_index], k
            )
    assert merged_keys is not None and merged_tokens is not None
    if warning := warn_k_exceeds_corpus(k, n_sentences):
        log.warning("layer %d: %s", layer, warning)
    n_neurons, width = merged_keys.shape
    sentence_ids, activations = decode_keys(merged_keys.ravel())
    token_index = merged_tokens.ravel().astype(np.int32)
    char_start, char_end = _char_offsets(sorted(shards), sentence_ids, token_index)
    table = pa.Table.from_arrays(
        [
            pa.array(np.repeat(np.arange(n_neurons, dtype=np.int32), width)),
            pa.array(np.tile(np.arange(width, dtype=np.int32), n_neurons)),
            pa.array(sentence_ids, pa.uint32()),
            pa.array(activations, pa.float32()),
            pa.array(token_index, pa.int32()),
            pa.array(char_start, pa.int32()),
            pa.array(char_end, pa.int32()),
        ],
        schema=TOPK_SCHEMA,
    )
    log.info(
        "layer %d: top %d of %d sentences for %d neurons from %d acts files",
        layer,
        width,
        n_sentences,
        n_neurons,
        len(acts),
    )
    write_parquet(table, out, config_hash)


# --------------------------------------------------------------------------------------------------------------
# Sample activations


def _parse_sample_output(path: str, poolings: Sequence[str], layers: Sequence[int]) -> tuple[str, int]:
    """(pooling, layer) of an output path `.../sample/{model}/{pooling}/layer{L}.npy`."""
    pooling = Path(path).parent.name
    if Path(path).suffix != ".npy" or pooling not in poolings:
        raise ValueError(
            f"sample output {path!r}: expected .../{{pooling}}/layer{{L}}.npy with pooling in {list(poolings)}"
        )
    layer = layer_of_path(Path(path).name)
    if layer not in layers:
        raise ValueError(f"sample output {path!r}: layer {layer} is not a scanned layer ({list(layers)})")
    return pooling, layer


def sample_activations(
    sample: str, model_dir: str, model: dict, scan: dict, poolings: list[str], outputs: list[str]
) -> None:
    """Activations of the sample sentences: for each output `.../{pooling}/layer{L}.npy` a float32
    [n_sample, n_neurons] array, rows in sentence_id order. Tokenized like `make_shard`, run in the scan's batch
    plan; each pooling in `poolings` is computed in the same forward pass."""
    model_settings = ModelSettings.from_config(model)
    scan_settings = ScanSettings.from_config(scan)
    for pooling in poolings:
        check_pooling(pooling, "poolings")
    table = pq.read_table(sample, columns=["sentence_id", "text"])
    sentence_ids = table.column("sentence_id").to_numpy().astype(np.uint32)
    order = np.argsort(sentence_ids, kind="stable")
    texts = table.column("text").to_pylist()
    texts = [texts[i] for i in order]
    sentence_ids = sentence_ids[order]
    tokens = tokenize(load_tokenizer(model_dir), texts, model_settings.max_length)
    encoder = Encoder.from_settings(model_dir, model_settings, scan_settings)
    targets = {_parse_sample_output(path, poolings, encoder.layers): path for path in outputs}
    arrays = {target: np.zeros((len(texts), encoder.n_neurons), dtype=np.float32) for target in targets}
    needed = sorted({pooling for pooling, _ in targets})
    batches = plan_batches(tokens.lengths, sentence_ids, scan_settings.token_budget)
    started = time.perf_counter()
    bar = lambda items: progress(items, total=len(batches), desc="sample", unit="batch")  # noqa: E731
    for rows, pooled in encoder.iter_pooled(tokens, batches, needed, model_settings.exclude_special, bar):
        for (pooling, layer), array in arrays.items():
            array[rows] = pooled[pooling][encoder.layers.index(layer)].values.cpu().numpy()
    elapsed = time.perf_counter() - started
    log.info("sample: %d sentences in %.1f s (%d truncated)", len(texts), elapsed, int(tokens.truncated.sum()))
    for target, path in sorted(targets.items()):
        save_npy(path, arrays[target])


def describe_acts(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The scalar fields of an acts npz (`ACTS_FIELDS`) as ints, for logs and tests."""
    with np.load(path, allow_pickle=False) as archive:
        return {name: int(archive[name][0]) for name in ACTS_FIELDS}


# --------------------------------------------------------------------------------------------------------------
# Histograms: each neuron's pooled activations counted into fixed edges, exact to merge across shards


@dataclass
class LayerHistogram:
    """One layer's histograms: counts int64 [n_neurons, bins + 2] (underflow, bins, overflow), the edges float32
    [n_neurons, bins + 1], minimum / maximum float32 [n_neurons] (NaN ignored)."""

    counts: np.ndarray
    edges: np.ndarray
    minimum: np.ndarray
    maximum: np.ndarray


class HistogramAccumulator:
    """Counts each neuron's values into its own fixed edges. A value x falls in column
    searchsorted(edges, x, right=True): 0 below edges[0] (NaN too), j for [edges[j-1], edges[j]), bins + 1 at or
    above edges[bins]. Integer counts, so any batch order, shard split or device gives the same counts for the
    same values. On a GPU the counting stays on the device (torch.searchsorted, scatter_add_); on the CPU it runs
    in numpy (an arithmetic guess of the column for uniform edges, corrected against the stored edges until exact),
    about ten times cheaper there than the torch kernels on a busy 2-core machine."""

    def __init__(self, edges: np.ndarray, device: torch.device, backend: str = "auto") -> None:
        """`backend`: 'auto' (numpy on the CPU, torch elsewhere), 'numpy' or 'torch' (both give the same counts)."""
        edges = np.ascontiguousarray(edges, dtype=np.float32)
        self.edges_host = edges
        n_neurons, n_edges = edges.shape
        self.width = n_edges + 1
        if backend not in ("auto", "numpy", "torch"):
            raise ValueError(f"histogram backend {backend!r}: auto, numpy or torch")
        self.on_cpu = backend == "numpy" or (backend == "auto" and torch.device(device).type == "cpu")
        self.minimum = np.full(n_neurons, np.inf, dtype=np.float32)
        self.maximum = np.full(n_neurons, -np.inf, dtype=np.float32)
        if self.on_cpu:
            inf = np.full((n_neurons, 1), np.inf, dtype=np.float32)
            self.bounds = np.concatenate([-inf, edges, inf], axis=1)  # column c is [bounds[c], bounds[c + 1])
            self.low = edges[:, :1].astype(np.float64)
            self.scale = (n_edges - 1) / (edges[:, -1:].astype(np.float64) - self.low)
            self.rows = np.arange(n_neurons)[:, None]
            self.counts_host = np.zeros(n_neurons * self.width, dtype=np.int64)
        else:
            self.edges = torch.from_numpy(edges).to(device)
            self.counts = torch.zeros(n_neurons * self.width, dtype=torch.int64, device=device)
            self.minimum_device = torch.from_numpy(self.minimum).to(device)
            self.maximum_device = torch.from_numpy(self.maximum).to(device)
        self.row_offsets = np.arange(n_neurons, dtype=np.int64)[:, None] * self.width

    def add(self, values: torch.Tensor) -> None:
        """Count a batch of pooled values float [B, n_neurons]."""
        if self.on_cpu:
            self._add_numpy(values.detach().float().cpu().numpy().T)
            return
        x = values.float().T.contiguous()
        nan = torch.isnan(x)
        column = torch.searchsorted(self.edges, torch.where(nan, float("-inf"), x), right=True)
        offsets = torch.from_numpy(self.row_offsets).to(x.device)
        flat = (column + offsets).reshape(-1)
        self.counts.scatter_add_(0, flat, torch.ones_like(flat))
        self.minimum_device = torch.minimum(self.minimum_device, torch.where(nan, float("inf"), x).amin(dim=1))
        self.maximum_device = torch.maximum(self.maximum_device, torch.where(nan, float("-inf"), x).amax(dim=1))

    def _add_numpy(self, x: np.ndarray) -> None:
        nan = np.isnan(x)
        x = np.where(nan, np.float32(-np.inf), x)
        with np.errstate(invalid="ignore"):
            guess = np.floor((x - self.low) * self.scale)
        column = (np.clip(np.nan_to_num(guess, nan=-1.0), -1, self.width - 2) + 1).astype(np.int64)
        last = self.width - 1
        while True:  # move each guess to the column whose [lower, upper) bounds hold x
            below = x < self.bounds[self.rows, column]
            above = (x >= self.bounds[self.rows, column + 1]) & (column < last)
            if not (below.any() or above.any()):
                break
            column += above.astype(np.int64) - below.astype(np.int64)
        self.counts_host += np.bincount((column + self.row_offsets).ravel(), minlength=len(self.counts_host))
        if x.shape[1]:
            self.minimum = np.minimum(self.minimum, np.where(nan, np.float32(np.inf), x).min(axis=1))
            self.maximum = np.maximum(self.maximum, x.max(axis=1))

    def result(self) -> LayerHistogram:
        if self.on_cpu:
            counts, minimum, maximum = self.counts_host, self.minimum, self.maximum
        else:
            counts = self.counts.cpu().numpy()
            minimum, maximum = self.minimum_device.cpu().numpy(), self.maximum_device.cpu().numpy()
        return LayerHistogram(counts.reshape(-1, self.width), self.edges_host, minimum, maximum)


def read_histogram_edges(
    path: str | os.PathLike[str], layers: int | Sequence[int], n_neurons: int
) -> list[np.ndarray]:
    """Per layer of `layers` (an int n = layers 1..n) the edges `layer{L}` float32 [n_neurons, bins + 1]
    (strictly increasing rows) of a
    `records/{model}/histogram_edges.npz`; errors name the file."""
    edges: list[np.ndarray] = []
    try:
        with np.load(path, allow_pickle=False) as archive:
            for layer in range(1, layers + 1) if isinstance(layers, int) else layers:
                if f"layer{layer}" not in archive.files:
                    raise ValueError(f"{path}: no edges for layer {layer}; rerun records_histogram_edges")
                edges.append(np.ascontiguousarray(archive[f"layer{layer}"], dtype=np.float32))
    except (OSError, EOFError) as error:
        raise ValueError(
            f"{path}: not a readable histogram edges file ({error}); rerun records_histogram_edges"
        ) from error
    for layer, array in zip(range(1, layers + 1) if isinstance(layers, int) else layers, edges, strict=True):
        increasing = array.ndim == 2 and array.shape[1] >= 2 and bool((np.diff(array, axis=1) > 0).all())
        if not increasing or array.shape[0] != n_neurons:
            raise ValueError(
                f"{path}: layer {layer} edges of shape {array.shape} are not [{n_neurons}, bins + 1] strictly "
                "increasing rows; rerun records_histogram_edges for this model and site"
            )
    return edges
