"""The shared readers of `neurotext.artifacts` against brute force: corpus rows and texts by id (row groups skipped
by their statistics), row slices, the domain lookup, the layer in a file name and the run's paths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neurotext.artifacts.corpus import (
    CORPUS_SCHEMA,
    read_corpus_rows,
    read_corpus_slice,
    read_domains,
    read_texts,
)
from neurotext.artifacts.paths import PATHS, RunPaths, layer_files, layer_of_path, rule_path
from neurotext.ids import make_sentence_ids

DOMAINS = ["wiki", "book", None, "news"]


def write_corpus(path: Path, code: int, n: int, row_group: int, seed: int) -> list[dict]:
    """A corpus file of `n` rows (ids of dataset `code`, sorted), small row groups; returns its rows."""
    rng = np.random.default_rng(seed)
    ids = make_sentence_ids(code, np.arange(n))
    rows = [{"sentence_id": int(i), "dataset": f"d{code}", "doc_id": str(k), "text": f"text {code}-{k}",
             "domain": DOMAINS[int(rng.integers(len(DOMAINS)))]} for k, i in enumerate(ids)]  # fmt: skip
    columns = {f.name: [r.get(f.name) for r in rows] for f in CORPUS_SCHEMA}
    pq.write_table(pa.table(columns, schema=CORPUS_SCHEMA), path, row_group_size=row_group)
    return rows


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[list[Path], dict[int, dict]]:
    root = tmp_path_factory.mktemp("corpus")
    files, rows = [], {}
    for code, n, group in ((1, 40, 7), (2, 25, 4)):
        path = root / f"d{code}.parquet"
        rows.update({r["sentence_id"]: r for r in write_corpus(path, code, n, group, code)})
        files.append(path)
    return files, rows


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_rows_by_id_equal_brute_force(corpus, data):
    files, rows = corpus
    known = sorted(rows)
    wanted = data.draw(st.lists(st.sampled_from(known), max_size=30))
    table = read_corpus_rows(files, np.array(wanted, np.uint32), ("sentence_id", "text", "domain"))
    assert table["sentence_id"].to_pylist() == sorted(set(wanted))
    assert table["text"].to_pylist() == [rows[i]["text"] for i in sorted(set(wanted))]
    assert table["domain"].to_pylist() == [rows[i]["domain"] for i in sorted(set(wanted))]
    assert read_texts(files, np.array(wanted, np.uint32)) == {i: rows[i]["text"] for i in wanted}


def test_a_missing_id_is_an_error_or_skipped(corpus):
    files, rows = corpus
    present = sorted(rows)[3]
    absent = int(make_sentence_ids(3, np.array([0]))[0])
    with pytest.raises(ValueError, match=f"sentence ids {absent}"):
        read_texts(files, np.array([present, absent], np.uint32))
    assert read_texts(files, np.array([present, absent], np.uint32), missing="skip") == {present: rows[present]["text"]}


def test_an_id_in_two_rows_is_an_error(corpus, tmp_path):
    files, rows = corpus
    copy = tmp_path / "copy.parquet"
    copy.write_bytes(files[0].read_bytes())
    with pytest.raises(ValueError, match="appears in two corpus rows"):
        read_texts([files[0], copy], np.array(sorted(rows)[:2], np.uint32))


@settings(max_examples=30, deadline=None)
@given(start=st.integers(0, 45), length=st.integers(0, 45))
def test_a_slice_is_the_rows_at_those_positions(corpus, start, length):
    files, rows = corpus
    ordered = [r for r in rows.values() if r["dataset"] == "d1"]
    table = read_corpus_slice(files[0], start, start + length)
    assert table["sentence_id"].to_pylist() == [r["sentence_id"] for r in ordered[start : start + length]]
    assert table.column_names == ["sentence_id", "text"]


def test_domain_lookup_equals_brute_force(corpus):
    files, rows = corpus
    lookup = read_domains(files)
    ids = np.array(sorted(rows) + [int(make_sentence_ids(3, np.array([0]))[0])], np.uint32)
    codes = lookup.codes_of(ids)
    assert [lookup.domains[c] if c >= 0 else None for c in codes] == [rows[i]["domain"] or "unknown"
                                                                      for i in sorted(rows)] + [None]  # fmt: skip
    strict = read_domains(files, null_as=None)
    assert "unknown" not in strict.domains
    names = [strict.domains[c] if c >= 0 else None for c in strict.codes_of(ids[:-1])]
    assert names == [rows[i]["domain"] for i in sorted(rows)]
    counts = dict(zip(strict.domains, strict.counts().tolist()))
    assert counts == {d: sum(r["domain"] == d for r in rows.values()) for d in strict.domains}
    assert sum(lookup.shares().values()) == pytest.approx(1.0)


def test_the_layer_of_a_path(tmp_path):
    assert layer_of_path("results/x/relations/layer12/sse.csv") == 12
    assert layer_of_path("results/x/sample/base/max/layer3.npy") == 3
    with pytest.raises(ValueError, match="no layer"):
        layer_of_path("results/x/sample/sentences.parquet")
    for layer in (1, 2, 10):
        path = tmp_path / "topk" / "base" / f"layer{layer}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    (tmp_path / "topk" / "base" / "layerx.parquet").write_bytes(b"")
    assert list(layer_files(tmp_path, "topk/base/layer{layer}.parquet")) == [1, 2, 10]
    assert list(RunPaths(tmp_path).layers("topk", model="base")) == [1, 2, 10]


def test_run_paths_fill_the_templates():
    paths = RunPaths("results/demo")
    assert paths.topk("base", 6) == Path("results/demo/topk/base/layer6.parquet")
    assert paths.sample_activations("base", "cls", 2) == Path("results/demo/sample/base/cls/layer2.npy")
    assert rule_path("patterns") == "results/{run}/patterns/layer{layer}.parquet"
    assert all(not t.startswith(("/", "results")) for t in PATHS.values())
    with pytest.raises(KeyError):
        paths.path("topk", layer=1)  # the model is missing
