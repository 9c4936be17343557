"""Features instead of neurons: directions and SAE latents (SAELens layout) computed on the fly in the scan."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neurotext.config import ConfigError, model_dims
from neurotext.encoder import Encoder, load_tokenizer, make_batch, tokenize
from neurotext.features import FeatureSettings, load_directions
from neurotext.features.sae import SparseAutoencoder, load_sae, save_sae
from neurotext.ids import parse_neuron_name, unit_name
from neurotext.scan import merge_topk, sample_activations, scan_shard
from neurotext.shards import make_shard
from neurotext.validate import with_defaults


def random_sae(d_in: int, d_sae: int, activation: str, seed: int = 0, **kwargs) -> SparseAutoencoder:
    g = torch.Generator().manual_seed(seed)
    return SparseAutoencoder(
        W_enc=torch.randn(d_in, d_sae, generator=g),
        b_enc=torch.randn(d_sae, generator=g) * 0.1,
        W_dec=torch.randn(d_sae, d_in, generator=g),
        b_dec=torch.randn(d_in, generator=g) * 0.1,
        activation=activation,
        k=kwargs.pop("k", 3 if activation == "topk" else None),
        threshold=torch.rand(d_sae, generator=g) if activation == "jumprelu" else None,
        **kwargs,
    )


def numpy_encode(sae: SparseAutoencoder, x: np.ndarray) -> np.ndarray:
    """Brute-force oracle of the SAELens encoding, float64."""
    w, b, b_dec = (t.double().numpy() for t in (sae.W_enc, sae.b_enc, sae.b_dec))
    pre = (x - b_dec * sae.apply_b_dec_to_input) @ w + b
    if sae.activation == "relu":
        return np.maximum(pre, 0)
    if sae.activation == "jumprelu":
        return np.where(pre > sae.threshold.double().numpy(), np.maximum(pre, 0), 0)
    out = np.zeros_like(pre)
    for row in range(len(pre)):
        top = np.argsort(-pre[row], kind="stable")[: sae.k]
        out[row, top] = np.maximum(pre[row, top], 0)
    return out


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(["relu", "topk", "jumprelu"]), st.integers(1, 6), st.booleans(), st.integers(0, 10_000))
def test_sae_encoding_matches_a_numpy_oracle(activation, rows, apply_b_dec, seed):
    sae = random_sae(5, 9, activation, seed, apply_b_dec_to_input=apply_b_dec)
    x = np.random.default_rng(seed).normal(size=(rows, 5))
    np.testing.assert_allclose(sae(torch.from_numpy(x).float()).numpy(), numpy_encode(sae, x), atol=1e-4)
    if activation == "topk":
        assert ((sae(torch.from_numpy(x).float()) > 0).sum(dim=1) <= 3).all()


def test_sae_files_round_trip_in_the_saelens_layout(tmp_path):
    for activation in ("relu", "topk", "jumprelu"):
        sae = random_sae(6, 10, activation)
        directory = save_sae(sae, tmp_path / activation)
        cfg = json.loads((directory / "cfg.json").read_text())
        assert cfg["d_in"] == 6 and cfg["d_sae"] == 10
        assert cfg["architecture"] == {"relu": "standard", "topk": "topk", "jumprelu": "jumprelu"}[activation]
        loaded = load_sae(directory)
        x = torch.randn(4, 6)
        torch.testing.assert_close(loaded(x), sae(x))
        first = (directory / "sae_weights.safetensors").read_bytes()
        save_sae(sae, directory)
        assert (directory / "sae_weights.safetensors").read_bytes() == first  # same SAE, same bytes
    # An older SAELens cfg: activation_fn_str topk with activation_fn_kwargs.k.
    cfg = json.loads((tmp_path / "topk" / "cfg.json").read_text())
    del cfg["architecture"], cfg["k"]
    cfg["activation_fn_str"] = "topk"
    (tmp_path / "topk" / "cfg.json").write_text(json.dumps(cfg))
    assert load_sae(tmp_path / "topk").k == 3


def test_bad_sae_directories_are_clear_errors(tmp_path):
    save_sae(random_sae(6, 10, "relu"), tmp_path / "ok")
    cfg = json.loads((tmp_path / "ok" / "cfg.json").read_text())
    with pytest.raises(ConfigError, match="model.sae: cannot read the SAE"):
        load_sae(tmp_path / "missing")
    (tmp_path / "ok" / "cfg.json").write_text(json.dumps({**cfg, "d_sae": 11}))
    with pytest.raises(ConfigError, match="W_enc has shape"):
        load_sae(tmp_path / "ok")
    (tmp_path / "ok" / "cfg.json").write_text(json.dumps({**cfg, "normalize_activations": "expected_average_only_in"}))
    with pytest.raises(ConfigError, match="normalize_activations"):
        load_sae(tmp_path / "ok")
    (tmp_path / "ok" / "cfg.json").write_text(json.dumps({**cfg, "architecture": "gated"}))
    with pytest.raises(ConfigError, match="not supported"):
        load_sae(tmp_path / "ok")
    (tmp_path / "ok" / "cfg.json").write_text(json.dumps({**cfg, "architecture": "topk"}))
    with pytest.raises(ConfigError, match="needs a positive integer k"):
        load_sae(tmp_path / "ok")
    with pytest.raises(ConfigError, match="model.features = 'sae' needs model.sae"):
        FeatureSettings.from_config({"features": "sae"})
    with pytest.raises(ConfigError, match="model.features = 'latents'"):
        FeatureSettings.from_config({"features": "latents"})


def test_feature_names_say_which_kind():
    assert unit_name(6, 1234) == "L6.1234"
    assert unit_name(6, 1234, "sae") == "L6.f1234"
    assert parse_neuron_name("L6.f1234") == parse_neuron_name("L6.1234") == (6, 1234)


@pytest.fixture(scope="module")
def corpus_and_shards(tmp_path_factory, scan_sentences, write_corpus, tiny_model_dir):
    """80 sentences in a corpus, two token shards of the tiny BERT; also the corpus path."""
    root = tmp_path_factory.mktemp("features_corpus")
    texts = scan_sentences[:80]
    path = write_corpus(root / "corpus.parquet", texts, dataset_code=2)
    shards = []
    for shard in range(2):
        shards.append(str(root / f"{shard}.parquet"))
        make_shard(str(path), shard, 2, str(tiny_model_dir), 32, shards[-1], "")
    return texts, shards, path


@pytest.fixture(scope="module")
def feature_dirs(tmp_path_factory):
    """Directions (3 per layer, raw vectors) and topk SAEs (12 latents) for the tiny BERT (hidden 32, 2 layers)."""
    root = tmp_path_factory.mktemp("features")
    rng = np.random.default_rng(0)
    for layer in (1, 2):
        np.save(root / f"layer{layer}.npy", rng.normal(size=(3, 32)).astype(np.float32))
        save_sae(random_sae(32, 12, "topk", seed=layer, k=4), root / "sae" / f"layer{layer}")
    return root


def test_features_pool_like_the_projected_token_activations(tiny_model_dir, scan_sentences, feature_dirs):
    tokens = tokenize(load_tokenizer(tiny_model_dir), scan_sentences[:12], max_length=32)
    batch = make_batch(tokens, np.arange(12), True, torch.device("cpu"))
    neurons = Encoder.load(tiny_model_dir, device="cpu")
    captured = {}
    neurons.run(batch.input_ids, batch.attention_mask, lambda layer, acts: captured.__setitem__(layer, acts.clone()))
    for kind, path in (("directions", str(feature_dirs)), ("sae", str(feature_dirs / "sae"))):
        settings = FeatureSettings(kind, path)
        encoder = Encoder.load(tiny_model_dir, device="cpu", features=settings)
        assert encoder.n_neurons == (3 if kind == "directions" else 12)
        dims = model_dims(tiny_model_dir, "hidden", {"features": kind, kind: path})
        assert (dims.n_neurons, dims.features) == (encoder.n_neurons, kind)
        pooled = encoder.pool(batch, ["max", "mean"])
        for layer in (1, 2):
            if kind == "directions":
                feature = captured[layer] @ load_directions(feature_dirs / f"layer{layer}.npy").vectors.T
            else:
                feature = load_sae(feature_dirs / "sae" / f"layer{layer}")(captured[layer])
            masked = feature.masked_fill(~batch.pool_mask[:, :, None], float("-inf"))
            torch.testing.assert_close(pooled["max"][layer - 1].values, masked.max(dim=1).values)
            weights = batch.pool_mask[:, :, None].float()
            torch.testing.assert_close(pooled["mean"][layer - 1].values, (feature * weights).sum(1) / weights.sum(1))


def test_a_scan_of_sae_latents_keeps_the_exact_top_k(corpus_and_shards, tiny_model_dir, feature_dirs, tmp_path):
    texts, shards, corpus = corpus_and_shards
    model = {"site": "hidden", "pooling": "max", "exclude_special": True, "max_length": 32, "features": "sae",
             "sae": str(feature_dirs / "sae"), "layers": [2]}  # fmt: skip
    scan = with_defaults("scan", {"k": 5, "token_budget": 256, "device": "cpu", "threads": 1})
    acts = []
    for index, shard in enumerate(shards):
        acts.append(str(tmp_path / f"{index}.npz"))
        scan_shard(shard, str(tiny_model_dir), model, scan, acts[-1])
    with np.load(acts[0]) as archive:
        assert "layer2_keys" in archive.files and "layer1_keys" not in archive.files  # model.layers
        assert archive["layer2_keys"].shape[0] == 12
    merge_topk(acts, shards, 2, 5, str(tmp_path / "topk.parquet"), "")
    table = pq.read_table(tmp_path / "topk.parquet").to_pandas()
    # Oracle: every sentence's pooled latents, one sentence at a time.
    encoder = Encoder.load(tiny_model_dir, device="cpu", features=FeatureSettings("sae", str(feature_dirs / "sae")))
    tokens = tokenize(load_tokenizer(tiny_model_dir), texts, 32)
    values = np.stack([
        encoder.pool(make_batch(tokens, np.array([i]), True, torch.device("cpu")), ["max"])["max"][1].values[0].numpy()
        for i in range(len(texts))
    ])  # fmt: skip
    for latent in range(12):
        got = table[table.neuron == latent].activation.to_numpy()
        np.testing.assert_allclose(got, np.sort(values[:, latent])[::-1][:5], atol=1e-5)
    sample = tmp_path / "sample.parquet"
    pq.write_table(pq.read_table(corpus, columns=["sentence_id", "text"]).slice(0, 20), sample)
    out = tmp_path / "sample" / "max" / "layer2.npy"
    sample_activations(str(sample), str(tiny_model_dir), model, scan, ["max"], [str(out)])
    np.testing.assert_allclose(np.load(out), values[:20, :], atol=1e-5)  # corpus rows are in sentence_id order
