"""``results/{run}/provenance.json`` (rule provenance, `neurotext.report.write_provenance`): the git commit, the run's
whole config and its hash, package versions, the model's checksum, device and dtype. Readers of what later tools
need from it: the config's ``model.features``, which decides how units are named (`neurotext.ids.unit_name`:
``L6.1234`` for neurons, ``L6.f1234`` for directions and SAE latents)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PathLike = str | os.PathLike[str]

PROVENANCE_PATH = "provenance.json"

#: `model.features` of a run whose provenance does not say (older runs, runs without provenance.json).
DEFAULT_FEATURES = "neurons"


def read_provenance(path: PathLike) -> dict[str, Any]:
    """The parsed ``provenance.json``; an unreadable or non-object file is a ValueError naming the path and the fix."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: cannot read provenance ({error}); rerun the provenance rule") from error
    if not isinstance(data, dict):
        raise ValueError(f"{path}: provenance is not a JSON object; rerun the provenance rule")
    return data


def features_of(provenance: Mapping[str, Any] | None) -> str:
    """``config.model.features`` of a parsed provenance (neurons, directions, sae); `DEFAULT_FEATURES` when absent."""
    config = (provenance or {}).get("config")
    model = config.get("model") if isinstance(config, Mapping) else None
    features = model.get("features") if isinstance(model, Mapping) else None
    return str(features) if features else DEFAULT_FEATURES


def run_features(root: PathLike) -> str:
    """`features_of` the run under `root` (``results/{run}``); `DEFAULT_FEATURES` when it has no provenance.json."""
    path = Path(root) / PROVENANCE_PATH
    return features_of(read_provenance(path)) if path.exists() else DEFAULT_FEATURES
