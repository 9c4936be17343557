"""TopK SAE training: recovers planted sparse structure, deterministic, resumable, SAELens layout on disk."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from neurotext.config import ConfigError
from neurotext.features.sae import load_sae
from neurotext.sae.train import SAESettings, fvu, train_sae, train_topk
from neurotext.validate import with_defaults


def planted(n: int = 3000, d: int = 16, atoms: int = 24, active: int = 2, seed: int = 0) -> np.ndarray:
    """Tokens that are sums of `active` of `atoms` unit directions with positive weights, plus small noise."""
    rng = np.random.default_rng(seed)
    dictionary = rng.normal(size=(atoms, d))
    dictionary /= np.linalg.norm(dictionary, axis=1, keepdims=True)
    x = np.zeros((n, d))
    for row in range(n):
        chosen = rng.choice(atoms, size=active, replace=False)
        x[row] = rng.uniform(1, 3, size=active) @ dictionary[chosen]
    return (x + rng.normal(scale=0.01, size=x.shape)).astype(np.float32)


SMALL = {"d_sae": 48, "k": 4, "epochs": 6, "batch_size": 128, "lr": 3e-3, "threads": 1, "aux_k": 8, "dead_after": 2000}


def test_a_topk_sae_recovers_planted_sparse_structure():
    x = planted()
    sae, metrics = train_topk(x, SAESettings.from_config({**SMALL, "epochs": 25}))
    assert metrics["fvu_holdout"] < 0.1, metrics
    assert metrics["l0_holdout"] <= 4
    # Control: dense Gaussian tokens of the same scale have no sparse structure, so the same SAE budget leaves
    # much more variance unexplained.
    noise = np.random.default_rng(2).normal(size=x.shape).astype(np.float32) * x.std()
    _, control = train_topk(noise, SAESettings.from_config({**SMALL, "epochs": 25}))
    assert control["fvu_holdout"] > 3 * metrics["fvu_holdout"], (control, metrics)
    shuffled = np.random.default_rng(1).permutation(x, axis=0)  # same rows, the metric does not depend on order
    assert fvu(sae, torch.from_numpy(shuffled))[0] == pytest.approx(fvu(sae, torch.from_numpy(x))[0], rel=1e-4)


def test_training_is_deterministic_and_resumes_from_checkpoints(tmp_path):
    x = planted(800)
    settings = SAESettings.from_config(SMALL)
    a, metrics_a = train_topk(x, settings)
    b, metrics_b = train_topk(x, settings, tmp_path / "ckpt")
    assert metrics_a == metrics_b
    torch.testing.assert_close(a.W_enc, b.W_enc, rtol=0, atol=0)
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [f"epoch{e}.pt" for e in range(1, 7)]
    for epoch in (4, 5, 6):  # an interrupted job: only epochs 1-3 were saved
        (tmp_path / "ckpt" / f"epoch{epoch}.pt").unlink()
    c, metrics_c = train_topk(x, settings, tmp_path / "ckpt")
    torch.testing.assert_close(a.W_enc, c.W_enc, rtol=0, atol=0)
    assert metrics_c == metrics_a
    # A checkpoint of another config is ignored (not resumed from).
    d, _ = train_topk(x, SAESettings.from_config({**SMALL, "seed": 1}), tmp_path / "ckpt")
    assert not torch.equal(d.W_enc, a.W_enc)


def test_bad_sae_settings_name_the_key():
    for block, key in (({"k": 0}, "sae.k"), ({"d_sae": 4, "k": 8}, "sae.k"), ({"holdout": 1.5}, "sae.holdout"),
                       ({"layers": ["6"]}, "sae.layers"), ({"epoch": 3}, "unknown keys")):  # fmt: skip
        with pytest.raises(ConfigError, match=key):
            SAESettings.from_config(block)


def test_train_sae_writes_the_saelens_layout_for_a_tiny_model(tmp_path, tiny_model_dir, scan_sentences, write_corpus):
    sample = write_corpus(tmp_path / "sample.parquet", scan_sentences[:60])
    model = with_defaults("model", {"path": "tiny", "max_length": 32})
    scan = with_defaults("scan", {"k": 5, "token_budget": 512, "device": "cpu", "threads": 1})
    out = tmp_path / "sae" / "layer2"
    metrics = train_sae(str(sample), str(tiny_model_dir), model, scan, {**SMALL, "layers": [2]}, 2, str(out))
    assert sorted(p.name for p in out.iterdir()) == ["cfg.json", "metrics.json", "sae_weights.safetensors"]
    n_sentences = pq.read_table(sample).num_rows  # every sentence has several tokens
    assert metrics["n_tokens"] > n_sentences and 0 <= metrics["dead_share"] <= 1 and metrics["fvu_holdout"] > 0
    sae = load_sae(out)
    assert (sae.d_in, sae.width, sae.k, sae.activation) == (32, 48, 4, "topk")
    assert json.loads((out / "cfg.json").read_text())["neurotext"]["layer"] == 2
    first = (out / "sae_weights.safetensors").read_bytes()
    train_sae(str(sample), str(tiny_model_dir), model, scan, {**SMALL, "layers": [2]}, 2, str(out))
    assert (out / "sae_weights.safetensors").read_bytes() == first
