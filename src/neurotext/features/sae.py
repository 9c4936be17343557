"""Sparse autoencoders in the SAELens on-disk layout: a directory with ``cfg.json`` and ``sae_weights.safetensors``.

Weights: ``W_enc`` [d_in, d_sae], ``b_enc`` [d_sae], ``W_dec`` [d_sae, d_in], ``b_dec`` [d_in], and for JumpReLU
``threshold`` [d_sae]. cfg.json: ``d_in``, ``d_sae``, ``architecture`` (``standard`` = ReLU, ``topk``,
``jumprelu``; older files name ``activation_fn_str`` / ``activation_fn`` relu or topk instead), ``k`` (topk; older
files: ``activation_fn_kwargs.k``), ``apply_b_dec_to_input`` (default true), ``normalize_activations`` (``none``,
``constant_norm_rescale`` or ``layer_norm``; others are refused).

Encoding (what the scan computes per token): ``x' = norm(x) - b_dec * apply_b_dec_to_input``,
``pre = x' @ W_enc + b_enc``; relu: ``relu(pre)``; topk: the k largest of ``pre`` per token, relu'd, others 0;
jumprelu: ``pre * (pre > threshold)`` (and relu). `decode(f) = f @ W_dec + b_dec` (then un-normalised).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from neurotext.config import ConfigError

CFG_FILE = "cfg.json"
WEIGHTS_FILE = "sae_weights.safetensors"
ACTIVATIONS = ("relu", "topk", "jumprelu")
NORMALIZATIONS = ("none", "constant_norm_rescale", "layer_norm")


@dataclass
class SparseAutoencoder:
    """An SAE's weights (float32 tensors, shapes in the module docstring) and its encoding settings."""

    W_enc: torch.Tensor
    b_enc: torch.Tensor
    W_dec: torch.Tensor
    b_dec: torch.Tensor
    activation: str = "relu"
    k: int | None = None
    threshold: torch.Tensor | None = None
    apply_b_dec_to_input: bool = True
    normalize_activations: str = "none"

    @property
    def d_in(self) -> int:
        return int(self.W_enc.shape[0])

    @property
    def width(self) -> int:
        return int(self.W_enc.shape[1])

    def to(self, device: torch.device) -> SparseAutoencoder:
        moved = {name: getattr(self, name).to(device) for name in ("W_enc", "b_enc", "W_dec", "b_dec")}
        threshold = None if self.threshold is None else self.threshold.to(device)
        return replace(self, threshold=threshold, **moved)

    def _normalize(self, x: torch.Tensor) -> tuple[torch.Tensor, Any]:
        if self.normalize_activations == "constant_norm_rescale":
            scale = (self.d_in**0.5) / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)
            return x * scale, scale
        if self.normalize_activations == "layer_norm":
            mu = x.mean(dim=-1, keepdim=True)
            std = (x - mu).std(dim=-1, keepdim=True)
            return (x - mu) / (std + 1e-5), (mu, std)
        return x, None

    def pre_activations(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder pre-activations float32 [..., d_sae] of site activations x [..., d_in]."""
        x, _ = self._normalize(x.float())
        if self.apply_b_dec_to_input:
            x = x - self.b_dec
        return x @ self.W_enc + self.b_enc

    def activate(self, pre: torch.Tensor) -> torch.Tensor:
        """Latent activations from pre-activations (relu, topk or jumprelu)."""
        if self.activation == "topk":
            assert self.k is not None
            k = min(self.k, pre.shape[-1])
            top = pre.topk(k, dim=-1, sorted=False)
            return torch.zeros_like(pre).scatter_(-1, top.indices, torch.relu(top.values))
        if self.activation == "jumprelu":
            assert self.threshold is not None
            return torch.relu(pre) * (pre > self.threshold)
        return torch.relu(pre)

    def __call__(self, activations: torch.Tensor) -> torch.Tensor:
        """Latents float32 [..., d_sae] of site activations [..., d_in]."""
        return self.activate(self.pre_activations(activations))

    def decode(self, latents: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        """Reconstruction float32 [..., d_in]; `x` (the input) is needed to undo a per-token normalisation."""
        out = latents @ self.W_dec + self.b_dec
        if self.normalize_activations != "none":
            if x is None:
                raise ValueError("decode: pass the input x to undo normalize_activations")
            _, state = self._normalize(x.float())
            if self.normalize_activations == "constant_norm_rescale":
                return out / state
            mu, std = state
            return out * std + mu
        return out


def _architecture(cfg: dict[str, Any], where: Path) -> tuple[str, int | None]:
    architecture = cfg.get("architecture")
    legacy = cfg.get("activation_fn_str", cfg.get("activation_fn"))
    if architecture in ("standard", None) and legacy in (None, "relu"):
        return "relu", None
    if architecture == "jumprelu":
        return "jumprelu", None
    if architecture == "topk" or legacy == "topk":
        k = cfg.get("k", (cfg.get("activation_fn_kwargs") or {}).get("k"))
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ConfigError(f"{where}: a topk SAE needs a positive integer k (cfg key k or activation_fn_kwargs.k)")
        return "topk", k
    raise ConfigError(
        f"{where}: architecture {architecture!r} / activation {legacy!r} is not supported; neurotext reads "
        "standard (relu), topk and jumprelu SAEs"
    )


def load_sae(directory: str | os.PathLike[str], key: str = "model.sae") -> SparseAutoencoder:
    """Load an SAE directory (SAELens layout) as float32 tensors on the CPU; errors name `key` and the file."""
    from safetensors.torch import load_file

    directory = Path(directory)
    cfg_path, weights_path = directory / CFG_FILE, directory / WEIGHTS_FILE
    try:
        cfg = json.loads(cfg_path.read_text())
        weights = load_file(str(weights_path))
    except (OSError, ValueError) as error:
        raise ConfigError(
            f"{key}: cannot read the SAE in {directory} ({error}); it needs {CFG_FILE} and {WEIGHTS_FILE}"
        ) from error
    activation, k = _architecture(cfg, cfg_path)
    normalize = cfg.get("normalize_activations", "none") or "none"
    if normalize not in NORMALIZATIONS:
        raise ConfigError(
            f"{cfg_path}: normalize_activations {normalize!r} is not supported ({', '.join(NORMALIZATIONS)}); "
            "fold the scaling factor into the weights first"
        )
    missing = [n for n in ("W_enc", "b_enc", "W_dec", "b_dec") if n not in weights]
    if activation == "jumprelu" and "threshold" not in weights:
        missing.append("threshold")
    if missing:
        raise ConfigError(f"{weights_path}: missing tensors {', '.join(missing)}")
    tensors = {name: weights[name].float().contiguous() for name in ("W_enc", "b_enc", "W_dec", "b_dec")}
    d_in, d_sae = int(cfg.get("d_in", -1)), int(cfg.get("d_sae", -1))
    shapes = {"W_enc": (d_in, d_sae), "b_enc": (d_sae,), "W_dec": (d_sae, d_in), "b_dec": (d_in,)}
    for name, shape in shapes.items():
        if tuple(tensors[name].shape) != shape:
            raise ConfigError(
                f"{weights_path}: {name} has shape {tuple(tensors[name].shape)}, cfg.json (d_in {d_in}, d_sae "
                f"{d_sae}) says {shape}"
            )
    threshold = weights["threshold"].float() if activation == "jumprelu" else None
    return SparseAutoencoder(
        **tensors,
        activation=activation,
        k=k,
        threshold=threshold,
        apply_b_dec_to_input=bool(cfg.get("apply_b_dec_to_input", True)),
        normalize_activations=normalize,
    )


def save_sae(
    sae: SparseAutoencoder, directory: str | os.PathLike[str], extra_cfg: dict[str, Any] | None = None
) -> Path:
    """Write `sae` in the SAELens layout (cfg.json with sorted keys + sae_weights.safetensors); same SAE, same bytes."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    architecture = {"relu": "standard", "topk": "topk", "jumprelu": "jumprelu"}[sae.activation]
    cfg: dict[str, Any] = {
        "architecture": architecture,
        "d_in": sae.d_in,
        "d_sae": sae.width,
        "dtype": "float32",
        "device": "cpu",
        "apply_b_dec_to_input": sae.apply_b_dec_to_input,
        "normalize_activations": sae.normalize_activations,
    }
    if sae.activation == "topk":
        cfg["k"] = sae.k
        cfg["activation_fn_kwargs"] = {"k": sae.k}  # older readers
    cfg.update(extra_cfg or {})
    names = ("W_enc", "b_enc", "W_dec", "b_dec")
    tensors = {name: getattr(sae, name).detach().float().cpu().contiguous() for name in names}
    if sae.threshold is not None:
        tensors["threshold"] = sae.threshold.detach().float().cpu().contiguous()
    tmp = directory / (WEIGHTS_FILE + ".tmp")
    save_file(tensors, str(tmp))
    tmp.replace(directory / WEIGHTS_FILE)
    (directory / CFG_FILE).write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    return directory
