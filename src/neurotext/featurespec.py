"""Feature settings and feature widths without torch: `model.features` (neurons, directions or sae), the directory
it reads, and each layer's (d_in, width) from the files' headers only (`layer{L}.npy` header, SAE `cfg.json`).

Kept apart from `neurotext.features` (whose loaders import torch and safetensors) so that `neurotext.config` and the
DAG-building Snakemake process, and every job that only reads the config, never reach torch.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neurotext.config import ConfigError, require_key

FEATURE_KINDS = ("neurons", "directions", "sae")


@dataclass(frozen=True)
class FeatureSettings:
    """`model.features` and the directory it reads (`model.directions` or `model.sae`)."""

    kind: str = "neurons"
    path: str | None = None

    @classmethod
    def from_config(cls, model: Mapping[str, Any]) -> FeatureSettings:
        kind = require_key(model, "model.features")
        if kind not in FEATURE_KINDS:
            raise ConfigError(f"model.features = {kind!r}: choose one of {', '.join(FEATURE_KINDS)}")
        if kind == "neurons":
            return cls()
        path = model.get(kind)
        if not isinstance(path, str) or not path:
            what = "a directory of layer{L}.npy files" if kind == "directions" else "a directory of layer{L}/ SAEs"
            raise ConfigError(f"model.features = {kind!r} needs model.{kind}: {what}")
        return cls(kind, path)

    @property
    def is_neurons(self) -> bool:
        return self.kind == "neurons"

    def layer_path(self, layer: int) -> Path:
        """The file (directions) or directory (sae) of `layer` (1-based)."""
        assert self.path is not None
        base = Path(os.path.expanduser(self.path))
        return base / (f"layer{layer}.npy" if self.kind == "directions" else f"layer{layer}")

    def key(self) -> str:
        return f"model.{self.kind}"


def feature_width(settings: FeatureSettings, layer: int) -> tuple[int, int]:
    """(d_in, width) of a layer's features read from the files' headers only (no weights loaded)."""
    path = settings.layer_path(layer)
    if settings.kind == "directions":
        try:
            shape = np.load(path, mmap_mode="r", allow_pickle=False).shape  # the header only, no data read
        except (OSError, ValueError) as error:
            raise ConfigError(f"{settings.key()}: cannot read {path} ({error})") from error
        shape = (1, *shape) if len(shape) == 1 else shape
        if len(shape) != 2:
            raise ConfigError(f"{settings.key()}: {path} has shape {shape}; need [n_directions, d]")
        return int(shape[1]), int(shape[0])
    cfg_path = path / "cfg.json"
    try:
        cfg = json.loads(cfg_path.read_text())
        return int(cfg["d_in"]), int(cfg["d_sae"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ConfigError(
            f"{settings.key()}: cannot read d_in / d_sae from {cfg_path} ({error}); an SAE directory holds "
            "cfg.json and sae_weights.safetensors (SAELens layout)"
        ) from error
