"""Shared fixtures: a tiny random BERT model directory and the committed scan sentences.

`tiny_model_dir` (session scope) is built once per test session with `neurotext.tinymodel.make_tiny_model`
(2 layers, hidden 32, intermediate 64, seed 0), its WordPiece vocabulary built from `tests/data/scan/sentences.txt`;
any ASCII text tokenizes with it (characters are in the vocabulary). The `write_corpus` fixture writes a corpus parquet in
`formats.CORPUS_SCHEMA` from plain texts.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

DATA = Path(__file__).resolve().parent / "data"
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
    from neurotext.formats import CORPUS_SCHEMA
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
