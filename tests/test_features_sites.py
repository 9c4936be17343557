"""Decoder models and activation sites: tiny random GPT-2, GPT-NeoX and Llama models with locally trained
tokenizers; every site checked against the model's own hidden states or independent hooks (the residual algebra
block output = block input + attention output + MLP output)."""

from __future__ import annotations

import filecmp

import numpy as np
import pytest
import torch

from neurotext.config import ConfigError, model_dims
from neurotext.encoder import Encoder, load_tokenizer, make_batch, tokenize
from neurotext.features.sites import find_sites
from neurotext.tinymodel import make_tiny_decoder

FAMILIES = ("gpt2", "gpt_neox", "llama")


@pytest.fixture(scope="module", params=FAMILIES)
def decoder_dir(request, tmp_path_factory, scan_sentences):
    return make_tiny_decoder(tmp_path_factory.mktemp(request.param) / request.param, request.param, scan_sentences)


@pytest.fixture(scope="module")
def texts(scan_sentences):
    return [t for t in scan_sentences if t.isascii()][:10]


def _blocks(model):
    return model.h if hasattr(model, "h") else model.layers


def _oracle(model, ids: list[int]) -> dict[str, list[np.ndarray]]:
    """Per layer: hidden (HF hidden_states, block output for the last), ffn (the MLP activation recomputed from the
    MLP's input), attn (block output - block input - MLP output), each float [T, width] of one unpadded sentence."""
    captured: dict[tuple[str, int], torch.Tensor] = {}
    handles = []
    for index, block in enumerate(_blocks(model)):
        mlp = block.mlp
        handles.append(block.register_forward_pre_hook(
            lambda _m, args, kwargs, i=index: captured.__setitem__(
                ("in", i), args[0] if args else kwargs["hidden_states"]
            ),
            with_kwargs=True,
        ))  # fmt: skip
        handles.append(block.register_forward_hook(
            lambda _m, _a, out, i=index: captured.__setitem__(("out", i), out[0] if isinstance(out, tuple) else out)
        ))  # fmt: skip
        handles.append(mlp.register_forward_pre_hook(lambda _m, a, i=index: captured.__setitem__(("mlp_in", i), a[0])))
        handles.append(
            mlp.register_forward_hook(lambda _m, _a, out, i=index: captured.__setitem__(("mlp_out", i), out))
        )
    try:
        with torch.no_grad():
            output = model(input_ids=torch.tensor([ids]), output_hidden_states=True)
    finally:
        for handle in handles:
            handle.remove()
    n = len(_blocks(model))
    result: dict[str, list[np.ndarray]] = {"hidden": [], "ffn": [], "attn": []}
    for i, block in enumerate(_blocks(model)):
        out = captured[("out", i)][0]
        if i < n - 1:
            assert torch.allclose(out, output.hidden_states[i + 1][0], atol=1e-5)  # hooks agree with HF
        result["hidden"].append(out.numpy())
        x = captured[("mlp_in", i)]
        mlp = block.mlp
        if hasattr(mlp, "gate_proj"):
            ffn = mlp.act_fn(mlp.gate_proj(x)) * mlp.up_proj(x)
        elif hasattr(mlp, "c_fc"):
            ffn = mlp.act(mlp.c_fc(x))
        else:
            ffn = mlp.act(mlp.dense_h_to_4h(x))
        result["ffn"].append(ffn[0].detach().numpy())
        attn = captured[("out", i)] - captured[("in", i)] - captured[("mlp_out", i)]
        result["attn"].append(attn[0].detach().numpy())
    return result


@pytest.mark.parametrize("site", ["hidden", "ffn", "attn"])
def test_decoder_sites_pool_like_the_models_own_activations(decoder_dir, texts, site):
    encoder = Encoder.load(decoder_dir, site=site, device="cpu")
    assert encoder.is_decoder and encoder.n_layers == 2
    assert encoder.n_neurons == model_dims(decoder_dir, site).n_neurons == (64 if site == "ffn" else 32)
    tokens = tokenize(load_tokenizer(decoder_dir), texts, max_length=40)
    assert tokens.special_mask[tokens.offsets[:-1]].all()  # BOS first in every sentence
    assert not tokens.special_mask[tokens.offsets[:-1] + 1].any()
    rows = np.arange(len(texts))
    for exclude in (True, False):
        batch = make_batch(tokens, rows, exclude_special=exclude, device=torch.device("cpu"))
        pooled = encoder.pool(batch, ["max", "mean", "last"])
        for row in rows:
            ids = tokens.row(row).tolist()
            oracle = _oracle(encoder.model, ids)
            first = 1 if exclude else 0
            for layer in range(2):
                acts = oracle[site][layer]
                np.testing.assert_allclose(pooled["max"][layer].values[row].numpy(), acts[first:].max(0), atol=2e-4)
                np.testing.assert_array_equal(
                    pooled["max"][layer].token_index[row].numpy(), acts[first:].argmax(0) + first
                )
                np.testing.assert_allclose(pooled["mean"][layer].values[row].numpy(), acts[first:].mean(0), atol=2e-4)
                np.testing.assert_allclose(pooled["last"][layer].values[row].numpy(), acts[-1], atol=2e-4)
                assert (pooled["last"][layer].token_index[row].numpy() == len(ids) - 1).all()


def test_cls_pooling_on_a_decoder_is_an_error_naming_the_key(decoder_dir, texts):
    encoder = Encoder.load(decoder_dir, device="cpu")
    tokens = tokenize(load_tokenizer(decoder_dir), texts[:2], max_length=16)
    batch = make_batch(tokens, np.arange(2), True, torch.device("cpu"))
    with pytest.raises(ConfigError, match="model.pooling = 'cls': a decoder"):
        encoder.pool(batch, ["cls"])


def test_decoder_offsets_cover_the_visible_characters_and_truncation_counts_bos(decoder_dir, texts):
    tokenizer = load_tokenizer(decoder_dir)
    tokens = tokenize(tokenizer, texts, max_length=12)
    assert (tokens.lengths <= 12).all()
    for index, text in enumerate(texts):
        full = tokenizer(text)["input_ids"]
        assert bool(tokens.truncated[index]) == (len(full) + (full[0] != tokenizer.bos_token_id) > 12)
        row = slice(tokens.offsets[index], tokens.offsets[index + 1])
        for token_id, start, end, special in zip(
            tokens.input_ids[row], tokens.char_start[row], tokens.char_end[row], tokens.special_mask[row], strict=True
        ):
            if special:
                assert (start, end) == (0, 0)
                continue
            piece = tokenizer.decode([int(token_id)])
            assert text[start:end] == piece.strip(), (text, piece, start, end)


def test_the_tiny_decoders_are_deterministic(tmp_path, scan_sentences):
    for family in FAMILIES:
        a = make_tiny_decoder(tmp_path / f"{family}-a", family, scan_sentences[:50])
        b = make_tiny_decoder(tmp_path / f"{family}-b", family, scan_sentences[:50])
        for name in ("tokenizer.json", "model.safetensors", "config.json"):
            assert filecmp.cmp(a / name, b / name, shallow=False), (family, name)


def test_bert_attn_site_is_the_attention_output_before_the_residual_add(tiny_model_dir, scan_sentences):
    encoder = Encoder.load(tiny_model_dir, site="attn", device="cpu")
    assert encoder.n_neurons == model_dims(tiny_model_dir, "attn").n_neurons == 32
    tokens = tokenize(load_tokenizer(tiny_model_dir), scan_sentences[:4], max_length=32)
    for row in range(4):
        ids = torch.tensor([tokens.row(row).tolist()])
        captured = {}
        layer = encoder.model.encoder.layer[0]
        handles = [
            layer.attention.output.LayerNorm.register_forward_pre_hook(lambda _m, a: captured.setdefault("ln", a[0])),
            layer.register_forward_pre_hook(lambda _m, a: captured.setdefault("x", a[0])),
        ]
        with torch.no_grad():
            encoder.model(input_ids=ids)
        for handle in handles:
            handle.remove()
        oracle = (captured["ln"] - captured["x"])[0, 1:-1].max(0).values
        batch = make_batch(tokens, np.array([row]), True, torch.device("cpu"))
        np.testing.assert_allclose(encoder.pool(batch, ["max"])["max"][0].values[0].numpy(), oracle.numpy(), atol=1e-5)


def test_an_unsupported_architecture_is_an_error_listing_the_supported_families():
    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.mix = torch.nn.Linear(4, 4)

    class Odd(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = torch.nn.ModuleList([Block(), Block()])

    with pytest.raises(ConfigError, match="supported families: bert, distilbert, gpt2, gpt_neox, llama"):
        find_sites(Odd(), "hidden")
    with pytest.raises(ConfigError, match="model.site = 'resid'"):
        find_sites(Odd(), "resid")
