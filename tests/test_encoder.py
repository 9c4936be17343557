"""The shared encoder: tokenization, batch plans, neuron sites captured by hooks, pooling, device and dtype choice."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neurotext.config import ConfigError
from neurotext.encoder import (
    Encoder,
    ModelSettings,
    ScanSettings,
    check_is_encoder,
    check_model_kind,
    load_tokenizer,
    make_batch,
    plan_batches,
    select_autocast_dtype,
    select_device,
    tokenize,
)
from neurotext.validate import with_defaults


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    return load_tokenizer(tiny_model_dir)


@pytest.fixture(scope="module")
def hf_model(tiny_model_dir):
    from transformers import AutoModel

    return AutoModel.from_pretrained(str(tiny_model_dir)).eval()


def test_tokenize_matches_the_hf_tokenizer_and_flags_truncation(tokenizer, scan_sentences):
    texts = scan_sentences[:40]
    tokens = tokenize(tokenizer, texts, max_length=24, chunk_size=7)
    assert len(tokens) == 40
    for index, text in enumerate(texts):
        expected = tokenizer(text, truncation=True, max_length=24, return_offsets_mapping=True)
        full_length = len(tokenizer(text)["input_ids"])
        row = slice(tokens.offsets[index], tokens.offsets[index + 1])
        assert tokens.input_ids[row].tolist() == expected["input_ids"]
        assert list(zip(tokens.char_start[row].tolist(), tokens.char_end[row].tolist())) == [
            tuple(o) for o in expected["offset_mapping"]
        ]
        specials = tokens.special_mask[row]
        assert specials[0] and specials[-1] and not specials[1:-1].any()
        assert bool(tokens.truncated[index]) == (full_length > 24)
    assert tokens.truncated.any() and not tokens.truncated.all()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(2, 40), min_size=0, max_size=80),
    st.integers(1, 300),
)
def test_batch_plan_covers_every_sentence_once_in_length_then_id_order(lengths, budget):
    lengths = np.asarray(lengths, dtype=np.int64)
    ids = np.random.default_rng(len(lengths)).permutation(len(lengths)).astype(np.uint32) * 3
    batches = plan_batches(lengths, ids, budget)
    flat = np.concatenate(batches) if batches else np.empty(0, dtype=np.int64)
    assert sorted(flat.tolist()) == list(range(len(lengths)))
    assert [(lengths[i], ids[i]) for i in flat] == sorted(zip(lengths.tolist(), ids.tolist()))
    for batch in batches:
        padded = len(batch) * lengths[batch].max()
        assert padded <= budget or len(batch) == 1
    # Greedy: the next sentence would not have fit.
    for batch, following in zip(batches, batches[1:]):
        assert (len(batch) + 1) * lengths[following[0]] > budget
    assert [b.tolist() for b in plan_batches(lengths, ids, budget)] == [b.tolist() for b in batches]


def test_hooked_sites_equal_hf_hidden_states_and_intermediate(tiny_model_dir, tokenizer, hf_model, scan_sentences):
    texts = scan_sentences[:12]
    tokens = tokenize(tokenizer, texts, max_length=64)
    rows = np.arange(len(texts))
    batch = make_batch(tokens, rows, exclude_special=True, device=torch.device("cpu"))
    hidden = Encoder.load(tiny_model_dir, site="hidden", device="cpu")
    ffn = Encoder.load(tiny_model_dir, site="ffn", device="cpu")
    assert (hidden.n_layers, hidden.n_neurons, ffn.n_neurons) == (2, 32, 64)
    pooled_hidden = hidden.pool(batch, ["max", "cls", "mean"])
    pooled_ffn = ffn.pool(batch, ["max"])
    with torch.no_grad():
        for index, text in enumerate(texts):
            ids = torch.from_numpy(tokens.row(index).astype(np.int64))[None, :]
            outputs = hf_model(input_ids=ids, output_hidden_states=True)
            pool = ~torch.from_numpy(tokens.special_mask[tokens.offsets[index] : tokens.offsets[index + 1]])
            for layer in range(2):
                states = outputs.hidden_states[layer + 1][0]  # [T, 32]
                block = hf_model.encoder.layer[layer]
                attention = block.attention(outputs.hidden_states[layer], None)[0]
                intermediate = block.intermediate(attention)[0]  # [T, 64]
                for got, expected in (
                    (pooled_hidden["max"][layer], states),
                    (pooled_ffn["max"][layer], intermediate),
                ):
                    best, where = expected[pool].max(dim=0)
                    torch.testing.assert_close(got.values[index], best, atol=1e-5, rtol=1e-5)
                    real_positions = torch.nonzero(pool).ravel()
                    torch.testing.assert_close(
                        expected[got.token_index[index], torch.arange(expected.shape[1])], best, atol=1e-5, rtol=1e-5
                    )
                    assert (got.token_index[index] == real_positions[where]).float().mean() > 0.95
                torch.testing.assert_close(pooled_hidden["cls"][layer].values[index], states[0], atol=1e-5, rtol=1e-5)
                torch.testing.assert_close(
                    pooled_hidden["mean"][layer].values[index], states[pool].mean(dim=0), atol=1e-5, rtol=1e-5
                )


def test_pooling_with_special_tokens_included_and_special_only_sentences(tiny_model_dir, tokenizer):
    tokens = tokenize(tokenizer, ["", "a fine day"], max_length=16)
    encoder = Encoder.load(tiny_model_dir, device="cpu")
    rows = np.arange(2)
    with_special = encoder.pool(make_batch(tokens, rows, False, torch.device("cpu")), ["max", "mean"])
    without = encoder.pool(make_batch(tokens, rows, True, torch.device("cpu")), ["max", "mean"])
    # An empty sentence is [CLS] [SEP]: with nothing else to pool it pools its special tokens either way.
    torch.testing.assert_close(without["max"][1].values[0], with_special["max"][1].values[0])
    assert set(without["max"][1].token_index[0].tolist()) <= {0, 1}
    # Including specials can only raise the max; the argmax then may land on [CLS] or [SEP].
    assert (with_special["max"][0].values[1] >= without["max"][0].values[1]).all()
    assert not torch.allclose(with_special["mean"][0].values[1], without["mean"][0].values[1])
    assert set(without["max"][0].token_index[1].tolist()) <= {1, 2, 3}


def test_bfloat16_autocast_on_cpu_is_close_to_float32(tiny_model_dir, tokenizer, scan_sentences):
    tokens = tokenize(tokenizer, scan_sentences[:8], max_length=32)
    batch = make_batch(tokens, np.arange(8), True, torch.device("cpu"))
    full = Encoder.load(tiny_model_dir, device="cpu", dtype="float32").pool(batch, ["max"])["max"]
    half = Encoder.load(tiny_model_dir, device="cpu", dtype="bfloat16").pool(batch, ["max"])["max"]
    assert half[0].values.dtype == torch.float32
    torch.testing.assert_close(half[1].values, full[1].values, atol=0.1, rtol=0.05)


def test_device_and_dtype_selection():
    assert select_device("cpu").type == "cpu"
    assert select_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="scan.device = 'cuda'"):
            select_device("cuda")
    assert select_autocast_dtype("float32", torch.device("cpu")) is None
    assert select_autocast_dtype("float16", torch.device("cpu")) is None  # falls back to float32
    assert select_autocast_dtype("bfloat16", torch.device("cpu")) is torch.bfloat16
    with pytest.raises(ConfigError, match="scan.dtype"):
        select_autocast_dtype("float8", torch.device("cpu"))


def test_settings_errors_name_the_config_key():
    model = with_defaults("model", {"max_length": 64})
    scan = with_defaults("scan", {"k": 10, "token_budget": 512})
    assert ModelSettings.from_config({**model, "site": "ffn", "pooling": "mean"}).site == "ffn"
    for block, key in (
        ({"site": "attention"}, "model.site"),
        ({"pooling": "median"}, "model.pooling"),
        ({"max_length": 2}, "model.max_length"),
        ({"exclude_special": "yes"}, "model.exclude_special"),
    ):
        with pytest.raises(ConfigError, match=key):
            ModelSettings.from_config({**model, **block})
    for block, key in (
        ({"k": 0}, "scan.k"),
        ({"token_budget": "big"}, "scan.token_budget"),
        ({"device": "tpu"}, "scan.device"),
        ({"dtype": "int8"}, "scan.dtype"),
        ({"threads": 0}, "scan.threads"),
    ):
        with pytest.raises(ConfigError, match=key):
            ScanSettings.from_config({**scan, **block})
    for settings, block, key in ((ModelSettings, model, "model.pooling"), (ScanSettings, scan, "scan.dtype")):
        partial = {name: value for name, value in block.items() if name != key.split(".")[1]}
        with pytest.raises(ConfigError, match=f"`{key}` is missing"):  # no fallback: the schema holds the default
            settings.from_config(partial)


def test_an_encoder_decoder_model_dir_is_refused_and_a_decoder_is_not_an_encoder(tmp_path):
    from transformers import GPT2Config, GPT2Model, T5Config, T5Model

    T5Model(T5Config(d_model=16, d_ff=32, num_layers=1, num_heads=2, vocab_size=64)).save_pretrained(tmp_path / "t5")
    with pytest.raises(ConfigError, match=r"model.path .*'t5' is neither a transformer encoder nor a decoder"):
        check_model_kind(tmp_path / "t5")
    with pytest.raises(ConfigError, match="model.path"):
        Encoder.load(tmp_path / "t5", device="cpu")
    GPT2Model(GPT2Config(n_embd=32, n_layer=1, n_head=2, vocab_size=64, n_positions=64)).save_pretrained(tmp_path)
    assert check_model_kind(tmp_path) == "decoder"
    with pytest.raises(ConfigError, match=r"model.path .*a decoder language model, not a transformer encoder"):
        check_is_encoder(tmp_path)
    with pytest.raises(ConfigError, match="model.path"):
        Encoder.load(tmp_path / "missing", device="cpu")



@st.composite
def texts_and_spans(draw):
    """Texts with assorted whitespace and, per text, spans (start <= end) inside it."""
    texts = draw(st.lists(st.text(alphabet=" \tab\u00a0\u3000\u00e9\n", max_size=12), min_size=1, max_size=6))
    spans = []
    for text in texts:
        pairs = draw(st.lists(st.tuples(st.integers(0, len(text)), st.integers(0, len(text))), max_size=3))
        spans.append([tuple(sorted(pair)) for pair in pairs])
    return texts, spans


@settings(max_examples=80, deadline=None)
@given(texts_and_spans())
def test_trimming_offsets_skips_leading_whitespace_like_a_python_oracle(case):
    from neurotext.encoder import trim_leading_whitespace

    texts, spans = case
    lengths = np.array([len(s) for s in spans], dtype=np.int64)
    flat = [(owner, span) for owner, per_text in enumerate(spans) for span in per_text]
    start = np.array([span[0] for _, span in flat], dtype=np.int32)
    end = np.array([span[1] for _, span in flat], dtype=np.int32)
    got = trim_leading_whitespace(texts, lengths, start, end)
    for (owner, (s, e)), trimmed in zip(flat, got.tolist(), strict=True):
        expected = s
        while expected < e and texts[owner][expected].isspace():
            expected += 1
        assert trimmed == expected
