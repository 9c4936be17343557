"""Scores stage: planted neurons, random neurons, the split, the controls and byte-identical reruns.

The synthetic layer (`neurotext.scores.synthetic`): random words, tags and flat trees; a word, a POS n-gram, a subtree
and a metadata value each planted in 3% of the sentences, one neuron responding to each, and 50 noise neurons.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from neurotext.artifacts.scores import CONTROLS, KINDS, read_scores, scores_matrix
from neurotext.scores.controls import derangement, length_matched
from neurotext.scores.split import explain_mask, n_explain, negative_ids
from neurotext.scores.stage import score_layer
from neurotext.scores.settings import ScoreSettings
from neurotext.scores.synthetic import PLANTED, PLANTED_KIND, SyntheticLayer, build_layer
from neurotext.validate import with_defaults

SPEC = SyntheticLayer()
N_NEG, K, N_RANDOM = SPEC.n_negatives, SPEC.k, SPEC.n_random
SCORES_CONFIG = {"negatives": N_NEG, "patterns": "top", "top_n": 20}


@pytest.fixture(scope="module")
def layer(tmp_path_factory):
    return build_layer(tmp_path_factory.mktemp("scores"), SPEC)


def _run(root, out: str, scores: dict | None = None, predictions: str | None = None, summary: str | None = None):
    return score_layer(
        root / "topk.parquet", root / "sentences.parquet", root / "negatives.parquet", root / "negatives.npy",
        root / "corpus_metadata.parquet", with_defaults("patterns"),
        with_defaults("scores", {**SCORES_CONFIG, **(scores or {})}), root / out,
        root / predictions if predictions else None, summary_out=root / summary if summary else None,
    )  # fmt: skip


@pytest.fixture(scope="module")
def scored(layer):
    _run(layer, "scores.parquet", predictions="predictions.parquet", summary="summary.parquet")
    return read_scores(layer / "scores.parquet")


def test_planted_neurons_are_detected_by_their_kind(scored):
    neurons, kinds, auc = scores_matrix(scored, "auroc")
    col = {k: kinds.index(k) for k in kinds}
    expected = PLANTED_KIND
    unrelated = {"word": ["posgrams", "subtrees", "metadata"], "posgram": ["words", "skipgrams", "metadata"],
                 "subtree": ["words", "skipgrams", "posgrams", "metadata"],
                 "metadata": ["words", "skipgrams", "posgrams", "subtrees"]}  # fmt: skip
    for f, name in enumerate(PLANTED):
        row = auc[list(neurons).index(f)]
        assert row[col[expected[name]]] > 0.95, (name, dict(zip(kinds, row, strict=True)))
        assert row[col["all"]] > 0.95, name
        for kind in unrelated[name]:
            assert abs(row[col[kind]] - 0.5) < 0.25, (name, kind, row[col[kind]])
        # 20 positives: one neuron's chance AUROC has SD ~0.065, so +-0.25 is ~4 SD
        assert abs(row[col["derangement"]] - 0.5) < 0.25, (name, row[col["derangement"]])
        assert abs(row[col["length"]] - 0.5) < 0.25, (name, row[col["length"]])


def test_summary_names_the_planted_pattern(layer, scored):
    from neurotext.artifacts.scores import read_summary

    rows = read_summary(layer / "summary.parquet").to_pylist()
    assert [r["neuron"] for r in rows] == list(range(SPEC.n_neurons))
    expected = {"word": "zebra", "posgram": "FW SYM", "subtree": "(NN (VB (JJ)))", "metadata": "domain=special"}
    for f, name in enumerate(PLANTED):
        assert rows[f]["explained"] and rows[f]["best_kind"] in (PLANTED_KIND[name], "posgrams", "subtrees")
        assert expected[name] in rows[f]["summary"], rows[f]
    noise = rows[len(PLANTED) :]
    assert any(r["summary"].startswith("nothing beats the controls") for r in noise)
    assert all(r["explained"] == (r["best_auroc"] > r["control_auroc"]) for r in rows)


def test_random_neurons_stay_near_chance(scored):
    """50 noise neurons: each kind's and control's mean AUROC within 0.5 +- 0.05 (a neuron's AUROC has SD ~0.065
    with 20 positives, so the mean of 50 has SD ~0.01: the band is ~5 SD)."""
    neurons, kinds, auc = scores_matrix(scored, "auroc")
    rand = auc[np.isin(neurons, np.arange(len(PLANTED), len(PLANTED) + N_RANDOM))]
    assert rand.shape[0] == N_RANDOM
    for k, kind in enumerate(kinds):
        mean = np.nanmean(rand[:, k])
        assert abs(mean - 0.5) < 0.05, (kind, mean)


def test_scores_schema_and_sizes(scored):
    assert set(scored["kind"].to_pylist()) == {*KINDS, *CONTROLS}
    n_pos = scored["n_pos"].to_numpy()
    assert np.all(n_pos == K - n_explain(K, 0.8))
    assert np.all(scored["n_neg"].to_numpy() <= N_NEG)


def test_predictions_recompute_the_metrics(layer, scored):
    from neurotext.scores.metrics import auroc

    pred = pq.read_table(layer / "predictions.parquet")
    neuron = pred.filter(pa.compute.equal(pred["neuron"], 0))
    got = auroc(neuron["words"].to_numpy(), neuron["positive"].to_numpy())[0]
    rows = scored.to_pylist()
    want = next(r["value"] for r in rows if (r["neuron"], r["kind"], r["metric"]) == (0, "words", "auroc"))
    assert got == pytest.approx(want)


def test_same_bytes_across_reruns(layer, scored):
    _run(layer, "again.parquet")
    digest = [hashlib.sha256((layer / name).read_bytes()).hexdigest() for name in ("scores.parquet", "again.parquet")]
    assert digest[0] == digest[1]


def test_length_matched_negatives_run(layer):
    table = _run(layer, "matched.parquet", {"length_matched": True})
    assert table.num_rows > 0
    assert np.all(table["n_neg"].to_numpy() < N_NEG)


def test_split_never_shares_a_sentence():
    rng = np.random.default_rng(0)
    for _ in range(20):
        ids = np.unique(rng.integers(0, 2**32, int(rng.integers(1, 300)), dtype=np.uint64)).astype(np.uint32)
        mask = explain_mask(ids, int(rng.integers(0, 1000)), 0.8)
        assert mask.sum() == n_explain(ids.size, 0.8)
        assert np.intersect1d(ids[mask], ids[~mask]).size == 0
        # order does not matter: the same ids shuffled give the same parts
        perm = rng.permutation(ids.size)
        assert set(ids[perm][explain_mask(ids[perm], 7, 0.8)]) == set(ids[explain_mask(ids, 7, 0.8)])


def test_negatives_are_disjoint_from_the_sample():
    ids = np.arange(5000, dtype=np.uint32)
    sample = ids[::3]
    negs = negative_ids(ids, sample, 1000, seed=1)
    assert negs.size == 1000 and np.intersect1d(negs, sample).size == 0
    assert np.array_equal(negs, negative_ids(ids[::-1], sample, 1000, seed=1))


def test_derangement_has_no_fixed_point():
    for n in (2, 3, 10, 384):
        d = derangement(n, seed=n)
        assert sorted(d.tolist()) == list(range(n)) and np.all(d != np.arange(n))


def test_length_matched_follows_the_positives():
    rng = np.random.default_rng(3)
    neg_len = rng.integers(3, 40, 5000).astype(float)
    pos_len = rng.integers(25, 40, 50).astype(float)
    keep = length_matched(pos_len, neg_len, np.arange(5000, dtype=np.uint32), seed=0)
    assert keep.sum() > 100
    assert np.median(neg_len[keep]) > 25


def test_significant_patterns_only(layer):
    """With only significant patterns entering, the planted neurons still reach AUROC > 0.95 for their kind and
    noise neurons get few patterns (selective p + BH keep false discoveries rare)."""
    table = _run(layer, "significant.parquet", {"patterns": "significant"})
    neurons, kinds, auc = scores_matrix(table, "auroc")
    for f, name in enumerate(PLANTED):
        assert auc[f, kinds.index(PLANTED_KIND[name])] > 0.95, name
    _, n_kinds, n_patterns = scores_matrix(table, "n_patterns")
    noise = n_patterns[len(PLANTED) :, n_kinds.index("all")]
    assert np.mean(noise == 0) > 0.8, noise


def test_table_and_figure_are_deterministic(layer, scored, tmp_path):
    from neurotext.scores.summary import write_figure, write_table

    files = {1: layer / "scores.parquet", 2: layer / "scores.parquet"}
    rows = write_table(files, tmp_path / "t.md", tmp_path / "t.csv")
    assert [r[1] for r in rows[: len(KINDS) + len(CONTROLS)]] == [*KINDS, *CONTROLS]
    words = next(r for r in rows if r[1] == "words")
    assert words[2] == SPEC.n_neurons and 0.0 <= words[8] <= 1.0
    write_figure(files, tmp_path / "a.png", tmp_path / "a.pdf")
    write_figure(files, tmp_path / "b.png", tmp_path / "b.pdf")
    for ext in ("png", "pdf"):
        assert (tmp_path / f"a.{ext}").read_bytes() == (tmp_path / f"b.{ext}").read_bytes()
    assert "| 1 | words |" in (tmp_path / "t.md").read_text()


def test_draw_negatives_from_files(tmp_path):
    from neurotext.artifacts.corpus import CORPUS_SCHEMA
    from neurotext.scores.split import draw_negatives

    n = 300
    ids = np.arange(n, dtype=np.uint32)
    corpus = {f.name: pa.nulls(n, f.type) for f in CORPUS_SCHEMA}
    corpus.update(sentence_id=pa.array(ids, pa.uint32()), dataset=pa.array(["d"] * n), doc_id=pa.array(["x"] * n),
                  text=pa.array([f"sentence {i}" for i in range(n)]))  # fmt: skip
    pq.write_table(pa.table(corpus, schema=CORPUS_SCHEMA), tmp_path / "corpus.parquet")
    pq.write_table(pa.table({"sentence_id": pa.array(ids[::2], pa.uint32())}), tmp_path / "sample.parquet")
    table = draw_negatives([str(tmp_path / "corpus.parquet")], str(tmp_path / "sample.parquet"), 50, 9,
                           str(tmp_path / "neg.parquet"))  # fmt: skip
    got = table["sentence_id"].to_numpy()
    assert got.size == 50 and np.all(got % 2 == 1) and np.all(np.diff(got) > 0)
    assert table.schema.names == CORPUS_SCHEMA.names


def test_settings_defaults_agree_with_the_config_schema():
    assert ScoreSettings.from_config(with_defaults("scores")) == ScoreSettings()
    with pytest.raises(Exception, match="scores.patterns"):
        ScoreSettings.from_config(with_defaults("scores", {"patterns": "best"}))
    with pytest.raises(Exception, match="unknown key"):
        ScoreSettings.from_config(with_defaults("scores", {"negative": 5}))
