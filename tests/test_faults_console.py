"""Units behind the console and rerun fixes: failed-job reports (neurotext.failures) and per-stage config hashes
(neurotext.hashing). The workflow-level checks are in tests/test_faults_workflow.py."""

from __future__ import annotations

import copy
import io
import os
import time
from pathlib import Path

import yaml

from neurotext.failures import error_summary, failed_job_logs, job_warnings, report_failures
from neurotext.hashing import STAGE_KEYS, config_subset, stage_hash
from neurotext.validate import with_defaults

REPO = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((REPO / "config" / "test.yaml").read_text())

SNAKEMAKE_LOG = """\
[Mon Dec  7 02:21:25 2026]
Error in rule train_punkt:
    message: None
    jobid: 3
    input: tests/data/brown/corpus-brown-mini.tgz
    output: resources/punkt/test/movies.json
    log: results/test/logs/corpus/punkt_movies.log (check log file(s) for error details)
    wildcards: run=test, dataset=movies
Shutting down, this might take some time.
Error in rule b:
    jobid: 2
    log: logs/b1.log, logs/b2.log (check log file(s) for error details)
Exiting because a job execution failed. Look above for error messages
"""

JOB_LOG = """\
2026-12-07 02:21:24 INFO neurotext.corpus: reading
Traceback (most recent call last):
  File "/tmp/x.py", line 3, in <module>
    build_part(
  File "/work/src/neurotext/loaders/vader.py", line 112, in load
    raise SourceError(
neurotext.loaders.base.SourceError: tests/data/x.tgz: no member nope.txt; check datasets.<name>.member
"""


def test_failed_jobs_are_parsed_from_snakemakes_log():
    jobs = failed_job_logs(SNAKEMAKE_LOG)
    assert [(j.rule, j.wildcards, j.logs) for j in jobs] == [
        ("train_punkt", "run=test, dataset=movies", ("results/test/logs/corpus/punkt_movies.log",)),
        ("b", "", ("logs/b1.log", "logs/b2.log")),
    ]


def test_error_summary_is_the_exception():
    assert error_summary(JOB_LOG) == (
        "neurotext.loaders.base.SourceError: tests/data/x.tgz: no member nope.txt; check datasets.<name>.member"
    )
    assert error_summary("no traceback\nlast line") == "no traceback\nlast line"


def test_report_failures_prints_each_jobs_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    log = tmp_path / "results" / "test" / "logs" / "corpus" / "punkt_movies.log"
    log.parent.mkdir(parents=True)
    log.write_text(JOB_LOG)
    (tmp_path / "snakemake.log").write_text(SNAKEMAKE_LOG)
    out = io.StringIO()
    assert report_failures([tmp_path / "snakemake.log"], stream=out) == 2
    text = out.getvalue()
    assert "=== failed: train_punkt (run=test, dataset=movies)" in text
    assert "SourceError: tests/data/x.tgz: no member nope.txt" in text
    assert "cannot read the log" in text  # logs/b1.log does not exist


def test_job_warnings_of_this_run_only(tmp_path):
    old, new = tmp_path / "old.log", tmp_path / "sub" / "new.log"
    new.parent.mkdir()
    old.write_text("2026 WARNING neurotext.scan: stale\n")
    os.utime(old, (time.time() - 100, time.time() - 100))
    new.write_text("x INFO neurotext.scan: fine\nx WARNING neurotext.scan: layer 1: scan.k = 9 exceeds\n" * 2)
    assert job_warnings(tmp_path, since=time.time() - 50) == ["neurotext.scan: layer 1: scan.k = 9 exceeds"]


def test_stage_hash_ignores_keys_the_stage_does_not_read():
    edited = copy.deepcopy(CONFIG)
    edited["report"]["sentences_per_neuron"] = 99
    edited["relations"]["k"] = 5
    edited["scan"]["threads"] = 7
    assert stage_hash(edited, "shards") == stage_hash(CONFIG, "shards")
    assert stage_hash(edited, "topk") != stage_hash(CONFIG, "topk")  # scan.* is part of the scan's settings
    edited["scan"]["threads"] = CONFIG["scan"]["threads"]
    assert stage_hash(edited, "topk") == stage_hash(CONFIG, "topk")
    for stage in STAGE_KEYS:
        moved = copy.deepcopy(CONFIG)
        moved["corpus"]["seed"] += 1
        assert stage_hash(moved, stage) != stage_hash(CONFIG, stage)


def test_config_subset_keeps_nesting():
    assert config_subset({"model": {"path": "p", "site": "s"}, "x": 1}, ("model.path", "y.z")) == {"model": {"path": "p"}}


def test_no_rule_params_hold_the_whole_config_hash():
    """A hash in a rule's params is a stage hash: CONFIG_HASH (the whole config) would rerun the job after any edit."""
    rules = "".join(path.read_text() for path in sorted((REPO / "workflow" / "rules").glob("*.smk")))
    assert "=CONFIG_HASH" not in rules.replace(" ", "")


def test_merge_topk_warns_when_k_exceeds_the_corpus(tmp_path, write_corpus, tiny_model_dir, caplog):
    """Before, a K above the corpus's sentence count silently kept fewer rows and the patterns came out empty."""
    from neurotext.scan import merge_topk, scan_shard
    from neurotext.shards import make_shard

    corpus = write_corpus(tmp_path / "c.parquet", ["A first small sentence here.", "Another one follows it."])
    make_shard(str(corpus), 0, 1, str(tiny_model_dir), 16, str(tmp_path / "s.parquet"), "")
    scan = with_defaults("scan", {"k": 8, "token_budget": 256, "device": "cpu", "threads": 1})
    model = with_defaults("model", {"path": str(tiny_model_dir), "max_length": 16})
    scan_shard(str(tmp_path / "s.parquet"), str(tiny_model_dir), model, scan, str(tmp_path / "a.npz"))
    with caplog.at_level("WARNING", logger="neurotext.scan"):
        merge_topk([str(tmp_path / "a.npz")], [str(tmp_path / "s.parquet")], 1, 8, str(tmp_path / "t.parquet"), "")
    assert "layer 1: scan.k = 8 exceeds the corpus's 2 sentences" in caplog.text


def test_patterns_merge_warns_when_no_neuron_has_a_pattern(tmp_path, caplog):
    import pyarrow as pa

    from neurotext.io import write_parquet
    from neurotext.mining import PATTERN_KINDS
    from neurotext.patterns.merge import merge_layer

    files = {}
    for name in (*PATTERN_KINDS, "profile", "metadata"):
        write_parquet(pa.table({"neuron": pa.array([], pa.int32())}), tmp_path / f"{name}.parquet")
        files[name] = [tmp_path / f"{name}.parquet"]
    with caplog.at_level("WARNING", logger="neurotext.patterns"):
        merge_layer(files, tmp_path / "p.parquet", tmp_path / "pr.parquet", tmp_path / "m.parquet")
    assert "no patterns for any neuron of the layer" in caplog.text and "lower scan.k" in caplog.text
