"""Neurons as points: each neuron a vector of its activations over the sample, standardized as the config says."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from neurotext.artifacts.sample import read_sample_activations
from neurotext.config import ConfigError
from neurotext.relations.settings import STANDARDIZE_CHOICES

PathLike = str | os.PathLike[str]

@dataclass(frozen=True)
class NeuronVectors:
    """Neurons as points: `vectors` float64 [n_neurons, n_sample] (row i = neuron i's activations over the sample
    after standardization); `constant` bool [n_neurons] marks neurons with zero variance over the sample."""

    vectors: np.ndarray
    constant: np.ndarray

    @property
    def n_neurons(self) -> int:
        return int(self.vectors.shape[0])


def load_sample_activations(path: PathLike) -> np.ndarray:
    """The sample's activations of one layer, float32 [n_sample, n_neurons] (at least 2 sentences); errors name
    the file."""
    activations = read_sample_activations(path)
    if activations.shape[0] < 2:
        raise ConfigError(
            f"{path}: the sample has {activations.shape[0]} sentence(s); neurons need at least 2 to be compared: "
            "raise sample.size (or add sentences to the corpus)"
        )
    return activations


def neuron_vectors(activations: np.ndarray, standardize: str = "zscore") -> NeuronVectors:
    """Neurons as vectors of their activations over the sample.

    `activations`: [n_sample, n_neurons]. `standardize`: 'zscore' (each neuron centred and divided by its standard
    deviation over the sample, population form), 'center' (centred only) or 'none'. A constant neuron is centred
    only under 'zscore' (it becomes the zero vector) and flagged.
    """
    if standardize not in STANDARDIZE_CHOICES:
        raise ConfigError(f"relations.standardize = {standardize!r}: choose one of {', '.join(STANDARDIZE_CHOICES)}")
    vectors = np.asarray(activations, dtype=np.float64).T.copy()
    spread = vectors.max(axis=1) - vectors.min(axis=1)
    constant = spread == 0
    if standardize in ("zscore", "center"):
        vectors -= vectors.mean(axis=1, keepdims=True)
    if standardize == "zscore":
        std = vectors.std(axis=1, keepdims=True)
        std[constant] = 1.0
        vectors /= std
    return NeuronVectors(np.ascontiguousarray(vectors), constant)
