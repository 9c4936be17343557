"""Neuron records on the tiny BERT: histograms fixed before the scan and merged exactly, quantile samples in their
bands, token-level activations against a one-sentence-at-a-time recomputation with the HF model, bad input."""

from __future__ import annotations

import hashlib
import shutil
import unicodedata
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neurotext.config import ConfigError
from neurotext.ids import splitmix64
from neurotext.records import (
    HISTOGRAM_SCHEMA,
    RECORDS_SCHEMA,
    MergedHistogram,
    RecordSettings,
    band_starts,
    build_records,
    histogram_edges,
    merge_histogram_parts,
    merge_histograms,
    quantile_requests,
    read_histograms,
    write_histogram_edges,
)
from neurotext.sample import draw_sample
from neurotext.scan import HistogramAccumulator, merge_topk, sample_activations, scan_shard
from neurotext.shards import make_shard
from neurotext.validate import with_defaults

MAX_LENGTH = 32
K = 12
N_SHARDS = 3
TOL = 1e-5
MODEL = with_defaults("model", {"max_length": MAX_LENGTH})
SCAN = with_defaults("scan", {"k": K, "token_budget": 512, "device": "cpu", "threads": 1})
RECORDS = {"top_n": 5, "bands": 4, "per_band": 3, "seed": 11, "histogram": {"bins": 16, "margin": 0.1}}
SAMPLE = {"size": 80, "seed": 7}


def digest(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# --------------------------------------------------------------------------------------------------------------
# An independent recomputation: the HF model on one sentence at a time


class Oracle:
    """The HF model and tokenizer, run on one sentence at a time without padding (no neurotext code)."""

    def __init__(self, model_dir: Path) -> None:
        from transformers import AutoModel, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        self.model = AutoModel.from_pretrained(str(model_dir)).eval()
        self.cache: dict[tuple[str, str], tuple] = {}

    def run(self, text: str, site: str):
        """(site activations per layer [T, H] as numpy, offsets [(start, end)], special mask [T])."""
        key = (text, site)
        if key not in self.cache:
            encoded = self.tokenizer(
                text, truncation=True, max_length=MAX_LENGTH, return_offsets_mapping=True,
                return_special_tokens_mask=True,
            )  # fmt: skip
            with torch.no_grad():
                out = self.model(input_ids=torch.tensor([encoded["input_ids"]]), output_hidden_states=True)
                layers = []
                for layer in range(self.model.config.num_hidden_layers):
                    states = out.hidden_states[layer + 1][0]
                    if site == "ffn":
                        block = self.model.encoder.layer[layer]
                        states = block.intermediate(block.attention(out.hidden_states[layer], None)[0])[0]
                    layers.append(states.numpy())
            special = np.array(encoded["special_tokens_mask"], dtype=bool)
            self.cache[key] = (layers, [tuple(o) for o in encoded["offset_mapping"]], special)
        return self.cache[key]

    def pooled(self, text: str, site: str, pooling: str, layer: int) -> np.ndarray:
        states, _, special = self.run(text, site)
        values = states[layer - 1]
        real = ~special if (~special).any() else np.ones_like(special)
        if pooling == "max":
            return values[real].max(axis=0)
        if pooling == "cls":
            return values[0]
        return values[real].mean(axis=0)


# --------------------------------------------------------------------------------------------------------------
# A small pipeline run: corpus -> sample -> sample activations -> edges -> shards scanned -> top K -> records


class Pipeline:
    """Paths of one run of the stage functions on a corpus of `texts` (dataset code 2)."""

    def __init__(self, root: Path, texts: list[str], model_dir: Path, write_corpus, model=MODEL, records=RECORDS,
                 scan=SCAN, sample=SAMPLE, n_shards=N_SHARDS, layers=(1, 2)) -> None:  # fmt: skip
        self.root, self.texts, self.model_dir, self.model, self.records = root, texts, model_dir, model, records
        self.corpus = write_corpus(root / "corpus" / "test.parquet", texts, dataset_code=2)
        self.ids = pq.read_table(self.corpus, columns=["sentence_id"]).column(0).to_numpy()
        self.text_of = {int(i): t for i, t in zip(self.ids, texts, strict=True)}
        self.sample = root / "sample" / "sentences.parquet"
        draw_sample([str(self.corpus)], sample, str(self.sample))
        poolings = sorted({model["pooling"], "cls"})
        every_layer = (1, 2)  # the scan counts histograms of every layer, so the edges cover them all
        self.sample_acts = {(p, L): root / "sample" / p / f"layer{L}.npy" for p in poolings for L in every_layer}
        outputs = [str(p) for p in self.sample_acts.values()]
        sample_activations(str(self.sample), str(model_dir), model, scan, poolings, outputs)
        self.edges = root / "records" / "histogram_edges.npz"
        write_histogram_edges(
            [str(self.sample_acts[(model["pooling"], L)]) for L in every_layer], records["histogram"], str(self.edges)
        )
        self.shards, self.acts, self.top_tokens = [], [], []
        for shard in range(n_shards):
            target = root / "shards" / f"{shard}.parquet"
            make_shard(str(self.corpus), shard, n_shards, str(model_dir), MAX_LENGTH, str(target), "cafe")
            self.shards.append(str(target))
            acts = root / "acts" / f"{shard}.npz"
            self.top_tokens.append(str(root / "acts" / f"{shard}.toptokens.npz"))
            scan_shard(str(target), str(model_dir), dict(model), dict(scan), str(acts), histogram_edges=str(self.edges),
                       top_tokens=self.top_tokens[-1], top_n=records["top_n"])  # fmt: skip
            self.acts.append(str(acts))
        self.topk, self.hist, self.records_out = {}, {}, {}
        for layer in layers:
            self.topk[layer] = root / "topk" / f"layer{layer}.parquet"
            merge_topk(self.acts, self.shards, layer, scan["k"], str(self.topk[layer]), "cafe")
            self.hist[layer] = root / "records" / f"hist_layer{layer}.parquet"
            merge_histograms(self.acts, [layer], [str(self.hist[layer])], "cafe")
            self.records_out[layer] = root / "records" / f"layer{layer}.parquet"
        self.layers = layers
        self.build(self.records_out)

    def build(self, outputs: dict[int, Path], from_scan: bool = True) -> None:
        """Records of every layer in one call, as the workflow makes them: top rows from the scan's top tokens, one
        re-run of the quantile sentences (`from_scan=False`: every wanted sentence re-run)."""
        build_records(
            [str(self.topk[layer]) for layer in self.layers], str(self.sample),
            [str(self.sample_acts[(self.model["pooling"], layer)]) for layer in self.layers], [str(self.corpus)],
            str(self.model_dir), self.model, SCAN, self.records, list(self.layers),
            [str(outputs[layer]) for layer in self.layers], "cafe",
            top_tokens=self.top_tokens if from_scan else (), shards=self.shards if from_scan else (),
        )  # fmt: skip


@pytest.fixture(scope="module")
def oracle(tiny_model_dir) -> Oracle:
    return Oracle(tiny_model_dir)


@pytest.fixture(scope="module")
def run(tmp_path_factory, scan_sentences, tiny_model_dir, write_corpus) -> Pipeline:
    texts = scan_sentences[:240] + scan_sentences[10:14]  # repeated texts: exact ties, broken by sentence id
    return Pipeline(tmp_path_factory.mktemp("records"), texts, tiny_model_dir, write_corpus)


def check_rows_against_oracle(pipe: Pipeline, oracle: Oracle, layer: int, site: str, pooling: str) -> None:
    """Every record row: offsets and token activations equal the HF recomputation; the pooled activation too."""
    table = pq.read_table(pipe.records_out[layer])
    assert table.schema.remove_metadata() == RECORDS_SCHEMA
    for row in table.to_pylist():
        text = pipe.text_of[row["sentence_id"]]
        states, offsets, special = oracle.run(text, site)
        positions = np.flatnonzero(~special)
        assert list(zip(row["token_char_start"], row["token_char_end"], strict=True)) == [offsets[p] for p in positions]
        expected = states[layer - 1][positions, row["neuron"]]
        np.testing.assert_allclose(row["token_activations"], expected, atol=TOL, rtol=0)
        pooled = oracle.pooled(text, site, pooling, layer)[row["neuron"]]
        assert abs(row["activation"] - pooled) <= TOL
        if pooling == "max" and positions.size:
            assert row["activation"] == max(row["token_activations"])


# --------------------------------------------------------------------------------------------------------------
# Records against a direct recomputation


def test_records_from_the_scan_equal_a_full_rerun(run, tmp_path):
    """Top rows read from the scan's top tokens and the old way (every wanted sentence re-run) give the same rows,
    offsets and flags, and activations within float tolerance (batches differ, so the last bits may)."""
    rerun = {layer: tmp_path / f"layer{layer}.parquet" for layer in run.layers}
    run.build(rerun, from_scan=False)
    for layer in run.layers:
        scan_table, rerun_table = pq.read_table(run.records_out[layer]), pq.read_table(rerun[layer])
        for name in scan_table.column_names:
            got, want = scan_table[name].to_pylist(), rerun_table[name].to_pylist()
            if name in ("activation", "token_activations"):
                flat = lambda rows: np.array([v for r in rows for v in (r if isinstance(r, list) else [r])])  # noqa: E731
                np.testing.assert_allclose(flat(got), flat(want), atol=TOL, rtol=0)
            else:
                assert got == want, name



def test_records_agree_with_a_direct_recomputation(run, oracle):
    for layer in (1, 2):
        check_rows_against_oracle(run, oracle, layer, "hidden", "max")


def test_top_rows_are_the_top_k_heads_and_rows_are_ordered(run):
    for layer in (1, 2):
        records = pq.read_table(run.records_out[layer]).to_pandas()
        topk = pq.read_table(run.topk[layer]).to_pandas()
        top = records[records.kind == "top"]
        expected = topk[topk["rank"] < RECORDS["top_n"]]
        assert top[["neuron", "rank", "sentence_id"]].values.tolist() == expected[
            ["neuron", "rank", "sentence_id"]].values.tolist()  # fmt: skip
        np.testing.assert_allclose(top.activation.values, expected.activation.values, atol=TOL, rtol=0)
        assert top.band.isna().all() and top["quantile"].isna().all()
        key = list(zip(records.neuron, records.kind != "top", records.band.fillna(-1), records["rank"], strict=True))
        assert key == sorted(key)
        assert set(records.neuron) == set(range(32))


def test_quantile_samples_lie_in_their_bands_and_are_the_lowest_priorities(run):
    settings = RecordSettings.from_config(RECORDS)
    sample_ids = np.sort(pq.read_table(run.sample, columns=["sentence_id"]).column(0).to_numpy())
    for layer in (1, 2):
        values = np.load(run.sample_acts[("max", layer)])
        n = len(sample_ids)
        starts = band_starts(n, settings.bands)
        records = pq.read_table(run.records_out[layer]).to_pandas()
        quantile = records[records.kind == "quantile"]
        priority = splitmix64(sample_ids.astype(np.uint64) ^ np.uint64(settings.seed))
        row_of = {int(s): i for i, s in enumerate(sample_ids)}
        for neuron in range(values.shape[1]):
            v = values[:, neuron]
            mine = quantile[quantile.neuron == neuron]
            for b in range(settings.bands):
                picked = mine[mine.band == b]
                # Oracle: rank by (activation, sentence id); band members; the per_band smallest priorities.
                order = sorted(range(n), key=lambda i: (v[i], sample_ids[i]))
                members = order[starts[b] : starts[b + 1]]
                chosen = sorted(members, key=lambda i: (priority[i], sample_ids[i]))[: settings.per_band]
                assert picked.sentence_id.tolist() == [int(sample_ids[i]) for i in chosen]
                assert picked["rank"].tolist() == list(range(len(chosen)))
                rows = zip(picked.sentence_id, picked["quantile"], picked.activation, strict=True)
                for sentence, q, activation in rows:
                    a = v[row_of[sentence]]
                    below, at_most = int((v < a).sum()), int((v <= a).sum())
                    assert below < starts[b + 1] and at_most > starts[b]  # its value's ranks meet the band
                    assert starts[b] <= round(q * n - 0.5) < starts[b + 1]
                    assert abs(activation - a) <= TOL  # the recomputed pooled value is the sample's


def test_records_are_deterministic(run, tmp_path):
    again = {layer: tmp_path / f"layer{layer}.parquet" for layer in (1, 2)}
    run.build(again)
    for layer in (1, 2):
        assert digest(again[layer]) == digest(run.records_out[layer])


# --------------------------------------------------------------------------------------------------------------
# Histograms


def numpy_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Reference counts [H, bins + 2] by a per-neuron loop: underflow (and NaN), bins [e_j, e_j+1), overflow."""
    n_neurons, n_edges = edges.shape
    counts = np.zeros((n_neurons, n_edges + 1), dtype=np.int64)
    for h in range(n_neurons):
        for x in values[:, h]:
            if np.isnan(x) or x < edges[h, 0]:
                counts[h, 0] += 1
            elif x >= edges[h, -1]:
                counts[h, -1] += 1
            else:
                counts[h, 1 + int(np.flatnonzero(edges[h] <= x)[-1])] += 1
    return counts


def test_histogram_merged_over_shards_equals_all_activations_at_once(run, oracle, tmp_path):
    """The shards' merged histogram equals (a) one scan of the whole corpus with the same edges, counted in one go,
    and (b) the reference counts of the HF model's activations: exactly, except for values within TOL of an edge
    (batch composition moves float32 results by ~1e-6)."""
    whole = tmp_path / "whole.parquet"
    make_shard(str(run.corpus), 0, 1, str(run.model_dir), MAX_LENGTH, str(whole), "cafe")
    acts = tmp_path / "whole.npz"
    scan_shard(str(whole), str(run.model_dir), MODEL, {**SCAN, "token_budget": 4096}, str(acts), str(run.edges))
    for layer in (1, 2):
        merged = read_histograms(run.hist[layer])
        assert pq.read_schema(run.hist[layer]).remove_metadata() == HISTOGRAM_SCHEMA
        assert merged.n_sentences == len(run.texts)
        at_once_path = tmp_path / f"at_once{layer}.parquet"
        merge_histograms([str(acts)], [layer], [str(at_once_path)], "cafe")
        at_once = read_histograms(at_once_path)
        values = np.stack([oracle.pooled(t, "hidden", "max", layer) for t in run.texts])
        reference = numpy_counts(values, merged.edges)
        near_edge = (np.abs(values.T[:, :, None] - merged.edges[:, None, :]) <= TOL).any(axis=2).sum(axis=1)
        for got in (merged, at_once):
            np.testing.assert_array_equal(got.edges, np.load(run.edges)[f"layer{layer}"])
            assert (got.counts.sum(axis=1) == len(run.texts)).all()
            difference = np.abs(got.counts - reference).sum(axis=1)
            assert (difference <= 2 * near_edge).all()
            np.testing.assert_allclose(got.maximum, values.max(axis=0), atol=TOL, rtol=0)
            np.testing.assert_allclose(got.minimum, values.min(axis=0), atol=TOL, rtol=0)
        assert (np.abs(merged.counts - at_once.counts).sum(axis=1) <= 2 * near_edge).all()


def test_histogram_merge_order_gives_identical_bytes(run, tmp_path):
    outputs = [tmp_path / "hist1.parquet", tmp_path / "hist2.parquet"]
    merge_histograms(run.acts[::-1], [1, 2], [str(p) for p in outputs], "cafe")
    assert [digest(p) for p in outputs] == [digest(run.hist[1]), digest(run.hist[2])]


finite_or_special = st.one_of(
    st.floats(-50, 50, width=32), st.sampled_from([float("nan"), float("inf"), float("-inf"), 0.0, -0.0])
)


@settings(max_examples=40, deadline=None)
@given(
    data=st.data(),
    n_rows=st.integers(0, 40),
    n_neurons=st.integers(1, 4),
    bins=st.integers(1, 6),
    margin=st.sampled_from([0.0, 0.1, 1.0]),
)
def test_histogram_counts_merged_in_any_split_equal_counting_all_at_once(data, n_rows, n_neurons, bins, margin):
    values = np.array(
        data.draw(st.lists(finite_or_special, min_size=n_rows * n_neurons, max_size=n_rows * n_neurons)),
        dtype=np.float32,
    ).reshape(n_rows, n_neurons)
    sample = values[: data.draw(st.integers(0, n_rows))]
    edges = histogram_edges(sample, bins, margin)
    assert edges.shape == (n_neurons, bins + 1) and edges.dtype == np.float32
    assert (np.diff(edges, axis=1) > 0).all()
    exact = data.draw(st.lists(st.integers(0, bins), max_size=5))  # values exactly on an edge
    for column, edge in enumerate(exact[: n_rows * n_neurons]):
        values[column % max(n_rows, 1), column % n_neurons] = edges[column % n_neurons, edge] if n_rows else 0
    cuts = sorted(data.draw(st.lists(st.integers(0, n_rows), max_size=4)))
    parts = []
    backend = data.draw(st.sampled_from(["numpy", "torch"]))  # the CPU and the GPU code paths
    for begin, end in zip([0, *cuts], [*cuts, n_rows], strict=True):
        accumulator = HistogramAccumulator(edges, torch.device("cpu"), backend=backend)
        for batch_start in range(begin, end, 3):
            accumulator.add(torch.from_numpy(values[batch_start : min(batch_start + 3, end)]))
        result = accumulator.result()
        parts.append(MergedHistogram(result.edges, result.counts, result.minimum, result.maximum, end - begin))
    order = data.draw(st.permutations(range(len(parts))))
    merged = merge_histogram_parts([parts[i] for i in order])
    np.testing.assert_array_equal(merged.counts, numpy_counts(values, edges))
    assert merged.n_sentences == n_rows
    with np.errstate(all="ignore"):
        clean = np.where(np.isnan(values), np.nan, values)
        if n_rows and not np.isnan(clean).all(axis=0).any():
            np.testing.assert_array_equal(merged.minimum, np.nanmin(clean, axis=0))
            np.testing.assert_array_equal(merged.maximum, np.nanmax(clean, axis=0))


def test_histogram_edges_cover_the_sample_and_handle_constant_neurons():
    rng = np.random.default_rng(0)
    values = np.column_stack([rng.normal(size=100), np.full(100, 3.25), np.zeros(100), rng.normal(size=100) * 1e-9 + 7])
    edges = histogram_edges(values.astype(np.float32), 8, 0.1)
    assert (np.diff(edges, axis=1) > 0).all()
    span = values[:, 0].max() - values[:, 0].min()
    assert edges[0, 0] == pytest.approx(values[:, 0].min() - 0.1 * span, rel=1e-5)
    assert edges[0, -1] == pytest.approx(values[:, 0].max() + 0.1 * span, rel=1e-5)
    assert edges[1, 0] == pytest.approx(3.25 - 1.625) and edges[1, -1] == pytest.approx(3.25 + 1.625)
    assert edges[2, 0] == -0.5 and edges[2, -1] == 0.5
    assert (edges[:, 0] <= values.min(axis=0)).all() and (edges[:, -1] > values.max(axis=0)).all()
    # Neuron 3's range is below float32 resolution at 7: its edges are a run of adjacent floats, not uniform.
    probe = np.concatenate([values, rng.normal(size=(50, 4)) * 5, edges.T[:, :]]).astype(np.float32)
    for backend in ("numpy", "torch"):
        accumulator = HistogramAccumulator(edges, torch.device("cpu"), backend=backend)
        accumulator.add(torch.from_numpy(probe))
        np.testing.assert_array_equal(accumulator.result().counts, numpy_counts(probe, edges))


def test_acts_without_histograms_or_with_other_edges_are_refused(run, tmp_path):
    plain = tmp_path / "plain.npz"
    scan_shard(run.shards[0], str(run.model_dir), MODEL, SCAN, str(plain))
    with pytest.raises(ValueError, match=r"plain\.npz.*no histogram of layer 1.*rerun its scan_shard"):
        merge_histograms([str(plain)], [1], [str(tmp_path / "h.parquet")], "")
    other = tmp_path / "edges.npz"
    from neurotext.io import save_npz

    save_npz(other, {name: np.load(run.edges)[name] * 2 for name in ("layer1", "layer2")})
    moved = tmp_path / "moved.npz"
    scan_shard(run.shards[1], str(run.model_dir), MODEL, SCAN, str(moved), histogram_edges=str(other))
    with pytest.raises(ValueError, match=r"other histogram edges"):
        merge_histograms([run.acts[0], str(moved)], [1], [str(tmp_path / "h.parquet")], "")
    bad = tmp_path / "bad_edges.npz"
    save_npz(bad, {"layer1": np.zeros((32, 3), np.float32), "layer2": np.load(run.edges)["layer2"]})
    with pytest.raises(ValueError, match=r"bad_edges\.npz: layer 1 edges"):
        scan_shard(run.shards[0], str(run.model_dir), MODEL, SCAN, str(tmp_path / "x.npz"), histogram_edges=str(bad))
    assert not (tmp_path / "x.npz").exists()


# --------------------------------------------------------------------------------------------------------------
# Sites and poolings end to end


@pytest.mark.parametrize(
    ("site", "pooling"), [("ffn", "max"), ("ffn", "cls"), ("ffn", "mean"), ("hidden", "cls"), ("hidden", "mean")]
)
def test_sites_and_poolings_end_to_end(tmp_path, scan_sentences, tiny_model_dir, write_corpus, oracle, site, pooling):
    model = {**MODEL, "site": site, "pooling": pooling}
    records = {**RECORDS, "top_n": 2, "per_band": 1}
    pipe = Pipeline(tmp_path, scan_sentences[100:160], tiny_model_dir, write_corpus, model=model, records=records,
                    sample={"size": 30, "seed": 3}, n_shards=2, layers=(2,))  # fmt: skip
    assert {p for p, _ in pipe.sample_acts} == {pooling, "cls"}
    check_rows_against_oracle(pipe, oracle, 2, site, pooling)
    table = pq.read_table(pipe.records_out[2])
    n_neurons = 64 if site == "ffn" else 32
    assert set(table.column("neuron").to_pylist()) == set(range(n_neurons))
    merged = read_histograms(pipe.hist[2])
    assert merged.counts.shape == (n_neurons, 18) and (merged.counts.sum(axis=1) == 60).all()
    values = np.stack([oracle.pooled(t, site, pooling, 2) for t in pipe.texts])
    np.testing.assert_allclose(merged.maximum, values.max(axis=0), atol=TOL, rtol=0)


# --------------------------------------------------------------------------------------------------------------
# Bad input

ODD_TEXTS = [
    "Café déjà vu, naïve coöperation and a façade.",
    "I love it 👍🏽 so much!! 🎉🎉",
    "",  # nothing but [CLS] [SEP]
    "\u200b\u200b",  # zero-width spaces: normalized away, nothing but [CLS] [SEP]
    "Ünïcödé ÀÉÎÕÜ ligature ﬁne and ½ fullwidth ＡＢＣ.",
    "Tabs\tand\nnewlines   and  spaces.",
    "日本語 text mixed with English words.",
    "A plain sentence about the movie.",
    "Another plain sentence about the book.",
    "Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǧ̗͚̚o̙̔ͮ̇͐̇ combining marks.",
]


def strip_accents_lower(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn").lower()


@pytest.fixture(scope="module")
def constant_model_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny BERT with neuron 3 of layer 1's output constant (its LayerNorm weight zeroed: output = bias)."""
    from transformers import AutoModel

    out = tmp_path_factory.mktemp("constant") / "model"
    shutil.copytree(tiny_model_dir, out)
    model = AutoModel.from_pretrained(str(tiny_model_dir))
    with torch.no_grad():
        model.encoder.layer[0].output.LayerNorm.weight[3] = 0.0
        model.encoder.layer[0].output.LayerNorm.bias[3] = 0.75
    model.save_pretrained(str(out))
    return out


def test_constant_neuron_special_only_sentences_and_normalized_characters(tmp_path, constant_model_dir, write_corpus):
    records = {**RECORDS, "top_n": 20, "bands": 3, "per_band": 2}
    pipe = Pipeline(tmp_path, ODD_TEXTS, constant_model_dir, write_corpus, records=records,
                    scan={**SCAN, "k": 20}, sample={"size": 20, "seed": 1}, n_shards=2)  # fmt: skip
    oracle = Oracle(constant_model_dir)
    check_rows_against_oracle(pipe, oracle, 1, "hidden", "max")
    table = pq.read_table(pipe.records_out[1]).to_pandas()
    assert (table[table.kind == "top"].groupby("neuron").size() == len(ODD_TEXTS)).all()  # every sentence is top
    for row in table.itertuples():
        text = pipe.text_of[row.sentence_id]
        assert np.isfinite(row.activation)
        starts, ends = np.asarray(row.token_char_start), np.asarray(row.token_char_end)
        assert ((0 <= starts) & (starts < ends) & (ends <= len(text))).all()
        assert (np.diff(starts) >= 0).all()
        if text.strip("\u200b") == "":
            assert len(starts) == 0  # only special tokens: no text tokens, a valid pooled activation
        for start, end in zip(starts, ends, strict=True):
            piece = strip_accents_lower(text[start:end])
            assert piece.strip() == piece and piece  # a token's span is real text, never whitespace
    # Offsets point into the original text: each token's span, normalized, is the token (or an [UNK] span).
    tokenizer = oracle.tokenizer
    row = table[(table.neuron == 0) & (table.sentence_id == pipe.ids[0]) & (table.kind == "top")].iloc[0]
    spans = zip(row.token_char_start, row.token_char_end, strict=True)
    pieces = [strip_accents_lower(ODD_TEXTS[0][s:e]) for s, e in spans]
    encoded = tokenizer(ODD_TEXTS[0], truncation=True, max_length=MAX_LENGTH)
    tokens = [t.removeprefix("##") for t in encoded.tokens() if t not in ("[CLS]", "[SEP]")]
    assert pieces == tokens and row.truncated == (len(tokenizer.tokenize(ODD_TEXTS[0])) > MAX_LENGTH - 2)
    for index in (1, 6):  # emoji (a skin-tone modifier, astral characters) and CJK become [UNK] spans
        text = ODD_TEXTS[index]
        row = table[(table.neuron == 0) & (table.sentence_id == pipe.ids[index]) & (table.kind == "top")].iloc[0]
        spans = [text[s:e] for s, e in zip(row.token_char_start, row.token_char_end, strict=True)]
        assert "".join(spans) == "".join(text.split()) and not row.truncated  # every character, in order, once
    # The constant neuron: activation 0.75 everywhere; histogram all in one bin; bands of ties still valid.
    constant = table[table.neuron == 3]
    assert np.allclose(constant.activation, 0.75) and len(constant[constant.kind == "quantile"]) == 6
    merged = read_histograms(pipe.hist[1])
    assert merged.counts[3].max() == len(ODD_TEXTS) and merged.minimum[3] == merged.maximum[3]
    assert merged.edges[3, 0] < 0.75 < merged.edges[3, -1]


# --------------------------------------------------------------------------------------------------------------
# Settings and errors


def test_settings_defaults_and_errors_name_the_key():
    from neurotext.validate import with_defaults

    default = RecordSettings.from_config(with_defaults("records"))
    assert (default.top_n, default.bands, default.per_band, default.histogram.bins) == (20, 5, 5, 64)
    assert RecordSettings.from_config(RECORDS).histogram.margin == 0.1
    for block, key in (
        ({"top_n": -1}, "records.top_n"),
        ({"bands": 0}, "records.bands"),
        ({"per_band": "5"}, "records.per_band"),
        ({"histogram": {"bins": 0}}, "records.histogram.bins"),
        ({"histogram": {"margin": -1}}, "records.histogram.margin"),
        ({"histogram": {"bin": 3}}, "records.histogram.bin"),
        ({"topn": 3}, "records.topn"),
    ):
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            RecordSettings.from_config(with_defaults("records", block))
    with pytest.raises(ConfigError, match=r"records\.histogram\.margin.*with_defaults"):  # unvalidated: no fallback
        RecordSettings.from_config({**RECORDS, "histogram": {"bins": 8}})


def test_quantile_requests_with_fewer_sentences_than_bands():
    values = np.array([[3.0], [1.0], [2.0]], dtype=np.float32)
    ids = np.array([5, 9, 12], dtype=np.uint32)
    picks = quantile_requests(values, ids, bands=5, per_band=2, seed=0)
    assert sorted(picks.sentence_id.tolist()) == [5, 9, 12]
    assert dict(zip(picks.sentence_id.tolist(), picks.band.tolist(), strict=True)) == {9: 1, 12: 3, 5: 4}


def test_missing_sentence_texts_are_an_error_naming_the_files(run, tmp_path, write_corpus):
    other = write_corpus(tmp_path / "other.parquet", ["Just one sentence here."], dataset_code=2)
    with pytest.raises(ValueError, match=r"no row in the corpus files.*other\.parquet"):
        build_records(
            [str(run.topk[1])], str(run.sample), [str(run.sample_acts[("max", 1)])], [str(other)],
            str(run.model_dir), MODEL, SCAN, RECORDS, [1], [str(tmp_path / "r.parquet")], "",
        )  # fmt: skip
    assert not (tmp_path / "r.parquet").exists()


def test_artifact_readers_read_what_the_stage_wrote(run, tmp_path):
    """`neurotext.artifacts.records` reads the records and histograms back exactly (the browser's only way in), and
    a file that is not one names itself and the rule to rerun."""
    import pyarrow as pa

    from neurotext.artifacts.records import read_histograms as read_hist_artifact
    from neurotext.artifacts.records import read_records as read_records_artifact

    for layer in (1, 2):
        table = pq.read_table(run.records_out[layer])
        records = read_records_artifact(run.records_out[layer])
        assert records.kind == table["kind"].to_pylist()
        assert records.sentence_id.tolist() == table["sentence_id"].to_pylist()
        starts = table["token_char_start"].to_pylist()
        values = table["token_activations"].to_pylist()
        for i in (0, len(records) // 2, len(records) - 1):
            a, b = records.offsets[i], records.offsets[i + 1]
            assert records.char_start[a:b].tolist() == starts[i]
            np.testing.assert_array_equal(records.values[a:b], np.asarray(values[i], np.float32))
        assert (records.band[records.quantile != records.quantile] == -1).all()  # top rows: no band, NaN quantile
        hist = read_hist_artifact(run.hist[layer])
        rows = pq.read_table(run.hist[layer]).to_pylist()
        assert hist.counts.tolist() == [row["counts"] for row in rows] and hist.n.tolist() == [len(run.texts)] * 32
        assert (hist.counts.sum(axis=1) + hist.underflow + hist.overflow == len(run.texts)).all()
    bad = tmp_path / "layer1.parquet"
    pq.write_table(pa.table({"neuron": pa.array([0], pa.int32())}), bad)
    with pytest.raises(ValueError, match=r"layer1\.parquet: not a records file: no column kind.*rerun records_layers"):
        read_records_artifact(bad)
    with pytest.raises(ValueError, match=r"layer1\.parquet: not a records histogram file.*rerun records_histograms"):
        read_hist_artifact(bad)
