"""Top sentences' token activations kept during the scan (`neurotext.toptokens`).

- `TopTokenRecorder` against a brute-force oracle (hypothesis): random batches of unique keys and padded
  activations, any batch order, any top_n: each neuron's top_n by key, values at the text tokens of each sentence.
- The tiny BERT through `scan_shard` (top_n on) and `merge_topk`: every (neuron, top sentence) pair is found by
  `match_top_tokens`, its activation is the top K's exactly, and its token activations and character offsets equal
  a one-sentence-at-a-time Hugging Face forward pass (no padding) within float tolerance.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neurotext.encoder import Tokens
from neurotext.toptokens import TopTokenRecorder, match_top_tokens
from neurotext.validate import with_defaults

MAX_LENGTH = 32
MODEL = with_defaults("model", {"max_length": MAX_LENGTH})
SCAN = with_defaults("scan", {"k": 6, "token_budget": 256, "device": "cpu", "threads": 1})
TOP_N = 4


def fake_tokens(lengths: list[int], rng: np.random.Generator) -> Tokens:
    """Tokens of len(lengths) sentences with the first and last token special (a one-token sentence: special)."""
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    special = np.zeros(int(offsets[-1]), dtype=bool)
    special[offsets[:-1]] = True
    special[offsets[1:] - 1] = True
    total = int(offsets[-1])
    return Tokens(offsets, rng.integers(0, 100, total).astype(np.int32), special, np.zeros(total, np.int32),
                  np.zeros(total, np.int32), np.zeros(len(lengths), bool))  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(
    n_sentences=st.integers(1, 40),
    n_neurons=st.integers(1, 5),
    top_n=st.integers(1, 8),
    batch_size=st.integers(1, 9),
    seed=st.integers(0, 2**31 - 1),
)
def test_recorder_keeps_each_neurons_top_n_with_its_token_values(n_sentences, n_neurons, top_n, batch_size, seed):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 7, n_sentences).tolist()
    tokens = fake_tokens(lengths, rng)
    width = max(lengths)
    acts = rng.normal(size=(n_sentences, width, n_neurons)).astype(np.float32)  # padded on the right
    keys = rng.choice(np.arange(-(10**6), 10**6), size=(n_sentences, n_neurons), replace=False).astype(np.int64)
    recorder = TopTokenRecorder(n_neurons, top_n)
    order = rng.permutation(n_sentences)
    for start in range(0, n_sentences, batch_size):
        rows = np.sort(order[start : start + batch_size])
        batch_width = max(lengths[r] for r in rows)
        recorder.add(rows, torch.from_numpy(keys[rows]), torch.from_numpy(acts[rows, :batch_width]))
    result = recorder.result(tokens)
    n_top = min(top_n, n_sentences)
    assert result.keys.shape == (n_neurons, n_top)
    for h in range(n_neurons):
        expected_rows = np.argsort(-keys[:, h], kind="stable")[:n_top]
        assert result.keys[h].tolist() == keys[expected_rows, h].tolist()
        assert result.rows[h].tolist() == expected_rows.tolist()
        for j, row in enumerate(expected_rows):
            entry = h * n_top + j
            text = ~tokens.special_mask[tokens.offsets[row] : tokens.offsets[row + 1]]
            expected = acts[row, : lengths[row], h][text]
            got = result.values[result.offsets[entry] : result.offsets[entry + 1]]
            np.testing.assert_array_equal(got, expected)


def test_recorder_with_top_n_zero_keeps_nothing():
    recorder = TopTokenRecorder(3, 0)
    recorder.add(np.arange(2), torch.zeros((2, 3), dtype=torch.int64), torch.zeros((2, 4, 3)))
    result = recorder.result(fake_tokens([4, 4], np.random.default_rng(0)))
    assert result.keys.shape == (3, 0) and result.values.size == 0


@pytest.fixture(scope="module")
def scanned(tmp_path_factory, scan_sentences, write_corpus, tiny_model_dir):
    from neurotext.scan import merge_topk, scan_shard
    from neurotext.shards import make_shard

    root = tmp_path_factory.mktemp("toptokens")
    texts = scan_sentences[:120]
    corpus = write_corpus(root / "corpus.parquet", texts, dataset_code=2)
    shards, acts, tops = [], [], []
    for shard in range(2):
        shards.append(str(root / f"shard{shard}.parquet"))
        make_shard(str(corpus), shard, 2, str(tiny_model_dir), MAX_LENGTH, shards[-1], "cafe")
        acts.append(str(root / f"acts{shard}.npz"))
        tops.append(str(root / f"acts{shard}.toptokens.npz"))
        scan_shard(shards[-1], str(tiny_model_dir), dict(MODEL), dict(SCAN), acts[-1], top_tokens=tops[-1],
                   top_n=TOP_N)  # fmt: skip
    topk = []
    for layer in (1, 2):
        topk.append(root / f"topk{layer}.parquet")
        merge_topk(acts, shards, layer, SCAN["k"], str(topk[-1]), "cafe")
    ids = pq.read_table(corpus, columns=["sentence_id"]).column(0).to_numpy()
    return texts, ids, shards, tops, topk


def test_scan_top_tokens_match_a_one_sentence_forward_pass(scanned, tiny_model_dir):
    from transformers import AutoModel, AutoTokenizer

    texts, ids, shards, tops, topk = scanned
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    model = AutoModel.from_pretrained(str(tiny_model_dir)).eval()
    by_id = {int(s): i for i, s in enumerate(ids)}
    for layer, path in zip((1, 2), topk, strict=True):
        table = pq.read_table(path).to_pandas()
        top = table[table["rank"] < TOP_N]
        match = match_top_tokens(layer, top.neuron.to_numpy(), top.sentence_id.to_numpy(), tops, shards)
        np.testing.assert_array_equal(match.activation, top.activation.to_numpy(np.float32))
        for r, (neuron, sentence) in enumerate(zip(top.neuron, top.sentence_id, strict=True)):
            text = texts[by_id[int(sentence)]]
            encoded = tokenizer(text, truncation=True, max_length=MAX_LENGTH, return_special_tokens_mask=True,
                                return_offsets_mapping=True)  # fmt: skip
            real = ~np.asarray(encoded["special_tokens_mask"], dtype=bool)
            with torch.no_grad():
                states = model(input_ids=torch.tensor([encoded["input_ids"]]), output_hidden_states=True)
            expected = states.hidden_states[layer][0, :, int(neuron)].numpy()[real]
            got = match.values[match.offsets[r] : match.offsets[r + 1]]
            np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)
            assert got.max() == pytest.approx(float(match.activation[r]), abs=1e-6)  # max pooling: the top value
            ends = np.asarray(encoded["offset_mapping"])[real][:, 1]
            assert match.char_end[match.offsets[r] : match.offsets[r + 1]].tolist() == ends.tolist()


def test_a_pair_outside_the_recorded_top_is_an_error(scanned):
    _, ids, shards, tops, topk = scanned
    top = pq.read_table(topk[0]).to_pandas().query("neuron == 0 and rank == 0")
    with pytest.raises(ValueError, match="neuron 0, sentence 7 is in no shard's top tokens"):
        match_top_tokens(1, np.array([0, 0]), np.array([int(top.sentence_id.iloc[0]), 7]), tops, shards)


def test_top_tokens_file_is_deterministic(scanned, tiny_model_dir, tmp_path):
    from neurotext.scan import scan_shard

    _, _, shards, tops, _ = scanned
    again = tmp_path / "again.toptokens.npz"
    scan_shard(shards[0], str(tiny_model_dir), dict(MODEL), dict(SCAN), str(tmp_path / "acts.npz"),
               top_tokens=str(again), top_n=TOP_N)  # fmt: skip
    assert Path(tops[0]).read_bytes() == again.read_bytes()
