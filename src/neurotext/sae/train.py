"""Train a TopK sparse autoencoder on the token activations of the sample, and write it in the SAELens layout.

* Data: the sample sentences (`sample/sentences.parquet`), tokenized like the scan, run through the model; every
  pooled token (special tokens left out with `model.exclude_special`) of layer L's site is one training row,
  float32 [n_tokens, d_in]. At most `sae.max_tokens` rows (a seeded choice); `sae.holdout` of them (seeded) are kept
  out of training for the reported metrics.
* Model: TopK SAE (Gao et al. 2024): ``z = topk(relu((x - b_dec) @ W_enc + b_enc), k)``, ``x_hat = z @ W_dec +
  b_dec``; W_dec rows kept at unit norm, W_enc initialised to W_dec.T, b_dec to the data mean. Loss: mean squared
  error; Adam. An auxiliary loss (`sae.aux_k` latents, the dead ones: not active for `sae.dead_after` tokens)
  revives dead latents, as in the paper.
* Determinism: a seeded generator for the initialisation, token choice and the shuffles; torch threads fixed
  (`sae.threads`). Same config and inputs, same bytes.
* Resumable: after each epoch the state (weights, optimiser, epoch, dead counters) goes to
  `{checkpoint_dir}/epoch{e}.pt` (written atomically); a restarted job resumes after the last complete epoch.
* Metrics (`metrics.json`): fraction of variance unexplained (FVU = sum |x - x_hat|^2 / sum |x - mean|^2) on the
  held-out and training tokens, the share of dead latents (never active on the held-out + training tokens), mean
  L0, per epoch losses.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neurotext.config import ConfigError, require_key
from neurotext.features.sae import SparseAutoencoder, save_sae

log = logging.getLogger("neurotext.sae")


@dataclass(frozen=True)
class SAESettings:
    """The config's `sae:` block (training), validated; see config/sae.yaml for each key's meaning."""

    layers: tuple[int, ...] = ()
    d_sae: int = 1536
    k: int = 32
    epochs: int = 10
    batch_size: int = 1024
    lr: float = 1e-3
    max_tokens: int = 100_000
    holdout: float = 0.1
    seed: int = 0
    threads: int = 2
    aux_k: int = 256
    aux_coefficient: float = 1 / 32
    dead_after: int = 50_000

    @classmethod
    def from_config(cls, block: Mapping[str, Any] | None) -> SAESettings:
        block = dict(block or {})
        defaults = cls()
        values: dict[str, Any] = {}
        for name in ("d_sae", "k", "epochs", "batch_size", "max_tokens", "threads", "aux_k", "dead_after"):
            value = block.pop(name, getattr(defaults, name))
            if not isinstance(value, int) or isinstance(value, bool) or value < (0 if name == "aux_k" else 1):
                raise ConfigError(f"sae.{name} = {value!r}: a positive integer")
            values[name] = value
        seed = block.pop("seed", defaults.seed)
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise ConfigError(f"sae.seed = {seed!r}: an integer >= 0")
        for name in ("lr", "holdout", "aux_coefficient"):
            value = block.pop(name, getattr(defaults, name))
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"sae.{name} = {value!r}: a number >= 0")
            values[name] = float(value)
        if not 0 <= values["holdout"] < 1:
            raise ConfigError(f"sae.holdout = {values['holdout']!r}: a fraction in [0, 1)")
        if values["k"] > values["d_sae"]:
            raise ConfigError(f"sae.k = {values['k']}: at most sae.d_sae ({values['d_sae']})")
        layers = block.pop("layers", [])
        if not isinstance(layers, list) or any(not isinstance(x, int) or x < 1 for x in layers):
            raise ConfigError(f"sae.layers = {layers!r}: a list of layers (1-based) to train an SAE for")
        if block:
            raise ConfigError(f"sae: unknown keys {sorted(block)}")
        return cls(layers=tuple(sorted(set(layers))), seed=seed, **values)


# --------------------------------------------------------------------------------------------------------------
# Data


def token_activations(
    sample: str, model_dir: str, model: Mapping[str, Any], scan: Mapping[str, Any], layer: int
) -> np.ndarray:
    """Site activations (neurons, whatever `model.features` says) of every pooled token of the sample sentences at
    `layer`, float32 [n_tokens, d_in], rows in (sentence_id, token) order."""
    import pyarrow.parquet as pq

    from neurotext.encoder import (
        Encoder,
        ModelSettings,
        ScanSettings,
        load_tokenizer,
        make_batch,
        plan_batches,
        tokenize,
    )
    from neurotext.features import FeatureSettings

    settings = ModelSettings.from_config({**model, "features": "neurons", "layers": [layer]})
    scan_settings = ScanSettings.from_config(scan)
    table = pq.read_table(sample, columns=["sentence_id", "text"])
    ids = table.column("sentence_id").to_numpy().astype(np.uint32)
    order = np.argsort(ids, kind="stable")
    texts = table.column("text").to_pylist()
    texts, ids = [texts[i] for i in order], ids[order]
    tokens = tokenize(load_tokenizer(model_dir), texts, settings.max_length)
    encoder = Encoder.load(
        model_dir, site=settings.site, device=scan_settings.device, dtype=scan_settings.dtype,
        threads=scan_settings.threads, layers=[layer], features=FeatureSettings(),
    )  # fmt: skip
    rows_by_sentence: dict[int, np.ndarray] = {}
    for batch_rows in plan_batches(tokens.lengths, ids, scan_settings.token_budget):
        batch = make_batch(tokens, batch_rows, settings.exclude_special, encoder.device)
        captured: list[torch.Tensor] = []
        encoder.run(batch.input_ids, batch.attention_mask, lambda _layer, acts: captured.append(acts.float()))
        acts = captured[0].cpu().numpy()
        mask = batch.pool_mask.cpu().numpy()
        for slot, row in enumerate(batch_rows):
            rows_by_sentence[int(row)] = acts[slot][mask[slot]]
    parts = [rows_by_sentence[i] for i in range(len(texts))]
    return np.concatenate(parts).astype(np.float32) if parts else np.empty((0, encoder.n_neurons), np.float32)


# --------------------------------------------------------------------------------------------------------------
# Model


class TopKTrainer(torch.nn.Module):
    """Trainable TopK SAE parameters (shapes as `SparseAutoencoder`) and the dead-latent counters."""

    def __init__(self, d_in: int, d_sae: int, k: int, mean: torch.Tensor, generator: torch.Generator) -> None:
        super().__init__()
        w_dec = torch.randn(d_sae, d_in, generator=generator)
        w_dec /= w_dec.norm(dim=1, keepdim=True)
        self.W_dec = torch.nn.Parameter(w_dec)
        self.W_enc = torch.nn.Parameter(w_dec.T.clone())
        self.b_enc = torch.nn.Parameter(torch.zeros(d_sae))
        self.b_dec = torch.nn.Parameter(mean.clone())
        self.k = k
        self.register_buffer("since_active", torch.zeros(d_sae, dtype=torch.int64))

    def encode(self, x: torch.Tensor, k: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(latents [B, d_sae], pre-activations [B, d_sae])."""
        pre = torch.relu((x - self.b_dec) @ self.W_enc + self.b_enc)
        top = pre.topk(k or self.k, dim=-1)
        return torch.zeros_like(pre).scatter(-1, top.indices, top.values), pre

    def forward(self, x: torch.Tensor, aux_k: int, dead_after: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(mse loss, aux loss, latents) of a batch x [B, d_in]."""
        z, pre = self.encode(x)
        x_hat = z @ self.W_dec + self.b_dec
        error = x - x_hat
        mse = error.pow(2).sum(dim=-1).mean()
        with torch.no_grad():
            active = (z > 0).any(dim=0)
            self.since_active += len(x)
            self.since_active[active] = 0
        dead = self.since_active >= dead_after
        aux = torch.zeros((), dtype=x.dtype)
        n_dead = int(dead.sum())
        if aux_k and n_dead:
            masked = torch.where(dead, pre, torch.zeros_like(pre))
            top = masked.topk(min(aux_k, n_dead), dim=-1)
            z_aux = torch.zeros_like(pre).scatter(-1, top.indices, top.values)
            aux = (error.detach() - z_aux @ self.W_dec).pow(2).sum(dim=-1).mean()
        return mse, aux, z

    @torch.no_grad()
    def normalize_decoder(self) -> None:
        self.W_dec /= self.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-12)

    def export(self) -> SparseAutoencoder:
        return SparseAutoencoder(
            W_enc=self.W_enc.detach().clone(), b_enc=self.b_enc.detach().clone(), W_dec=self.W_dec.detach().clone(),
            b_dec=self.b_dec.detach().clone(), activation="topk", k=self.k, apply_b_dec_to_input=True,
        )  # fmt: skip


def fvu(sae: SparseAutoencoder, x: torch.Tensor, batch: int = 8192) -> tuple[float, np.ndarray, float]:
    """(fraction of variance unexplained, latents ever active bool [d_sae], mean L0) of `sae` on x [n, d_in]."""
    if len(x) == 0:
        return float("nan"), np.zeros(sae.width, dtype=bool), float("nan")
    mean = x.mean(dim=0)
    residual = total = l0 = 0.0
    active = torch.zeros(sae.width, dtype=torch.bool)
    with torch.no_grad():
        for start in range(0, len(x), batch):
            chunk = x[start : start + batch]
            z = sae(chunk)
            residual += float((chunk - sae.decode(z, chunk)).pow(2).sum())
            total += float((chunk - mean).pow(2).sum())
            active |= (z > 0).any(dim=0)
            l0 += float((z > 0).sum())
    return residual / max(total, 1e-30), active.numpy(), l0 / len(x)


# --------------------------------------------------------------------------------------------------------------
# Training


def _latest_checkpoint(directory: Path) -> Path | None:
    found = sorted(directory.glob("epoch*.pt"), key=lambda p: int(p.stem[5:]) if p.stem[5:].isdigit() else -1)
    return found[-1] if found else None


def train_topk(
    x: np.ndarray, settings: SAESettings, checkpoint_dir: str | os.PathLike[str] | None = None
) -> tuple[SparseAutoencoder, dict[str, Any]]:
    """Train a TopK SAE on rows x float32 [n, d_in]; returns the SAE and its metrics (module docstring)."""
    torch.set_num_threads(settings.threads)
    generator = torch.Generator().manual_seed(settings.seed)
    data = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    if len(data) > settings.max_tokens:
        data = data[torch.randperm(len(data), generator=generator)[: settings.max_tokens].sort().values]
    n_holdout = int(round(len(data) * settings.holdout))
    permutation = torch.randperm(len(data), generator=generator)
    held, train = data[permutation[:n_holdout]], data[permutation[n_holdout:]]
    if len(train) == 0:
        raise ConfigError("sae: no training tokens (an empty sample or sae.holdout too large)")
    model = TopKTrainer(data.shape[1], settings.d_sae, settings.k, train.mean(dim=0), generator)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    history: list[dict[str, float]] = []
    start_epoch = 0
    checkpoints = Path(checkpoint_dir) if checkpoint_dir else None
    if checkpoints is not None and (latest := _latest_checkpoint(checkpoints)) is not None:
        state = torch.load(latest, weights_only=False)
        if state.get("settings") == asdict(settings) and state.get("shape") == list(data.shape):
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            generator.set_state(state["generator"])
            history, start_epoch = state["history"], state["epoch"]
            log.info("resuming after epoch %d from %s", start_epoch, latest)
        else:
            log.info("ignoring %s: another config or data", latest)
    started = time.perf_counter()
    for epoch in range(start_epoch, settings.epochs):
        order = torch.randperm(len(train), generator=generator)
        totals = {"mse": 0.0, "aux": 0.0}
        for begin in range(0, len(train), settings.batch_size):
            batch = train[order[begin : begin + settings.batch_size]]
            mse, aux, _ = model(batch, settings.aux_k, settings.dead_after)
            loss = mse + settings.aux_coefficient * aux
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            model.normalize_decoder()
            totals["mse"] += float(mse.detach()) * len(batch)
            totals["aux"] += float(aux.detach()) * len(batch)
        history.append({"epoch": epoch + 1, **{name: value / len(train) for name, value in totals.items()}})
        log.info("epoch %d/%d: mse %.4g, aux %.4g (%.1f s)", epoch + 1, settings.epochs, history[-1]["mse"],
                 history[-1]["aux"], time.perf_counter() - started)  # fmt: skip
        if checkpoints is not None:
            checkpoints.mkdir(parents=True, exist_ok=True)
            state = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "generator": generator.get_state(),
                "history": history,
                "epoch": epoch + 1,
                "settings": asdict(settings),
                "shape": list(data.shape),
            }
            tmp = checkpoints / f"epoch{epoch + 1}.pt.tmp"
            torch.save(state, tmp)
            tmp.replace(checkpoints / f"epoch{epoch + 1}.pt")
    sae = model.export()
    held_fvu, held_active, held_l0 = fvu(sae, held)
    train_fvu, train_active, train_l0 = fvu(sae, train)
    dead = ~(held_active | train_active)
    metrics = {
        "n_tokens": len(data), "n_train": len(train), "n_holdout": len(held), "d_in": int(data.shape[1]),
        "d_sae": settings.d_sae, "k": settings.k,
        "fvu_holdout": round(held_fvu, 6), "fvu_train": round(train_fvu, 6),
        "dead_share": round(float(dead.mean()), 6), "l0_holdout": round(held_l0, 3), "l0_train": round(train_l0, 3),
        "history": [{name: round(v, 6) if isinstance(v, float) else v for name, v in h.items()} for h in history],
    }  # fmt: skip
    return sae, metrics


def train_sae(
    sample: str,
    model_dir: str,
    model: Mapping[str, Any],
    scan: Mapping[str, Any],
    sae: Mapping[str, Any] | None,
    layer: int,
    out_dir: str,
    checkpoint_dir: str | None = None,
) -> dict[str, Any]:
    """Train layer `layer`'s TopK SAE on the sample's token activations and write `out_dir`/cfg.json,
    sae_weights.safetensors (SAELens layout) and metrics.json; returns the metrics."""
    settings = SAESettings.from_config(sae)
    started = time.perf_counter()
    x = token_activations(sample, model_dir, model, scan, layer)
    seconds = time.perf_counter() - started
    log.info("layer %d: %d tokens x %d from the sample (%.1f s)", layer, len(x), x.shape[1], seconds)
    trained, metrics = train_topk(x, settings, checkpoint_dir)
    site = require_key(model, "model.site")
    extra = {"neurotext": {"site": site, "layer": layer, "model_path": str(model.get("path", model_dir)),
                           "seed": settings.seed, "epochs": settings.epochs}}  # fmt: skip
    save_sae(trained, out_dir, extra)
    Path(out_dir, "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    log.info("layer %d: FVU %.4f held out (%.4f train), dead latents %.1f%%, L0 %.1f", layer, metrics["fvu_holdout"],
             metrics["fvu_train"], 100 * metrics["dead_share"], metrics["l0_holdout"])  # fmt: skip
    return metrics
