"""Token activations of each neuron's top sentences, kept during the scan (no second pass over the corpus).

The records stage shows, for each neuron, its top ``records.top_n`` sentences with the neuron's activation at every
token. Those sentences are a large part of the corpus (on the demo, the union over 2,304 neurons x 20 is 58% of it),
so re-running them after the scan costs most of a second scan. Instead the scan keeps them as it goes:
`TopTokenRecorder` holds, per layer, each neuron's running top ``top_n`` sentences of the shard by the scan's own
int64 keys (`neurotext.topk.activation_keys`: activation, then sentence id), with the neuron's activation at every
token of each. The corpus-wide top ``top_n`` of a neuron is among the shard-wide top ``top_n`` of the shard that
holds each sentence, so the records job only looks the pairs up (`TopTokenIndex`).

File ``acts/{model}/{dataset}/{shard}.toptokens.npz`` (`save_top_tokens`; same shard and config, same bytes):

* ``top_n`` int64 [1], ``n_sentences`` int64 [1] (the shard's), ``layers`` int64 [n_layers] (1-based);
* per layer L: ``layer{L}_keys`` int64 [n_neurons, N] (N = min(top_n, n_sentences)), each row descending (the
  scan's keys: decode with `neurotext.topk.decode_keys` for sentence ids and pooled activations);
  ``layer{L}_rows`` int32 [n_neurons, N]: the sentence's row in the shard; ``layer{L}_offsets`` int64
  [n_neurons * N + 1] and ``layer{L}_values`` float32 [total]: entry e = neuron * N + j owns
  values[offsets[e]:offsets[e + 1]], the neuron's activation at each text token (special tokens left out) of the
  sentence, in token order: the same tokens as the shard's non-special tokens of that row.

Memory of the recorder: per layer at most 2 x n_neurons x top_n stored candidates (compacted to the top_n per neuron
whenever it is reached), each a padded row of the batch's length; the values are those the scan pooled (float32, or
as computed under the configured autocast dtype), so a top sentence's token record and its top-K activation agree.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from neurotext.artifacts.records import concat_ranges
from neurotext.io import save_npz

if TYPE_CHECKING:
    import torch

    from neurotext.encoder import Tokens

log = logging.getLogger("neurotext.toptokens")

_KEY_MIN = np.iinfo(np.int64).min


def text_positions(tokens: Tokens) -> tuple[np.ndarray, np.ndarray]:
    """The non-special tokens of `tokens`: offsets int64 [n + 1] (sentence i owns [offsets[i], offsets[i + 1]))
    and positions int64 (index within the sentence), flat."""
    n = len(tokens)
    sentence = np.repeat(np.arange(n), tokens.lengths)
    local = np.arange(len(tokens.input_ids), dtype=np.int64) - tokens.offsets[sentence]
    keep = ~np.asarray(tokens.special_mask, dtype=bool)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(sentence[keep], minlength=n), out=offsets[1:])
    return offsets, local[keep]


@dataclass
class LayerTopTokens:
    """One layer's result: keys int64 [H, N] (rows descending), rows int32 [H, N], offsets int64 [H * N + 1],
    values float32 [total] (see the module docstring)."""

    keys: np.ndarray
    rows: np.ndarray
    offsets: np.ndarray
    values: np.ndarray


class TopTokenRecorder:
    """Each neuron's running top `top_n` sentences of one layer with the neuron's activation at every token.

    `add(rows, keys, acts)` per batch: rows int [B] (the batch's sentence rows in the shard), keys int64 [B, H]
    (the scan's keys of the pooled activations), acts float [B, T, H] (the layer's site activations, padded on the
    right). Keys are unique, so the top `top_n` of a neuron is well defined.
    """

    def __init__(self, n_neurons: int, top_n: int) -> None:
        self.n_neurons = int(n_neurons)
        self.top_n = int(top_n)
        self.threshold: torch.Tensor | None = None  # int64 [H] on the keys' device: the top_n-th key so far
        self._keys: list[np.ndarray] = []
        self._neurons: list[np.ndarray] = []
        self._rows: list[np.ndarray] = []
        self._values: list[np.ndarray] = []  # float32 [m, T] each, NaN beyond the batch's width
        self._stored = 0

    def add(self, rows: np.ndarray, keys: torch.Tensor, acts: torch.Tensor) -> None:
        """Keep the (sentence, neuron) pairs of this batch that enter a neuron's running top `top_n`."""
        import torch

        if self.top_n == 0 or keys.numel() == 0:
            return
        if self.threshold is None:
            self.threshold = torch.full((self.n_neurons,), _KEY_MIN, dtype=torch.int64, device=keys.device)
        batch, neuron = torch.nonzero(keys > self.threshold[None, :], as_tuple=True)
        if batch.numel() == 0:
            return
        values = acts[batch, :, neuron].float().cpu().numpy()  # [m, T]
        self._keys.append(keys[batch, neuron].cpu().numpy().astype(np.int64))
        self._neurons.append(neuron.cpu().numpy().astype(np.int32))
        self._rows.append(np.asarray(rows, dtype=np.int64)[batch.cpu().numpy()])
        self._values.append(values)
        self._stored += len(values)
        if self._stored > 2 * self.top_n * self.n_neurons:
            self._compact()

    def _compact(self) -> None:
        """Keep each neuron's top `top_n` candidates and raise the thresholds to their last key."""
        if not self._keys:
            return
        keys = np.concatenate(self._keys)
        neurons = np.concatenate(self._neurons)
        rows = np.concatenate(self._rows)
        width = max(v.shape[1] for v in self._values)
        values = np.full((len(keys), width), np.nan, dtype=np.float32)
        start = 0
        for chunk in self._values:
            values[start : start + len(chunk), : chunk.shape[1]] = chunk
            start += len(chunk)
        keep, counts = self._top_per_neuron(keys, neurons)
        self._keys, self._neurons, self._rows = [keys[keep]], [neurons[keep]], [rows[keep]]
        self._values = [values[keep]]
        self._stored = len(keep)
        thresholds = np.full(self.n_neurons, _KEY_MIN, dtype=np.int64)
        full = counts >= self.top_n
        if full.any():
            kept_keys, kept_neurons = keys[keep], neurons[keep]
            last = np.flatnonzero(np.r_[kept_neurons[1:] != kept_neurons[:-1], True])  # last of each neuron
            thresholds[kept_neurons[last]] = np.where(full[kept_neurons[last]], kept_keys[last], _KEY_MIN)
        import torch

        assert self.threshold is not None
        self.threshold = torch.from_numpy(thresholds).to(self.threshold.device)

    def _top_per_neuron(self, keys: np.ndarray, neurons: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Indices of each neuron's top `top_n` keys, ordered by (neuron, key descending); and the count kept per
        neuron, int64 [H]."""
        descending = np.argsort(keys, kind="stable")[::-1]
        order = descending[np.argsort(neurons[descending], kind="stable")]
        sorted_neurons = neurons[order]
        starts = np.searchsorted(sorted_neurons, np.arange(self.n_neurons))
        rank = np.arange(len(order)) - starts[sorted_neurons]
        keep = order[rank < self.top_n]
        counts = np.bincount(neurons[keep], minlength=self.n_neurons).astype(np.int64)
        return keep, counts

    def result(self, tokens: Tokens) -> LayerTopTokens:
        """Each neuron's top `top_n` (fewer only when the shard has fewer sentences), descending, with the values at
        the text tokens of each sentence of `tokens` (the shard's tokens, the rows `add` was given)."""
        self._compact()
        if not self._keys:
            return LayerTopTokens(
                np.empty((self.n_neurons, 0), np.int64), np.empty((self.n_neurons, 0), np.int32),
                np.zeros(1, np.int64), np.empty(0, np.float32),
            )  # fmt: skip
        keys, neurons, rows, values = self._keys[0], self._neurons[0], self._rows[0], self._values[0]
        counts = np.bincount(neurons, minlength=self.n_neurons)
        n_top = int(counts.min())
        if n_top != int(counts.max()):
            raise AssertionError(f"top tokens: neurons kept {counts.min()}..{counts.max()} sentences")
        offsets, positions = text_positions(tokens)
        n_text = np.diff(offsets)[rows]
        entry_offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(n_text, out=entry_offsets[1:])
        source = positions[concat_ranges(offsets[rows], n_text)]
        flat = values[np.repeat(np.arange(len(rows)), n_text), source].astype(np.float32)
        return LayerTopTokens(
            keys=keys.reshape(self.n_neurons, n_top),
            rows=rows.reshape(self.n_neurons, n_top).astype(np.int32),
            offsets=entry_offsets,
            values=flat,
        )


def save_top_tokens(
    path: str | os.PathLike[str], layers: Sequence[int], results: Sequence[LayerTopTokens], top_n: int,
    n_sentences: int,
) -> None:  # fmt: skip
    """Write ``{shard}.toptokens.npz`` (see the module docstring)."""
    arrays: dict[str, np.ndarray] = {
        "top_n": np.array([top_n], dtype=np.int64),
        "n_sentences": np.array([n_sentences], dtype=np.int64),
        "layers": np.asarray(list(layers), dtype=np.int64),
    }
    for layer, result in zip(layers, results, strict=True):
        arrays[f"layer{layer}_keys"] = result.keys
        arrays[f"layer{layer}_rows"] = result.rows
        arrays[f"layer{layer}_offsets"] = result.offsets
        arrays[f"layer{layer}_values"] = result.values
    save_npz(path, arrays)


class ScanTopTokens:
    """The recorders of a scan: one `TopTokenRecorder` per scanned layer, fed from site hooks on `encoder`.

    The hooks hold each layer's site activations of the current batch (one batch of all scanned layers alive at a
    time); `add(index, rows, keys)` (index into `encoder.layers`) records from them once the scan has the keys.
    Call `close()` (or use as a context manager) to remove the hooks.
    """

    def __init__(self, encoder, top_n: int) -> None:
        self.layers = list(encoder.layers)
        self.recorders = [TopTokenRecorder(encoder.n_neurons, top_n) for _ in self.layers]
        self._acts: dict[int, torch.Tensor] = {}
        self._handles = [
            encoder.register_site_hook(layer, self._holder(layer)) for layer in self.layers
        ]

    def _holder(self, layer: int):
        def hold(acts: torch.Tensor) -> None:
            self._acts[layer] = acts

        return hold

    def add(self, index: int, rows: np.ndarray, keys: torch.Tensor) -> None:
        """Record layer `self.layers[index]` of the batch just run: rows int [B], keys int64 [B, H]."""
        layer = self.layers[index]
        acts = self._acts.pop(layer, None)
        if acts is None:
            raise RuntimeError(f"top tokens: no site activations of layer {layer} for this batch")
        self.recorders[index].add(rows, keys, acts)

    def results(self, tokens: Tokens) -> list[LayerTopTokens]:
        return [recorder.result(tokens) for recorder in self.recorders]

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._acts.clear()

    def __enter__(self) -> ScanTopTokens:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()


@dataclass
class TopTokenMatch:
    """Token records of R requested (neuron, sentence) pairs from the scan's top tokens: activation float32 [R]
    (pooled, as in the top K), truncated bool [R], offsets int64 [R + 1] into char_start / char_end int32 and
    values float32 (one entry per text token)."""

    activation: np.ndarray
    truncated: np.ndarray
    offsets: np.ndarray
    char_start: np.ndarray
    char_end: np.ndarray
    values: np.ndarray


def match_top_tokens(
    layer: int, neurons: np.ndarray, sentence_ids: np.ndarray, top_tokens: Sequence[str], shards: Sequence[str],
    shard_cache: dict | None = None,
) -> TopTokenMatch:  # fmt: skip
    """Look up the pairs (neurons int [R], sentence_ids uint32 [R]) of `layer` in the toptokens files `top_tokens`
    (`shards[i]` is the token shard of `top_tokens[i]`: character offsets and truncation come from it). Every pair
    must be in a shard's top `top_n` of its neuron: the records' top rows come from the top K, whose first `top_n`
    per neuron always are. A pair in none is an error naming the layer and the files. `shard_cache` (a dict, path ->
    the shard read with offsets) lets several layers read each shard once."""
    from neurotext.shards import read_shard
    from neurotext.topk import decode_keys

    neurons = np.asarray(neurons, dtype=np.int64)
    sentence_ids = np.asarray(sentence_ids, dtype=np.uint32)
    wanted = (neurons << 32) | sentence_ids.astype(np.int64)
    n = len(wanted)
    activation = np.full(n, np.nan, dtype=np.float32)
    truncated = np.zeros(n, dtype=bool)
    found = np.zeros(n, dtype=bool)
    token_counts = np.zeros(n, dtype=np.int64)
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []  # hit, counts, start, end, value
    if len(top_tokens) != len(shards):
        raise ValueError("match_top_tokens: top_tokens and shards must be parallel lists")
    for path, shard in zip(top_tokens, shards, strict=True):
        with np.load(path, allow_pickle=False) as archive:
            name = f"layer{layer}_keys"
            if name not in archive.files:
                raise ValueError(f"{path}: holds no top tokens of layer {layer}; rerun its scan_shard job")
            keys, rows = archive[name], archive[f"layer{layer}_rows"]
            offsets, values = archive[f"layer{layer}_offsets"], archive[f"layer{layer}_values"]
        if keys.size == 0 or n == 0:
            continue
        ids, acts = decode_keys(keys)
        entry_neuron = np.repeat(np.arange(keys.shape[0], dtype=np.int64), keys.shape[1])
        entry_pair = (entry_neuron << 32) | ids.reshape(-1).astype(np.int64)
        order = np.argsort(entry_pair, kind="stable")
        position = np.searchsorted(entry_pair[order], wanted)
        position = np.minimum(position, len(order) - 1)
        hit = np.flatnonzero((entry_pair[order][position] == wanted) & ~found)
        if not hit.size:
            continue
        entries = order[position[hit]]
        data = shard_cache.get(shard) if shard_cache is not None else None
        if data is None:
            data = read_shard(shard, with_offsets=True)
            if shard_cache is not None:
                shard_cache[shard] = data
        shard_offsets, shard_positions = text_positions(data.tokens)
        entry_rows = rows.reshape(-1)[entries].astype(np.int64)
        counts = offsets[entries + 1] - offsets[entries]
        if not np.array_equal(counts, np.diff(shard_offsets)[entry_rows]):
            raise ValueError(f"{path}: token counts differ from its shard {shard}; rerun its scan_shard job")
        token_index = data.tokens.offsets[np.repeat(entry_rows, counts)] + shard_positions[
            concat_ranges(shard_offsets[entry_rows], counts)
        ]
        starts = data.tokens.char_start[token_index].astype(np.int32)
        ends = data.tokens.char_end[token_index].astype(np.int32)
        vals = values[concat_ranges(offsets[entries], counts)].astype(np.float32)
        parts.append((hit, counts, starts, ends, vals))
        token_counts[hit] = counts
        activation[hit] = acts.reshape(-1)[entries]
        truncated[hit] = data.tokens.truncated[entry_rows]
        found[hit] = True
    if not found.all():
        missing = int(np.flatnonzero(~found)[0])
        raise ValueError(
            f"layer {layer}: neuron {int(neurons[missing])}, sentence {int(sentence_ids[missing])} is in no shard's "
            f"top tokens ({len(top_tokens)} files): the top K and the scan come from different runs, or "
            "records.top_n changed since the scan; rerun the scan"
        )
    out_offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(token_counts, out=out_offsets[1:])
    total = int(out_offsets[-1])
    char_start = np.zeros(total, dtype=np.int32)
    char_end = np.zeros(total, dtype=np.int32)
    out_values = np.zeros(total, dtype=np.float32)
    for hit, counts, starts, ends, vals in parts:
        target = concat_ranges(out_offsets[hit], counts)
        char_start[target], char_end[target], out_values[target] = starts, ends, vals
    return TopTokenMatch(activation, truncated, out_offsets, char_start, char_end, out_values)
