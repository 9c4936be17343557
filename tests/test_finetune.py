"""The fine-tuning experiment on the tiny random BERT: labelled split, training, Table 3 distances, neuron changes.

Distances are checked against a direct numpy computation (on random arrays and on activations computed one
sentence at a time with plain Hugging Face code); fine-tuning is checked to move the weights, with distances that
follow the weight change (zero learning rate -> zero distance; only layer 2 changed -> only layer 2 moves); the
"before" activations are checked against the base scan's sample activations; bad input and killed runs too.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from neurotext.config import ConfigError
from neurotext.finetune import (
    DISTANCES_SCHEMA,
    EVAL_SETS,
    NEURONS_SCHEMA,
    FinetuneSettings,
    activation_distances,
    atomic_directory,
    check_finetune_config,
    epoch_batches,
    eval_sentences,
    finetune_model,
    jaccard_rows,
    neuron_changes,
    ordering_verdict,
    parse_labels,
    read_labelled,
    split_documents,
    split_labelled,
    top_sets,
    write_distances,
    write_table3,
)
from neurotext.artifacts.corpus import CORPUS_SCHEMA
from neurotext.ids import make_sentence_ids
from neurotext.io import write_parquet
from neurotext.scan import sample_activations
from neurotext.validate import with_defaults

MAX_LENGTH = 32
MODEL = with_defaults("model", {"max_length": MAX_LENGTH})
SCAN = with_defaults("scan", {"k": 8, "token_budget": 512, "device": "cpu", "threads": 1})
LAYERS = [1, 2]
CODES = {"books": 1, "tweets": 3}
GENRES = ("news", "fiction", "lore")
FINETUNE = with_defaults("finetune", {
    "dataset": "books",
    "label": "genre",
    "multi_label": "first",
    "unit": "sentence",
    "holdout": {"column": "split", "fraction": 0.25, "stratify": True, "seed": 3},
    "min_class_examples": 2,
    "max_train_examples": 120,
    "epochs": 2,
    "batch_size": 8,
    "dropout": 0.5,
    "lr": 1e-3,
    "optimizer": "adam",
    "seed": 5,
    "device": "cpu",
    "threads": 1,
    "eval": {"n": 40, "out_of_domain": "tweets", "seed": 9},
    "overlap": {"source": "sample", "k": 5, "top_neurons": 4},
})


def corpus_table(texts, dataset, code, doc_size=10, genre=None, split=None) -> pa.Table:
    """A corpus table (CORPUS_SCHEMA) of `texts`, `doc_size` sentences a document; genre(doc) and split(doc)
    fill those columns when given."""
    n = len(texts)
    docs = [i // doc_size for i in range(n)]
    columns = {
        "sentence_id": pa.array(make_sentence_ids(code, np.arange(n), dataset), pa.uint32()),
        "dataset": pa.array([dataset] * n, pa.string()),
        "doc_id": pa.array([f"{dataset}{d:03d}" for d in docs], pa.string()),
        "text": pa.array(texts, pa.string()),
        "genre": pa.array([genre(d) if genre else None for d in docs], pa.string()),
        "split": pa.array([split(d) if split else None for d in docs], pa.string()),
    }
    for f in CORPUS_SCHEMA:
        if f.name not in columns:
            columns[f.name] = pa.nulls(n, f.type)
    return pa.Table.from_arrays([columns[f.name] for f in CORPUS_SCHEMA], schema=CORPUS_SCHEMA)


def write_table(table: pa.Table, path: Path) -> str:
    write_parquet(table, path, "test")
    return str(path)


def layer_files(root: Path, model: str, pooling: str = "max") -> list[str]:
    return [str(root / model / pooling / f"layer{layer}.npy") for layer in LAYERS]


# --------------------------------------------------------------------------------------------------------------
# The whole stage once, on the tiny model


@pytest.fixture(scope="module")
def corpora(tmp_path_factory, scan_sentences):
    root = tmp_path_factory.mktemp("finetune")
    books = write_table(
        corpus_table(scan_sentences[:240], "books", CODES["books"], genre=lambda d: GENRES[d % 3]),
        root / "corpus" / "books.parquet",
    )
    tweets = write_table(
        corpus_table(scan_sentences[240:], "tweets", CODES["tweets"]), root / "corpus" / "tweets.parquet"
    )
    # the sample: every 4th books sentence and every 2nd tweet (overlaps the evaluation sets)
    sample = pa.concat_tables(
        [pq.read_table(books).take(np.arange(0, 240, 4)), pq.read_table(tweets).take(np.arange(0, 60, 2))]
    ).sort_by("sentence_id")
    return root, books, tweets, write_table(sample, root / "sample" / "sentences.parquet")


def run_stage(root: Path, books: str, tweets: str, sample: str, model_dir: Path, finetune: dict, out: Path) -> dict:
    """Every step of the stage as the rules chain them; returns the output paths."""
    paths = {
        "labelled": out / "labelled.parquet",
        "model": out / "model",
        "metrics": out / "metrics.json",
        "eval": out / "eval" / "sentences.parquet",
        "distances": out / "distances.parquet",
        "sentence_distances": out / "sentence_distances.parquet",
        "neurons": out / "neurons.parquet",
        "md": out / "table3.md",
        "csv": out / "table3.csv",
    }
    split_labelled(books, finetune, str(paths["labelled"]), "test")
    finetune_model(
        str(paths["labelled"]), str(model_dir), finetune, MODEL, SCAN, str(paths["model"]), str(paths["metrics"])
    )
    eval_sentences(str(paths["labelled"]), tweets, finetune, str(paths["eval"]), "test")
    for name, directory in (("base", model_dir), ("finetuned", paths["model"])):
        sample_activations(str(paths["eval"]), str(directory), MODEL, SCAN, ["max"], layer_files(out / "eval", name))
        sample_activations(sample, str(directory), MODEL, SCAN, ["max"], layer_files(out / "sample", name))
    write_distances(
        str(paths["eval"]), layer_files(out / "eval", "base"), layer_files(out / "eval", "finetuned"), LAYERS,
        str(paths["distances"]), str(paths["sentence_distances"]), "test",
    )  # fmt: skip
    neuron_changes(
        sample, layer_files(out / "sample", "base"), layer_files(out / "sample", "finetuned"), str(paths["eval"]),
        layer_files(out / "eval", "base"), layer_files(out / "eval", "finetuned"), LAYERS, finetune, CODES,
        str(paths["neurons"]), "test",
    )  # fmt: skip
    write_table3(
        str(paths["distances"]), str(paths["neurons"]), str(paths["metrics"]), sample, str(paths["md"]),
        str(paths["csv"]), finetune, MODEL, "test", str(paths["sentence_distances"]),
    )  # fmt: skip
    return paths


@pytest.fixture(scope="module")
def stage(corpora, tiny_model_dir):
    root, books, tweets, sample = corpora
    return run_stage(root, books, tweets, sample, tiny_model_dir, FINETUNE, root / "run")


def brute_activations(model_dir: Path, texts: list[str]) -> list[np.ndarray]:
    """Per layer float32 [n, H]: plain HF model, one sentence at a time, max over the non-special tokens."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModel.from_pretrained(str(model_dir)).eval()
    layers: list[list[np.ndarray]] = [[] for _ in range(model.config.num_hidden_layers)]
    with torch.no_grad():
        for text in texts:
            encoded = tokenizer(text, truncation=True, max_length=MAX_LENGTH, return_special_tokens_mask=True)
            real = ~torch.tensor(encoded["special_tokens_mask"], dtype=torch.bool)
            states = model(input_ids=torch.tensor([encoded["input_ids"]]), output_hidden_states=True).hidden_states
            for index in range(len(layers)):
                layers[index].append(states[index + 1][0][real].max(dim=0).values.numpy())
    return [np.stack(layer).astype(np.float32) for layer in layers]


def direct_distances(before: list[np.ndarray], after: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Manhattan and Euclidean distance per sentence between the concatenated layer vectors, in float64."""
    a = np.concatenate(before, axis=1).astype(np.float64)
    b = np.concatenate(after, axis=1).astype(np.float64)
    return np.abs(b - a).sum(axis=1), np.linalg.norm(b - a, axis=1)


# --------------------------------------------------------------------------------------------------------------
# Distances


def test_distances_equal_a_direct_numpy_computation_on_random_activations(tmp_path):
    rng = np.random.default_rng(0)
    ids = np.sort(rng.choice(10_000, 30, replace=False)).astype(np.uint32)
    sets = np.array(["train"] * 10 + ["holdout"] * 12 + ["out_of_domain"] * 8)
    rng.shuffle(sets)
    sentences = pa.table(
        {"sentence_id": pa.array(ids, pa.uint32()), "set": sets.tolist(), "dataset": ["d"] * 30, "text": ["x"] * 30}
    )
    path = write_table(sentences, tmp_path / "sentences.parquet")
    before = [rng.normal(size=(30, 7)).astype(np.float32) for _ in LAYERS]
    after = [(b + rng.normal(scale=0.3, size=b.shape)).astype(np.float32) for b in before]
    for model, arrays in (("base", before), ("finetuned", after)):
        for layer, array in zip(LAYERS, arrays, strict=True):
            (tmp_path / model / "max").mkdir(parents=True, exist_ok=True)
            np.save(tmp_path / model / "max" / f"layer{layer}.npy", array)
    table = write_distances(
        path, layer_files(tmp_path, "base"), layer_files(tmp_path, "finetuned"), LAYERS,
        str(tmp_path / "d.parquet"), str(tmp_path / "s.parquet"),
    )  # fmt: skip
    assert table.schema.equals(DISTANCES_SCHEMA)
    manhattan, euclidean = direct_distances(before, after)
    rows = {(r["set"], r["layer"]): r for r in table.to_pylist()}
    for name in EVAL_SETS:
        mask = sets == name
        np.testing.assert_allclose(rows[(name, None)]["manhattan"], manhattan[mask].mean(), rtol=1e-12)
        np.testing.assert_allclose(rows[(name, None)]["euclidean"], euclidean[mask].mean(), rtol=1e-12)
        assert rows[(name, None)]["n_sentences"] == mask.sum()
        assert rows[(name, None)]["n_dims"] == 14
        for index, layer in enumerate(LAYERS):
            difference = after[index][mask].astype(np.float64) - before[index][mask]
            np.testing.assert_allclose(rows[(name, layer)]["manhattan"], np.abs(difference).sum(1).mean(), rtol=1e-12)
            np.testing.assert_allclose(
                rows[(name, layer)]["euclidean"], np.linalg.norm(difference, axis=1).mean(), rtol=1e-12
            )
    per_sentence = pq.read_table(tmp_path / "s.parquet").to_pandas()
    totals = per_sentence[per_sentence["layer"].isna()].set_index("sentence_id").loc[ids]
    np.testing.assert_allclose(totals["manhattan"].to_numpy(), manhattan, rtol=1e-12)
    np.testing.assert_allclose(totals["euclidean"].to_numpy(), euclidean, rtol=1e-12)
    assert (totals["n_words"] == 1).all()


def test_activation_distances_refuse_misaligned_layers():
    with pytest.raises(ValueError, match=r"layer 2: before \(3, 4\) and after \(2, 4\)"):
        activation_distances([np.zeros((3, 4))] * 2, [np.zeros((3, 4)), np.zeros((2, 4))])


@pytest.fixture(scope="module")
def direct(stage, tiny_model_dir):
    """The evaluation sentences and their activations computed directly, before and after fine-tuning."""
    sentences = pq.read_table(stage["eval"]).to_pandas()
    texts = sentences["text"].tolist()
    return sentences, brute_activations(tiny_model_dir, texts), brute_activations(stage["model"], texts)


def test_stage_distances_equal_numpy_on_directly_computed_activations(stage, direct):
    sentences, before, after = direct
    manhattan, euclidean = direct_distances(before, after)
    rows = {(r["set"], r["layer"]): r for r in pq.read_table(stage["distances"]).to_pylist()}
    sets = sentences["set"].to_numpy()
    assert {name for name, _ in rows} == set(EVAL_SETS)
    for name in EVAL_SETS:
        mask = sets == name
        assert rows[(name, None)]["n_sentences"] == mask.sum() > 0
        np.testing.assert_allclose(rows[(name, None)]["manhattan"], manhattan[mask].mean(), rtol=1e-4)
        np.testing.assert_allclose(rows[(name, None)]["euclidean"], euclidean[mask].mean(), rtol=1e-4)
        assert rows[(name, None)]["euclidean"] > 0


def test_before_activations_equal_the_base_scan_sample_activations(corpora, stage, tiny_model_dir):
    """Evaluation sentences that are also in the sample: their before rows equal the base sample's rows."""
    _, _, _, sample = corpora
    sample_ids = pq.read_table(sample, columns=["sentence_id"]).column(0).to_numpy()
    eval_ids = pq.read_table(stage["eval"], columns=["sentence_id"]).column(0).to_numpy()
    shared, in_sample, in_eval = np.intersect1d(sample_ids, eval_ids, return_indices=True)
    assert len(shared) >= 10
    for layer in LAYERS:
        base_sample = np.load(stage["eval"].parent.parent / "sample" / "base" / "max" / f"layer{layer}.npy")
        base_eval = np.load(stage["eval"].parent / "base" / "max" / f"layer{layer}.npy")
        np.testing.assert_allclose(base_eval[in_eval], base_sample[in_sample], atol=1e-5, rtol=0)


def test_a_few_steps_change_the_weights_and_distances_follow(stage, tiny_model_dir):
    from transformers import AutoModel

    base = AutoModel.from_pretrained(str(tiny_model_dir)).state_dict()
    tuned = AutoModel.from_pretrained(str(stage["model"])).state_dict()
    assert base.keys() == tuned.keys()
    changed = [name for name in base if not torch.equal(base[name], tuned[name])]
    assert any(name.startswith("encoder.layer.0.") for name in changed)
    assert any(name.startswith("encoder.layer.1.") for name in changed)
    metrics = json.loads(stage["metrics"].read_text())
    assert metrics["steps"] == 2 * -(-metrics["n_train"] // 8) > 0
    assert [e["epoch"] for e in metrics["epochs"]] == [0, 1, 2]
    assert metrics["classes"] == sorted(GENRES)
    assert 0 < metrics["chance_rate"] < 1


def test_zero_learning_rate_keeps_weights_and_gives_zero_distance(corpora, tiny_model_dir, tmp_path):
    root, books, tweets, sample = corpora
    paths = run_stage(root, books, tweets, sample, tiny_model_dir, {**FINETUNE, "lr": 0.0, "epochs": 1}, tmp_path)
    from transformers import AutoModel

    base = AutoModel.from_pretrained(str(tiny_model_dir)).state_dict()
    tuned = AutoModel.from_pretrained(str(paths["model"])).state_dict()
    assert all(torch.equal(base[name], tuned[name]) for name in base)
    distances = pq.read_table(paths["distances"])
    assert distances.column("manhattan").to_numpy().max() == 0.0
    assert distances.column("euclidean").to_numpy().max() == 0.0
    neurons = pq.read_table(paths["neurons"])
    assert neurons.column("mean_abs_change").to_numpy().max() == 0.0
    assert neurons.column("jaccard").to_numpy().min() == 1.0


def test_only_the_changed_layer_moves(stage, tiny_model_dir, tmp_path):
    """A model with the fine-tuned weights in layer 2 only: layer 1 does not move, layer 2 does."""
    from transformers import AutoModel

    hybrid = AutoModel.from_pretrained(str(tiny_model_dir))
    tuned = AutoModel.from_pretrained(str(stage["model"])).state_dict()
    hybrid.load_state_dict(
        {k: (tuned[k] if k.startswith("encoder.layer.1.") else v) for k, v in hybrid.state_dict().items()}
    )
    hybrid_dir = tmp_path / "hybrid"
    hybrid.save_pretrained(str(hybrid_dir))
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt"):
        shutil.copy(Path(tiny_model_dir) / name, hybrid_dir / name)
    eval_path = str(stage["eval"])
    sample_activations(eval_path, str(hybrid_dir), MODEL, SCAN, ["max"], layer_files(tmp_path, "finetuned"))
    table = write_distances(
        eval_path, layer_files(stage["eval"].parent, "base"), layer_files(tmp_path, "finetuned"), LAYERS,
        str(tmp_path / "d.parquet"), str(tmp_path / "s.parquet"),
    )  # fmt: skip
    for row in table.to_pylist():
        if row["layer"] == 1:
            assert row["manhattan"] == 0.0, row
        else:
            assert row["manhattan"] > 0.0, row


def test_rerun_gives_the_same_bytes(corpora, stage, tiny_model_dir, tmp_path):
    root, books, tweets, sample = corpora
    again = run_stage(root, books, tweets, sample, tiny_model_dir, FINETUNE, tmp_path)
    for key in ("labelled", "metrics", "eval", "distances", "neurons", "md", "csv"):
        assert Path(again[key]).read_bytes() == Path(stage[key]).read_bytes(), key
    assert (again["model"] / "model.safetensors").read_bytes() == (stage["model"] / "model.safetensors").read_bytes()


# --------------------------------------------------------------------------------------------------------------
# Neurons and Table 3


def test_neurons_match_a_direct_computation(corpora, stage):
    _, _, _, sample = corpora
    table = pq.read_table(stage["neurons"])
    assert table.schema.equals(NEURONS_SCHEMA)
    sample_ids = pq.read_table(sample, columns=["sentence_id"]).column(0).to_numpy()
    frame = table.to_pandas()
    for layer in LAYERS:
        before = np.load(stage["eval"].parent.parent / "sample" / "base" / "max" / f"layer{layer}.npy").astype(
            np.float64
        )
        after = np.load(stage["eval"].parent.parent / "sample" / "finetuned" / "max" / f"layer{layer}.npy").astype(
            np.float64
        )
        rows = frame[frame["layer"] == layer].sort_values("neuron")
        np.testing.assert_allclose(rows["mean_abs_change"], np.abs(after - before).mean(0), rtol=1e-12)
        for neuron in range(before.shape[1]):
            top_before = set(sample_ids[np.lexsort((sample_ids, -before[:, neuron]))[:5]].tolist())
            top_after = set(sample_ids[np.lexsort((sample_ids, -after[:, neuron]))[:5]].tolist())
            expected = len(top_before & top_after) / len(top_before | top_after)
            assert rows["jaccard"].iloc[neuron] == pytest.approx(expected)


def test_top_sets_and_jaccard_against_brute_force():
    rng = np.random.default_rng(1)
    values = rng.normal(size=(50, 6)).astype(np.float32)
    values[3, 0] = values[7, 0]  # a tie: the lower id wins
    ids = np.arange(100, 150, dtype=np.uint32)
    top = top_sets(values, ids, 4)
    for neuron in range(6):
        expected = ids[np.lexsort((ids, -values[:, neuron]))[:4]]
        np.testing.assert_array_equal(top[neuron], expected)
    other = np.array([rng.choice(np.arange(100, 150), 4, replace=False) for _ in range(6)], dtype=np.uint32)
    got = jaccard_rows(top, other)
    for neuron in range(6):
        a, b = set(top[neuron].tolist()), set(other[neuron].tolist())
        assert got[neuron] == pytest.approx(len(a & b) / len(a | b))


def test_table3_lists_three_sets_beside_the_paper(stage):
    markdown = Path(stage["md"]).read_text()
    for text in ("Reuters train", "2,161.4", "Sentiment140", "24.5", "| train | books |", "| out-of-domain | tweets |",
                 "The paper's ordering", "held-out accuracy", "distances per layer", "moved most",
                 "at equal sentence length", "| 1-8 |"):  # fmt: skip
        assert text in markdown, text
    lines = Path(stage["csv"]).read_text().splitlines()
    assert lines[0] == "set,dataset,n_sentences,manhattan,euclidean,relative_euclidean,ratio_to_out_of_domain"
    assert [line.split(",")[0] for line in lines[1:]] == list(EVAL_SETS)


def test_ordering_verdict():
    assert ordering_verdict({"train": 3, "holdout": 2, "out_of_domain": 1}).startswith("holds")
    verdict = ordering_verdict({"train": 2, "holdout": 3, "out_of_domain": 1})
    assert verdict.startswith("does not hold") and "training <= held-out" in verdict
    assert ordering_verdict({"train": 1}).startswith("cannot")


# --------------------------------------------------------------------------------------------------------------
# Labels, the held-out split and bad input


def test_parse_labels_modes():
    assert parse_labels("earn|acq", "first") == ("earn",)
    assert parse_labels("earn|acq", "single") == ()
    assert parse_labels("earn", "single") == ("earn",)
    assert parse_labels("earn|acq|earn", "multi") == ("acq", "earn")
    assert parse_labels(None, "multi") == () and parse_labels(" | ", "first") == ()


def test_document_split_is_seeded_stratified_and_keeps_documents_whole():
    docs = [f"d{i}" for i in range(40)]
    strata = [GENRES[i % 3] if i < 39 else "solo" for i in range(40)]
    held = split_documents(docs, strata, 0.25, seed=1)
    assert held == split_documents(docs, strata, 0.25, seed=1)
    assert held != split_documents(docs, strata, 0.25, seed=2)
    assert "d39" not in held  # a one-document class stays in training
    for genre in GENRES:
        members = [d for d, s in zip(docs, strata, strict=True) if s == genre]
        assert sum(d in held for d in members) == round(0.25 * len(members))


def test_split_labelled_seeded_document_split(corpora, stage):
    rows = read_labelled(stage["labelled"])
    parts_of_doc: dict[str, set[str]] = {}
    for doc, part in zip(rows.doc_ids, rows.parts, strict=True):
        parts_of_doc.setdefault(doc, set()).add(part)
    assert all(len(parts) == 1 for parts in parts_of_doc.values())
    assert sum(p == "train" for p in rows.parts) == 120  # max_train_examples
    holdout_docs = {d for d, p in zip(rows.doc_ids, rows.parts, strict=True) if p == "holdout"}
    assert len(holdout_docs) == 6  # round(0.25 x 8) documents of each of the 3 genres


def test_split_labelled_uses_the_split_column(tmp_path, scan_sentences):
    table = corpus_table(
        scan_sentences[:100],
        "books",
        1,
        genre=lambda d: GENRES[d % 2],
        split=lambda d: ["train", "test", "not-used"][d % 3],
    )
    path = write_table(table, tmp_path / "books.parquet")
    rows = split_labelled(path, {**FINETUNE, "max_train_examples": None}, str(tmp_path / "l.parquet"))
    expected = {f"books{d:03d}": ["train", "holdout", None][d % 3] for d in range(10)}
    assert all(expected[doc] == part for doc, part in zip(rows.doc_ids, rows.parts, strict=True))
    assert {p for p in rows.parts} == {"train", "holdout"}


def test_multi_label_and_document_unit_train(tmp_path, scan_sentences, tiny_model_dir):
    categories = ["earn|acq", "earn", "grain|corn", "acq"]
    table = corpus_table(
        scan_sentences[:80],
        "reuters",
        6,
        genre=lambda d: categories[d % 4],
        split=lambda d: "test" if d % 4 == 1 or d == 2 else "train",
    )
    path = write_table(table, tmp_path / "reuters.parquet")
    finetune = {**FINETUNE, "dataset": "reuters", "multi_label": "multi", "unit": "document", "min_class_examples": 1,
                "max_train_examples": None, "epochs": 1}  # fmt: skip
    split_labelled(path, finetune, str(tmp_path / "l.parquet"))
    metrics = finetune_model(
        str(tmp_path / "l.parquet"), str(tiny_model_dir), finetune, MODEL, SCAN, str(tmp_path / "m"),
        str(tmp_path / "metrics.json"),
    )  # fmt: skip
    assert metrics["classes"] == ["acq", "corn", "earn", "grain"]
    assert metrics["n_train"] == 5 and metrics["n_holdout"] == 3  # documents
    assert "holdout_micro_f1" in metrics["epochs"][-1]
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["problem_type"] == "multi_label_classification" and config["classifier_dropout"] == 0.5


def test_one_class_is_an_error_naming_the_label_key(tmp_path, scan_sentences):
    path = write_table(corpus_table(scan_sentences[:60], "books", 1, genre=lambda d: "news"), tmp_path / "b.parquet")
    with pytest.raises(ConfigError, match=r"finetune\.label = 'genre'.*1 class"):
        split_labelled(path, FINETUNE, str(tmp_path / "l.parquet"))
    assert not (tmp_path / "l.parquet").exists()


def test_an_unfilled_label_column_is_an_error(tmp_path, scan_sentences):
    path = write_table(corpus_table(scan_sentences[:60], "books", 1), tmp_path / "b.parquet")
    with pytest.raises(ConfigError, match=r"finetune\.label = 'genre': no row"):
        split_labelled(path, FINETUNE, str(tmp_path / "l.parquet"))


def test_a_split_column_without_holdout_values_is_an_error(tmp_path, scan_sentences):
    table = corpus_table(scan_sentences[:60], "books", 1, genre=lambda d: GENRES[d % 3], split=lambda d: "train")
    path = write_table(table, tmp_path / "b.parquet")
    with pytest.raises(ConfigError, match=r"finetune\.holdout\.holdout_values = \['test'\].*values seen: train"):
        split_labelled(path, FINETUNE, str(tmp_path / "l.parquet"))


def test_too_few_documents_to_hold_out_is_an_error(tmp_path, scan_sentences):
    path = write_table(corpus_table(scan_sentences[:30], "books", 1, genre=lambda d: GENRES[d]), tmp_path / "b.parquet")
    with pytest.raises(ConfigError, match=r"finetune\.holdout\.fraction"):
        split_labelled(path, {**FINETUNE, "min_class_examples": 1}, str(tmp_path / "l.parquet"))


def test_n_larger_than_a_set_is_a_logged_fallback(stage, corpora, tmp_path, caplog):
    _, _, tweets, _ = corpora
    with caplog.at_level(logging.WARNING, logger="neurotext.finetune"):
        table = eval_sentences(str(stage["labelled"]), tweets, {**FINETUNE, "eval": {**FINETUNE["eval"], "n": 1000}},
                               str(tmp_path / "e.parquet"))  # fmt: skip
    counts = {name: table.column("set").to_pylist().count(name) for name in EVAL_SETS}
    rows = read_labelled(stage["labelled"])
    assert counts == {"train": rows.parts.count("train"), "holdout": rows.parts.count("holdout"), "out_of_domain": 60}
    assert sum("finetune.eval.n = 1000" in record.getMessage() for record in caplog.records) == 3


@pytest.mark.parametrize(
    "change, message",
    [
        ({"dataset": "nope"}, r"finetune\.dataset = 'nope'"),
        ({"label": "colour"}, r"finetune\.label = 'colour'"),
        ({"eval": {"n": 5, "out_of_domain": "books"}}, r"finetune\.eval\.out_of_domain = 'books' is the fine-tuning"),
        ({"lr": -1}, r"finetune\.lr"),
        ({"dropout": 1.0}, r"finetune\.dropout"),
        ({"multi_label": "all"}, r"finetune\.multi_label"),
        ({"holdout": {"fraction": 0}}, r"finetune\.holdout\.fraction"),
        ({"eval": {"n": 0, "out_of_domain": "tweets"}}, r"finetune\.eval\.n"),
        ({"learning_rate": 1e-5}, r"finetune\.learning_rate: unknown key"),
        ({"overlap": {"K": 5}}, r"finetune\.overlap\.K: unknown key"),
    ],
)
def test_config_errors_name_the_key(change, message):
    with pytest.raises(ConfigError, match=message):
        FinetuneSettings.from_config(with_defaults("finetune", {**FINETUNE, **change}), ["books", "tweets"])


def test_overlap_k_above_the_sample_size_is_an_error():
    assert check_finetune_config(None, ["books"]) is None
    with pytest.raises(ConfigError, match=r"finetune\.overlap\.k = 5.*sample\.size = 4"):
        check_finetune_config(FINETUNE, ["books", "tweets"], sample_size=4)


# --------------------------------------------------------------------------------------------------------------
# Killed runs


def test_atomic_directory_leaves_nothing_half_written(tmp_path):
    target = tmp_path / "model"
    with pytest.raises(RuntimeError), atomic_directory(target) as tmp:
        (tmp / "config.json").write_text("{}")
        raise RuntimeError("killed while writing the weights")
    assert not target.exists() and list(tmp_path.iterdir()) == []
    with atomic_directory(target) as tmp:
        (tmp / "config.json").write_text("1")
    with pytest.raises(RuntimeError), atomic_directory(target) as tmp:
        (tmp / "config.json").write_text("2")
        raise RuntimeError
    assert (target / "config.json").read_text() == "1"  # the previous complete model is kept
    stale = tmp_path / ".model.abc123.tmp"  # what a SIGKILL during a save leaves behind
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"half")
    with atomic_directory(target) as tmp:
        (tmp / "config.json").write_text("3")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    assert (target / "config.json").read_text() == "3"
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o777 & ~umask
    assert (target / "config.json").stat().st_mode & 0o777 == 0o666 & ~umask


KILL_SCRIPT = """
import sys
from neurotext.logs import setup_job_logging
setup_job_logging(sys.argv[1])
import json
from neurotext.finetune import finetune_model
args = json.loads(sys.argv[2])
finetune_model(**args)
"""


def test_a_killed_run_leaves_no_model_and_reruns_cleanly(stage, tiny_model_dir, tmp_path):
    model_out, metrics_out, log_path = tmp_path / "model", tmp_path / "metrics.json", tmp_path / "job.log"
    args = {
        "labelled": str(stage["labelled"]), "model_dir": str(tiny_model_dir), "model": MODEL, "scan": SCAN,
        "model_out": str(model_out), "metrics_out": str(metrics_out),
    }  # fmt: skip
    long_run = {**args, "finetune": {**FINETUNE, "epochs": 10_000}}
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(log_path), json.dumps(long_run)], env=env)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and "epoch 1:" not in (log_path.read_text() if log_path.exists() else ""):
            assert process.poll() is None, log_path.read_text()
            time.sleep(0.2)
        assert "epoch 1:" in log_path.read_text()
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert not model_out.exists() and not metrics_out.exists()
    assert not list(tmp_path.glob(".model.*"))
    finetune_model(**{**args, "finetune": FINETUNE})
    assert (model_out / "model.safetensors").is_file() and metrics_out.is_file()
    assert (model_out / "model.safetensors").read_bytes() == (stage["model"] / "model.safetensors").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job.log", "metrics.json", "model"]


def test_epoch_batches_cover_every_example_once_and_buckets_cut_padding():
    rng_lengths = np.random.default_rng(2)
    lengths = rng_lengths.integers(5, 120, size=203)
    padded = {}
    for buckets in (1, 16):
        rng = np.random.default_rng(7)
        batches = epoch_batches(lengths, 8, buckets, rng)
        assert sorted(np.concatenate(batches).tolist()) == list(range(203))
        assert len(batches) == 26 and all(len(b) <= 8 for b in batches)
        assert sum(len(b) < 8 for b in batches) <= (1 if buckets == 1 else 2)
        padded[buckets] = sum(len(b) * lengths[b].max() for b in batches)
        again = epoch_batches(lengths, 8, buckets, np.random.default_rng(7))
        assert all(np.array_equal(a, b) for a, b in zip(batches, again, strict=True))
    assert padded[16] < 0.75 * padded[1]


def write_topk(path: Path, ids: np.ndarray) -> str:
    """A topk parquet (TOPK_SCHEMA) whose neuron n has the sentence ids ids[n] by rank."""
    from neurotext.artifacts.topk import TOPK_SCHEMA

    n_neurons, k = ids.shape
    table = pa.Table.from_arrays(
        [
            pa.array(np.repeat(np.arange(n_neurons), k), pa.int32()),
            pa.array(np.tile(np.arange(k), n_neurons), pa.int32()),
            pa.array(ids.ravel(), pa.uint32()),
            pa.array(np.zeros(ids.size), pa.float32()),
            *[pa.array(np.zeros(ids.size), pa.int32()) for _ in range(3)],
        ],
        schema=TOPK_SCHEMA,
    )
    return write_table(table, path)


def test_neuron_changes_on_synthetic_activations_with_corpus_top_sets(tmp_path):
    rng = np.random.default_rng(4)
    sample_ids = np.sort(make_sentence_ids(1, rng.choice(500, 30, replace=False)))
    eval_ids = np.sort(np.concatenate([sample_ids[:6], make_sentence_ids(3, np.arange(14))]))
    sample = write_table(pa.table({"sentence_id": pa.array(sample_ids, pa.uint32()), "text": ["s"] * 30}),
                         tmp_path / "sample.parquet")  # fmt: skip
    sets = ["train"] * 4 + ["holdout"] * 8 + ["out_of_domain"] * 8
    sentences = write_table(pa.table({"sentence_id": pa.array(eval_ids, pa.uint32()), "set": sets}),
                            tmp_path / "eval.parquet")  # fmt: skip
    arrays = {}
    for layer in LAYERS:
        before = rng.normal(size=(30, 5)).astype(np.float32)
        before[:, 0] = 3.0  # constant over the sample: no relative change
        after = (before + rng.normal(scale=0.5, size=before.shape)).astype(np.float32)
        eval_before = rng.normal(size=(20, 5)).astype(np.float32)
        eval_before[np.searchsorted(eval_ids, sample_ids[:6])] = before[:6]
        eval_after = (eval_before + 1.0).astype(np.float32)
        arrays[layer] = (before, after, eval_before, eval_after)
        for name, array in zip(("sb", "sa", "eb", "ea"), arrays[layer], strict=True):
            (tmp_path / name).mkdir(exist_ok=True)
            np.save(tmp_path / name / f"layer{layer}.npy", array)
    top_before = {layer: make_sentence_ids(1, rng.choice(500, (5, 4))) for layer in LAYERS}
    new_ids = {layer: make_sentence_ids(3, rng.choice(9, (5, 2)) + 9 * np.arange(1, 3)) for layer in LAYERS}
    top_after = {layer: np.concatenate([top_before[layer][:, :2], new_ids[layer]], 1) for layer in LAYERS}
    for layer in LAYERS:
        write_topk(tmp_path / "tb" / f"layer{layer}.parquet", np.sort(top_before[layer], axis=1))
        write_topk(tmp_path / "ta" / f"layer{layer}.parquet", top_after[layer])
    files = {
        name: [str(tmp_path / name / f"layer{layer}.npy") for layer in LAYERS] for name in ("sb", "sa", "eb", "ea")
    }
    finetune = {**FINETUNE, "overlap": {"source": "corpus", "k": 5, "top_neurons": 3}}
    table = neuron_changes(
        sample, files["sb"], files["sa"], sentences, files["eb"], files["ea"], LAYERS, finetune, CODES,
        str(tmp_path / "neurons.parquet"),
        topk_before=[str(tmp_path / "tb" / f"layer{layer}.parquet") for layer in LAYERS],
        topk_after=[str(tmp_path / "ta" / f"layer{layer}.parquet") for layer in LAYERS],
    ).to_pandas()  # fmt: skip
    for layer in LAYERS:
        before, after, eval_before, eval_after = arrays[layer]
        rows = table[table["layer"] == layer].sort_values("neuron")
        np.testing.assert_allclose(rows["mean_abs_change"], np.abs(after.astype(np.float64) - before).mean(0))
        np.testing.assert_allclose(rows["change_holdout"], 1.0, rtol=1e-6)
        assert np.isnan(rows["relative_change"].iloc[0]) and np.isfinite(rows["relative_change"].iloc[1:]).all()
        for neuron in range(5):
            a, b = set(top_before[layer][neuron].tolist()), set(top_after[layer][neuron].tolist())
            assert rows["jaccard"].iloc[neuron] == pytest.approx(len(a & b) / len(a | b))
        assert (rows["top_k"] == 4).all()
        assert rows["top_dataset_before"].tolist() == ["books"] * 5
        np.testing.assert_array_equal(rows["top_sentence_after"], top_after[layer][:, 0])


def test_length_matched_section_compares_sets_within_each_length_bin(tmp_path):
    from neurotext.finetune import SENTENCE_DISTANCES_SCHEMA, length_matched_section

    rows = [  # (set, words, manhattan): in 1-8 words the ordering holds, in 9-15 it does not, 41+ lacks a set
        ("train", 3, 10.0), ("train", 5, 12.0), ("holdout", 4, 8.0), ("out_of_domain", 2, 1.0),
        ("train", 10, 1.0), ("holdout", 12, 5.0), ("out_of_domain", 9, 2.0), ("train", 50, 4.0),
    ]  # fmt: skip
    table = pa.Table.from_pylist(
        [{"sentence_id": i, "set": s, "layer": layer, "manhattan": m, "euclidean": 0.0, "before_norm": 1.0,
          "n_words": w} for i, (s, w, m) in enumerate(rows) for layer in (None, 1)],  # fmt: skip
        schema=SENTENCE_DISTANCES_SCHEMA,
    )
    lines = length_matched_section(write_table(table, tmp_path / "s.parquet"))
    body = {line.split(" | ")[0]: line for line in lines if line.startswith("| ") and line[2].isdigit()}
    assert body["| 1-8"] == "| 1-8 | 11.0 (2) | 8.0 (1) | 1.0 (1) | holds |"
    assert "does not hold fully: training <= held-out" in body["| 9-15"]
    assert body["| 41+"] == "| 41+ | 4.0 (1) | - | - | cannot be checked |"
    assert "| 16-25" not in body


def test_settings_defaults_come_from_the_config_schema():
    """The schema holds the block's only copy of each default: the dataclasses have none, a minimal block filled
    with `with_defaults` gets the schema's values, and a block that skipped validation names the missing key."""
    import dataclasses

    import yaml

    from neurotext.finetune import EvalSettings, HoldoutSettings, OverlapSettings

    for cls in (FinetuneSettings, HoldoutSettings, EvalSettings, OverlapSettings):
        assert all(f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
                   for f in dataclasses.fields(cls)), cls.__name__  # fmt: skip
    schema = yaml.safe_load((Path(__file__).resolve().parents[1] / "workflow/schemas/config.schema.yaml").read_text())
    theirs = schema["properties"]["finetune"]["properties"]
    minimal = {"dataset": "books", "label": "genre", "eval": {"out_of_domain": "tweets"}}
    settings = FinetuneSettings.from_config(with_defaults("finetune", minimal))
    assert settings.eval.n == theirs["eval"]["properties"]["n"]["default"]
    assert settings.overlap.k == theirs["overlap"]["properties"]["k"]["default"]
    assert settings.lr == theirs["lr"]["default"] and settings.epochs == theirs["epochs"]["default"]
    assert settings.holdout.train_values == tuple(theirs["holdout"]["properties"]["train_values"]["default"])
    assert settings.max_train_examples is None and settings.max_holdout_examples is None  # optional: no cap
    with pytest.raises(ConfigError, match=r"`finetune\.lr` is missing"):
        FinetuneSettings.from_config({key: value for key, value in FINETUNE.items() if key != "lr"})
    with pytest.raises(ConfigError, match=r"`finetune\.holdout\.column` is missing"):
        FinetuneSettings.from_config({**FINETUNE, "holdout": {"fraction": 0.5}})


@pytest.mark.parametrize("config_pad", ["eos", "none"])
def test_a_decoder_classifies_each_sentence_as_it_would_alone(tmp_path, scan_sentences, config_pad):
    """A decoder's classification head reads the last token that is not its pad id: batches are padded with the
    model's pad id (EOS when its config has none, like GPT-2), so each row's logits equal its logits alone; padding
    with id 0 (a real token here) would have the head read a padding position instead."""
    from neurotext.encoder import load_tokenizer, make_batch, tokenize
    from neurotext.finetune import load_classifier
    from neurotext.finetune.train import pad_id
    from neurotext.tinymodel import make_tiny_decoder

    model_dir = make_tiny_decoder(tmp_path / "gpt2", "gpt2", scan_sentences[:200])
    config = json.loads((model_dir / "config.json").read_text())
    config["eos_token_id"] = config["vocab_size"] - 1  # GPT-2's EOS is its last id (the tiny one's is 0, its BOS)
    config["pad_token_id"] = config["eos_token_id"] if config_pad == "eos" else None
    (model_dir / "config.json").write_text(json.dumps(config))
    torch.manual_seed(0)
    model = load_classifier(model_dir, list(GENRES), FinetuneSettings.from_config(FINETUNE), multi=False).eval()
    assert model.config.pad_token_id == config["eos_token_id"] != 0
    tokens = tokenize(load_tokenizer(model_dir), scan_sentences[:6], MAX_LENGTH)
    rows = np.arange(6)
    assert len(set(tokens.lengths.tolist())) > 1  # rows of different lengths: some are padded
    device = torch.device("cpu")

    def logits(batch_rows, pad):
        batch = make_batch(tokens, batch_rows, exclude_special=False, device=device, pad_id=pad)
        with torch.inference_mode():
            return model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits

    alone = torch.cat([logits(np.array([r]), pad_id(model)) for r in rows])
    torch.testing.assert_close(logits(rows, pad_id(model)), alone, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(logits(rows, 0), alone, rtol=1e-5, atol=1e-5)


def test_a_decoder_fine_tunes_and_its_model_scans_like_the_base(tmp_path, scan_sentences):
    """The fine-tuning stage on a tiny GPT-2 (no pad id in its config, like GPT-2): it trains, saves a model that the
    scan's encoder loads as a decoder with the base model's layers and widths, and a zero learning rate keeps the
    activations those of the base model."""
    from neurotext.encoder import Encoder
    from neurotext.tinymodel import make_tiny_decoder

    model_dir = make_tiny_decoder(tmp_path / "gpt2", "gpt2", scan_sentences[:200])
    config = json.loads((model_dir / "config.json").read_text())
    config["eos_token_id"], config["pad_token_id"] = config["vocab_size"] - 1, None
    (model_dir / "config.json").write_text(json.dumps(config))
    table = corpus_table(scan_sentences[:120], "books", 1, genre=lambda d: GENRES[d % 3])
    path = write_table(table, tmp_path / "b.parquet")
    split_labelled(path, FINETUNE, str(tmp_path / "l.parquet"))
    model = with_defaults("model", {"max_length": MAX_LENGTH, "pooling": "last"})
    for lr, out in ((FINETUNE["lr"], "trained"), (0.0, "frozen")):
        metrics = finetune_model(str(tmp_path / "l.parquet"), str(model_dir), {**FINETUNE, "lr": lr, "epochs": 1},
                                 model, SCAN, str(tmp_path / out), str(tmp_path / f"{out}.json"))  # fmt: skip
        assert metrics["epochs"][-1]["epoch"] == 1
    base, frozen = Encoder.load(model_dir), Encoder.load(tmp_path / "frozen")
    trained = Encoder.load(tmp_path / "trained")
    assert trained.is_decoder and (trained.n_layers, trained.n_neurons) == (base.n_layers, base.n_neurons)
    for name, weight in base.model.state_dict().items():
        torch.testing.assert_close(frozen.model.state_dict()[name], weight, rtol=0, atol=0)
    assert any(not torch.equal(trained.model.state_dict()[name], weight)
               for name, weight in base.model.state_dict().items())  # fmt: skip
