"""End to end: the tiny decoder config (config/test_decoder.yaml) — a tiny random GPT-2 with a locally trained
byte-level BPE tokenizer, TopK SAEs trained by the workflow on its ffn site, every stage on the SAE latents."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "config" / "test_decoder.yaml"


@pytest.fixture(scope="module")
def decoder_run(tmp_path_factory, scan_sentences) -> Path:
    from conftest import failure_message

    from neurotext.tinymodel import make_tiny_decoder

    workdir = tmp_path_factory.mktemp("decoder_e2e") / "work"
    workdir.mkdir()
    (workdir / "tests").symlink_to(REPO / "tests")
    make_tiny_decoder(workdir / "resources" / "tiny-gpt2", "gpt2", scan_sentences)
    env = {**os.environ, "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
               "--configfile", str(CONFIG), "--quiet", "rules", "--cores", "2"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=1800, env=env)
    if result.returncode != 0:
        pytest.fail(failure_message(workdir, result), pytrace=False)
    return workdir / "results" / "test-decoder"


@pytest.mark.e2e
def test_the_tiny_decoder_and_its_saes_run_end_to_end(decoder_run):
    for layer in (1, 2):
        sae = decoder_run / "sae" / f"layer{layer}"
        cfg = json.loads((sae / "cfg.json").read_text())
        assert (cfg["d_in"], cfg["d_sae"], cfg["k"], cfg["architecture"]) == (64, 48, 4, "topk")
        metrics = json.loads((sae / "metrics.json").read_text())
        assert 0 < metrics["fvu_holdout"] < 1 and 0 <= metrics["dead_share"] < 1
        topk = pq.read_table(decoder_run / "topk" / "base" / f"layer{layer}.parquet").to_pandas()
        assert topk.neuron.nunique() == 48 and topk.neuron.max() == 47
        assert (pq.read_table(decoder_run / "records" / "base" / f"layer{layer}.parquet").num_rows) > 0
        assert (decoder_run / "patterns" / f"layer{layer}.parquet").exists()
    corpus = pq.read_table(sorted((decoder_run / "corpus").glob("*.parquet"))[0], columns=["sentence_id", "text"])
    texts = dict(zip(corpus.column(0).to_pylist(), corpus.column(1).to_pylist(), strict=True))
    rows = topk[topk.sentence_id.isin(texts) & (topk.char_end > topk.char_start)]
    assert len(rows)
    for row in rows.itertuples():  # the token of the max: visible characters, no leading space (byte-level BPE)
        assert not texts[row.sentence_id][row.char_start].isspace()
    assert (decoder_run / "browser" / "index.html").exists()
