"""The corpus stage through the real Snakefile: Table 1 without a model, errors naming the config key, the console
summary. Small configs on the committed fixtures (one 4-job run, the rest dry runs)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
TWEETS = REPO / "tests" / "data" / "vader" / "tweets_GroundTruth.txt"
CORPUS = {"max_sentences_per_dataset": None, "seed": 13, "punkt_model": "train", "clean": {}}
MODEL = {"path": "/nonexistent/model", "site": "hidden", "pooling": "max", "max_length": 32}

pytestmark = pytest.mark.slow


def snakemake(workdir: Path, config: dict, *args: str, dry_run: bool = True) -> subprocess.CompletedProcess:
    """Run the repository's Snakefile in `workdir` on `config` (targets in `args`); output in stdout."""
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
               "--cores", "2", *(["-n"] if dry_run else []), *args, "--configfile", str(workdir / "config.yaml")]  # fmt: skip
    env = {**os.environ, "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, cwd=workdir)


def corpus_only(run: str, path: Path | str = TWEETS) -> dict:
    return {"run": run, "datasets": {"tweets": {"code": 3, "format": "vader", "path": str(path), "domain": "twitter"}},
            "corpus": CORPUS}  # fmt: skip


def test_corpus_and_table1_build_without_a_model_and_print_a_summary(tmp_path: Path) -> None:
    done = snakemake(tmp_path, corpus_only("c"), dry_run=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-5000:]
    results = tmp_path / "results" / "c"
    assert (results / "tables" / "table1.md").is_file() and (results / "corpus" / "tweets.losses.tsv").is_file()
    assert {p.name for p in results.iterdir()} <= {"benchmarks", "corpus", "logs", "tables"}  # no model stage ran
    assert "Corpus summary" in output and "tweets: 103 sentences in 66 documents; 74 documents read, 8 lost" in output
    header = (results / "tables" / "table1.csv").read_text().splitlines()[0]
    assert header.endswith("Documents read,Lost: cleaning,Lost: duplicates,Bad records")


def test_a_missing_dataset_path_is_named_by_its_key(tmp_path: Path) -> None:
    done = snakemake(tmp_path, corpus_only("m", tmp_path / "absent.txt"))
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert f"datasets.tweets.path = '{tmp_path / 'absent.txt'}': no such file or folder" in output
    assert "Datasets: accepted layouts" in output


def test_an_unresolvable_model_stops_only_the_targets_that_need_it(tmp_path: Path) -> None:
    config = {
        **corpus_only("b"),
        "model": MODEL,
        "scan": {"k": 10, "token_budget": 1000},
        "sample": {"size": 10, "seed": 1},
    }
    table1 = snakemake(tmp_path, config, "results/b/tables/table1.md")
    assert table1.returncode == 0, (table1.stdout + table1.stderr)[-5000:]
    for args in [(), ("results/b/topk/base/layer1.parquet",)]:
        done = snakemake(tmp_path, config, *args)
        assert done.returncode != 0
        assert "model.path = '/nonexistent/model': no model directory" in done.stdout + done.stderr
