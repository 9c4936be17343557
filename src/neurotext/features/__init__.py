"""Features read off a model's site: neurons (the site's own units), directions (projections on given vectors) or
SAE latents (a sparse autoencoder's encoder, SAELens layout). Computed on the fly on token activations, before
pooling, so every later stage treats a feature exactly like a neuron (names ``L6.f1234``, see `neurotext.ids`).

Config (`model:` block): ``features: neurons | directions | sae``; ``directions: DIR`` holds ``layer{L}.npy``
(float [n_features, d_site], one row per direction, used as given: unit vectors give projections, raw vectors
scaled ones); ``sae: DIR`` holds ``layer{L}/cfg.json`` + ``layer{L}/sae_weights.safetensors``
(`neurotext.features.sae`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from neurotext.config import ConfigError
from neurotext.featurespec import FEATURE_KINDS, FeatureSettings, feature_width

__all__ = [
    "FEATURE_KINDS",
    "Directions",
    "FeatureMap",
    "FeatureSettings",
    "feature_width",
    "load_directions",
    "load_feature_map",
]

if TYPE_CHECKING:  # torch is imported where features are computed, so the workflow's DAG builds without it
    import torch


class FeatureMap(Protocol):
    """Maps site activations float [..., d_in] to features float32 [..., width]."""

    d_in: int
    width: int

    def __call__(self, activations: torch.Tensor) -> torch.Tensor: ...

    def to(self, device: torch.device) -> FeatureMap: ...


@dataclass
class Directions:
    """Projections on fixed vectors: vectors float32 [width, d_in]; features = activations @ vectors.T."""

    vectors: torch.Tensor

    @property
    def d_in(self) -> int:
        return int(self.vectors.shape[1])

    @property
    def width(self) -> int:
        return int(self.vectors.shape[0])

    def __call__(self, activations: torch.Tensor) -> torch.Tensor:
        return activations.float() @ self.vectors.T

    def to(self, device: torch.device) -> Directions:
        return Directions(self.vectors.to(device))


def load_directions(path: str | os.PathLike[str], key: str = "model.directions") -> Directions:
    """A `layer{L}.npy` of directions, float [n, d] (a single vector [d] is one direction); errors name `key`."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise ConfigError(f"{key}: cannot read {path} ({error}); write one float array [n_directions, d]") from error
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[0] < 1 or not np.issubdtype(array.dtype, np.floating):
        raise ConfigError(f"{key}: {path} holds a {array.dtype} array of shape {array.shape}; need float [n, d]")
    if not np.isfinite(array).all():
        raise ConfigError(f"{key}: {path} holds NaN or infinite values")
    import torch

    return Directions(torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)))


def load_feature_map(settings: FeatureSettings, layer: int) -> FeatureMap:
    """The feature map of `layer` for directions or sae settings."""
    from neurotext.features.sae import load_sae

    path = settings.layer_path(layer)
    if settings.kind == "directions":
        return load_directions(path, settings.key())
    return load_sae(path, settings.key())
