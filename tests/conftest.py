"""Shared fixtures: a tiny random BERT model directory and the committed scan sentences.

`tiny_model_dir` (session scope) is built once per test session with `neurotext.tinymodel.make_tiny_model`
(2 layers, hidden 32, intermediate 64, seed 0), its WordPiece vocabulary built from `tests/data/scan/sentences.txt`;
any ASCII text tokenizes with it (characters are in the vocabulary). The `write_corpus` fixture writes a corpus parquet in
`artifacts.corpus.CORPUS_SCHEMA` from plain texts.

`e2e_run` (session scope) is ONE end-to-end run of the real Snakefile on config/test.yaml (plus `resources.gpu: 1`,
which a local run ignores, so the SLURM test compares the same config) in a temporary working directory, shared by
every test file that checks a whole run: treat it as read-only (copy it before changing anything). Under
pytest-xdist it is built once per session for all workers (a file lock; a failed run fails every user with its
output). `e2e_workflow` gives the helpers to make more runs (`prepare`, `run`, `configs`).

Parallel runs (`make test`: `pytest -n 2 --dist loadgroup`): every test file is one xdist group, so module fixtures
are built once; files with end-to-end tests (marker `e2e`, or using `e2e_run`) share the group `e2e`, the SLURM file
is the group `slurm`: each runs its tests one after another on one worker while the other files fill the other.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import settings

# Property tests check results, not speed: on a loaded 2-core machine an example's wall time says nothing, so no
# per-example deadline (speed lives in benchmarks/).
settings.register_profile("neurotext", deadline=None)
settings.load_profile("neurotext")

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
TEST_CONFIG = REPO / "config" / "test.yaml"
SCAN_SENTENCES = DATA / "scan" / "sentences.txt"


def read_lines(path: Path) -> list[str]:
    """Non-empty lines of a UTF-8 text file."""
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="session")
def scan_sentences() -> list[str]:
    """300 real sentences (tweets, review and editorial snippets) from tests/data/scan/sentences.txt."""
    return read_lines(SCAN_SENTENCES)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, scan_sentences) -> Path:
    """A tiny random BERT directory (config.json, model.safetensors, fast tokenizer), read-only by convention."""
    from neurotext.tinymodel import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny_model") / "tiny-bert", texts=scan_sentences)


def _write_corpus(
    path: Path, texts: list[str], dataset_code: int = 1, dataset: str = "test", config_hash: str = ""
) -> Path:
    """Write `texts` as a corpus parquet (CORPUS_SCHEMA, rows in order, sentence ids code << 27 | row)."""
    from neurotext.artifacts.corpus import CORPUS_SCHEMA
    from neurotext.ids import make_sentence_ids
    from neurotext.io import write_parquet

    n = len(texts)
    columns = {
        "sentence_id": pa.array(make_sentence_ids(dataset_code, np.arange(n), dataset), pa.uint32()),
        "dataset": pa.array([dataset] * n, pa.string()),
        "doc_id": pa.array([f"doc{i // 10}" for i in range(n)], pa.string()),
        "text": pa.array(texts, pa.string()),
    }
    for field in CORPUS_SCHEMA:
        if field.name not in columns:
            columns[field.name] = pa.nulls(n, field.type)
    table = pa.Table.from_arrays([columns[f.name] for f in CORPUS_SCHEMA], schema=CORPUS_SCHEMA)
    write_parquet(table, path, config_hash)
    return path


@pytest.fixture(scope="session")
def write_corpus():
    """A function (path, texts, dataset_code=1, dataset='test', config_hash='') -> path that writes a corpus
    parquet in CORPUS_SCHEMA from plain texts (metadata columns null, ten sentences a document)."""
    return _write_corpus


# ------------------------------------------------------------------------------------------- end-to-end runs, groups
SERIAL_GROUP = "e2e"


def pytest_collection_modifyitems(config, items) -> None:
    """One xdist group per test file (module fixtures built once under `--dist loadgroup`); files holding SLURM
    tests in the group `slurm`, other files holding e2e tests or using `e2e_run` in the group `e2e`: each group runs
    on one worker, one test after another."""
    slurm_files = {item.path for item in items if item.get_closest_marker("slurm")}
    e2e_files = {item.path for item in items if item.get_closest_marker("e2e") or "e2e_run" in item.fixturenames}
    for item in items:
        if item.path in slurm_files:
            group = "slurm"
        elif item.path in e2e_files:
            group = SERIAL_GROUP
        else:
            group = item.path.stem
        item.add_marker(pytest.mark.xdist_group(group))


@dataclass(frozen=True)
class E2EWorkflow:
    """Helpers to run the real Snakefile on the test config in a working directory."""

    repo: Path = REPO

    def prepare(self, workdir: Path) -> Path:
        """A fresh working directory with the fixtures (tests/ linked), a tiny random BERT and `gpu.yaml`
        (resources.gpu = 1)."""
        from neurotext.tinymodel import make_tiny_bert

        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "tests").symlink_to(REPO / "tests")
        make_tiny_bert(workdir / "resources" / "tiny-bert")
        (workdir / "gpu.yaml").write_text("resources:\n  gpu: 1\n")
        return workdir

    def configs(self, workdir: Path) -> list[str]:
        """The config files of the shared run: config/test.yaml, then the workdir's gpu.yaml."""
        return [str(TEST_CONFIG), str(workdir / "gpu.yaml")]

    def command(self, workdir: Path, *args: str) -> list[str]:
        """`snakemake` on the repository's Snakefile in `workdir` with the shared run's config files."""
        return [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
                "--configfile", *self.configs(workdir), "--quiet", "rules", *args]  # fmt: skip

    def run(self, workdir: Path, *args: str, timeout: int = 1200) -> subprocess.CompletedProcess:
        """Run the workflow in `workdir` (`prepare` it first); fail the test with its output and logs on error."""
        env = {**os.environ, "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1"}
        result = subprocess.run(self.command(workdir, *args), capture_output=True, text=True, timeout=timeout,
                                env=env)  # fmt: skip
        if result.returncode != 0:
            pytest.fail(failure_message(workdir, result), pytrace=False)
        return result


def failure_message(workdir: Path, result: subprocess.CompletedProcess) -> str:
    """snakemake's output and the tails of the run's job logs."""
    logs = "\n".join(f"--- {p}\n{p.read_text()[-3000:]}" for p in sorted(workdir.glob("results/*/logs/**/*.log")))
    return f"snakemake failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-8000:]}\n{logs}"


@pytest.fixture(scope="session")
def e2e_workflow() -> E2EWorkflow:
    """Helpers to make end-to-end runs of the test config (see `E2EWorkflow`)."""
    return E2EWorkflow()


@pytest.fixture(scope="session")
def e2e_run(tmp_path_factory, e2e_workflow) -> Path:
    """The working directory of the shared end-to-end run (results in `results/test/`); read-only."""
    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # shared by the session's workers
    root = base / "e2e-shared"
    status = base / "e2e-shared.json"
    with FileLock(str(base / "e2e-shared.lock")):
        if not status.exists():
            workdir = e2e_workflow.prepare(root / "work")
            env = {**os.environ, "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1"}
            # every job writes the modules it imported into root / "imports" (checked by tests/test_envs.py)
            env |= {"NEUROTEXT_IMPORT_TRACE": str(root / "imports"), "PYTHONPATH": os.pathsep.join(
                [str(REPO / "tests" / "import_trace"), *filter(None, [os.environ.get("PYTHONPATH")])])}  # fmt: skip
            result = subprocess.run(e2e_workflow.command(workdir, "--cores", "2"), capture_output=True, text=True,
                                    timeout=1800, env=env)  # fmt: skip
            message = "" if result.returncode == 0 else failure_message(workdir, result)
            status.write_text(json.dumps({"workdir": str(workdir), "error": message}))
    outcome = json.loads(status.read_text())
    if outcome["error"]:
        pytest.fail(f"the shared end-to-end run failed:\n{outcome['error']}", pytrace=False)
    return Path(outcome["workdir"])
