"""The one random sample (docs/ARCHITECTURE.md, "Artifacts" and "Determinism"):

* ``sample/sentences.parquet`` (`neurotext.artifacts.corpus.CORPUS_SCHEMA` rows, sorted by sentence_id);
* ``sample/{model}/{pooling}/layer{L}.npy``: float32 ``[n_sample, n_neurons]``, the sample's activations of one
  layer, rows in sentence_id order (the order of ``sample/sentences.parquet``).
"""

from __future__ import annotations

import os

import numpy as np
import pyarrow.parquet as pq

PathLike = str | os.PathLike[str]


def read_sample_ids(sample: PathLike) -> np.ndarray:
    """The sample's sentence ids (uint32) in file order (sorted by id)."""
    return pq.read_table(sample, columns=["sentence_id"])["sentence_id"].to_numpy().astype(np.uint32)


def read_sample_activations(path: PathLike) -> np.ndarray:
    """One layer's sample activations, float32 ``[n_sample, n_neurons]``; a ValueError names the file and the fix
    when it cannot be read, is not 2-D or holds a non-finite value."""
    try:
        activations = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise ValueError(
            f"{path}: cannot read the sample activations ({error}); rerun the sample_activations rule"
        ) from error
    if activations.ndim != 2:
        raise ValueError(f"{path}: expected a 2-D array [n_sample, n_neurons], got shape {activations.shape}")
    if not np.isfinite(activations).all():
        bad = np.argwhere(~np.isfinite(activations))[0]
        raise ValueError(
            f"{path}: non-finite activation at sample row {bad[0]}, neuron {bad[1]}; rerun the sample_activations "
            "rule (with scan.dtype float32 if it overflows)"
        )
    return activations
