"""Distances between the evaluation sentences' activations before and after fine-tuning (`write_distances` ->
``finetune/distances.parquet`` and ``finetune/sentence_distances.parquet``), and the per-layer activation readers
the neuron changes share."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from neurotext.artifacts.finetune import DISTANCES_SCHEMA, EVAL_SETS, SENTENCE_DISTANCES_SCHEMA
from neurotext.io import write_parquet

log = logging.getLogger("neurotext.finetune")


@dataclass
class SentenceDistances:
    """Per sentence and layer, float64 [n, n_layers]: Manhattan distance, squared Euclidean distance and squared
    norm of the before vector; `n_neurons` per layer."""

    manhattan: np.ndarray
    squared_euclidean: np.ndarray
    squared_before_norm: np.ndarray
    n_neurons: int

    @property
    def n_layers(self) -> int:
        return self.manhattan.shape[1]

    def total_manhattan(self) -> np.ndarray:
        """Over all layers (the concatenated vector), float64 [n]."""
        return self.manhattan.sum(axis=1)

    def total_euclidean(self) -> np.ndarray:
        return np.sqrt(self.squared_euclidean.sum(axis=1))

    def total_before_norm(self) -> np.ndarray:
        return np.sqrt(self.squared_before_norm.sum(axis=1))


def activation_distances(before: Iterable[np.ndarray], after: Iterable[np.ndarray]) -> SentenceDistances:
    """Distances between per-layer activations before and after, each a float array [n, n_neurons] (same n and
    width in every layer, rows aligned). Differences are taken in float64. The layers are consumed one at a time,
    so generators keep one layer in memory."""
    manhattan: list[np.ndarray] = []
    squared: list[np.ndarray] = []
    norms: list[np.ndarray] = []
    shape: tuple[int, ...] | None = None
    for index, (a, b) in enumerate(zip(before, after, strict=True)):
        shape = shape or a.shape
        if a.ndim != 2 or a.shape != shape or b.shape != shape:
            raise ValueError(f"layer {index + 1}: before {a.shape} and after {b.shape}, expected {shape}")
        a64 = a.astype(np.float64)
        difference = b.astype(np.float64) - a64
        manhattan.append(np.abs(difference).sum(axis=1))
        squared.append(np.einsum("ij,ij->i", difference, difference))
        norms.append(np.einsum("ij,ij->i", a64, a64))
    if shape is None:
        raise ValueError("activation_distances: no layers")
    return SentenceDistances(np.stack(manhattan, 1), np.stack(squared, 1), np.stack(norms, 1), int(shape[1]))


def layer_file(paths: Sequence[str], layer: int, suffix: str = ".npy") -> str:
    """The path among `paths` whose file name is `layer{layer}{suffix}`."""
    wanted = f"layer{layer}{suffix}"
    for path in paths:
        if Path(path).name == wanted:
            return str(path)
    raise ValueError(f"no {wanted} among the files {[str(p) for p in list(paths)[:3]]}...")


def iter_layers(paths: Sequence[str], layers: Sequence[int], n_rows: int, name: str) -> Iterator[np.ndarray]:
    """The activation arrays `layer{L}.npy` for `layers`, one at a time, each float32 [n_rows, n_neurons] (errors
    name the file)."""
    for layer in layers:
        path = layer_file(paths, layer)
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise ValueError(f"{path}: not a readable .npy file ({error}); rerun the rule that writes it") from error
        if array.ndim != 2 or array.shape[0] != n_rows:
            raise ValueError(f"{path}: shape {array.shape}, expected ({n_rows}, n_neurons) rows of {name}; rerun it")
        yield array.astype(np.float32, copy=False)


def load_layer(paths: Sequence[str], layer: int, n_rows: int, name: str) -> np.ndarray:
    """One layer's activations (see `iter_layers`)."""
    return next(iter_layers(paths, [layer], n_rows, name))


def write_distances(
    sentences: str, before: Sequence[str], after: Sequence[str], layers: Sequence[int], out: str,
    sentences_out: str, config_hash: str = "",
) -> pa.Table:  # fmt: skip
    """Distances of the evaluation sentences before and after fine-tuning: `out` (`DISTANCES_SCHEMA`, per set and
    per layer plus all layers) and `sentences_out` (`SENTENCE_DISTANCES_SCHEMA`). `before` / `after` are the
    `layer{L}.npy` files of `finetune/eval/{base,finetuned}/{pooling}/`."""
    table = pq.read_table(sentences, columns=["sentence_id", "set", "dataset", "text"])
    ids = table.column("sentence_id").to_numpy().astype(np.uint32)
    if np.any(np.diff(ids.astype(np.int64)) <= 0):
        raise ValueError(f"{sentences}: not sorted by unique sentence_id; rerun finetune_eval_sentences")
    sets = np.array(table.column("set").to_pylist(), dtype=object)
    datasets = table.column("dataset").to_pylist()
    distances = activation_distances(
        iter_layers(before, layers, len(ids), "before"), iter_layers(after, layers, len(ids), "after")
    )
    if distances.n_layers != len(layers):
        raise ValueError(f"{distances.n_layers} layers of activations for the {len(layers)} configured layers")
    rows: list[dict[str, Any]] = []
    for name in EVAL_SETS:
        mask = sets == name
        if not mask.any():
            continue
        dataset = datasets[int(np.flatnonzero(mask)[0])]
        for layer_index, layer in [(None, None), *enumerate(layers)]:
            if layer_index is None:
                manhattan = distances.total_manhattan()[mask]
                euclidean = distances.total_euclidean()[mask]
                norm = distances.total_before_norm()[mask]
                n_dims = distances.n_neurons * distances.n_layers
            else:
                manhattan = distances.manhattan[mask, layer_index]
                euclidean = np.sqrt(distances.squared_euclidean[mask, layer_index])
                norm = np.sqrt(distances.squared_before_norm[mask, layer_index])
                n_dims = distances.n_neurons
            relative = np.divide(euclidean, norm, out=np.full_like(euclidean, np.nan), where=norm > 0)
            rows.append(
                {
                    "set": name,
                    "dataset": dataset,
                    "layer": layer,
                    "n_sentences": int(mask.sum()),
                    "n_dims": int(n_dims),
                    "manhattan": float(manhattan.mean()),
                    "manhattan_std": float(manhattan.std()),
                    "euclidean": float(euclidean.mean()),
                    "euclidean_std": float(euclidean.std()),
                    "relative_euclidean": float(np.nanmean(relative)) if np.isfinite(relative).any() else float("nan"),
                    "mean_abs_change": float(manhattan.mean() / n_dims),
                }
            )
        log.info(
            "%s (%s, %d sentences): mean Manhattan %.4f, mean Euclidean %.4f over %d layers x %d neurons",
            name, dataset, int(mask.sum()), rows[-len(layers) - 1]["manhattan"], rows[-len(layers) - 1]["euclidean"],
            distances.n_layers, distances.n_neurons,
        )  # fmt: skip
    result = pa.Table.from_pylist(rows, schema=DISTANCES_SCHEMA)
    write_parquet(result, out, config_hash)
    n_words = np.array([len(text.split()) for text in table.column("text").to_pylist()], dtype=np.int32)
    write_parquet(_sentence_table(ids, sets, n_words, layers, distances), sentences_out, config_hash)
    return result


def _sentence_table(
    ids: np.ndarray, sets: np.ndarray, n_words: np.ndarray, layers: Sequence[int], d: SentenceDistances
) -> pa.Table:
    n = len(ids)
    blocks = [(None, d.total_manhattan(), d.total_euclidean(), d.total_before_norm())]
    blocks += [
        (layer, d.manhattan[:, i], np.sqrt(d.squared_euclidean[:, i]), np.sqrt(d.squared_before_norm[:, i]))
        for i, layer in enumerate(layers)
    ]
    layer_column = pa.array([layer for layer, *_ in blocks for _ in range(n)], pa.int32())
    return pa.Table.from_arrays(
        [
            pa.array(np.tile(ids, len(blocks)), pa.uint32()),
            pa.array(np.tile(sets, len(blocks)).tolist(), pa.string()),
            layer_column,
            pa.array(np.concatenate([m for _, m, _, _ in blocks]), pa.float64()),
            pa.array(np.concatenate([e for _, _, e, _ in blocks]), pa.float64()),
            pa.array(np.concatenate([b for _, _, _, b in blocks]), pa.float64()),
            pa.array(np.tile(n_words, len(blocks)), pa.int32()),
        ],
        schema=SENTENCE_DISTANCES_SCHEMA,
    )
