"""First readable outputs: a Markdown page per layer listing each neuron's top sentences with the max-activating
token marked, and `provenance.json` (what produced the results)."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from neurotext.artifacts.corpus import read_texts
from neurotext.config import config_hash
from neurotext.ids import unit_name
from neurotext.io import read_config_hash, write_json, write_text
from neurotext.markdown import escape_markdown


def mark_span(text: str, start: int, end: int) -> str:
    """`text` escaped for Markdown with characters [start, end) in bold; an empty span marks nothing."""
    if not 0 <= start < end <= len(text):
        return escape_markdown(text)
    return escape_markdown(text[:start]) + "**" + escape_markdown(text[start:end]) + "**" + escape_markdown(text[end:])


def read_sentences(corpus_files: list[str], sentence_ids: pa.Array) -> dict[int, str]:
    """Texts of the given sentence ids, read from the corpus parquet files (ids in no file are left out)."""
    return read_texts(corpus_files, np.asarray(sentence_ids, dtype=np.uint32), missing="skip")


def write_layer_page(
    topk: str, corpus_files: list[str], layer: int, sentences_per_neuron: int, out: str, features: str = "neurons"
) -> None:
    """Markdown page for one layer: for every neuron, its top `sentences_per_neuron` sentences, best first, with
    the token that gave the sentence its activation in bold and the activation value. `features` (`model.features`)
    names the units: L6.12 for neurons, L6.f12 for directions and SAE latents."""
    table = pq.read_table(topk).filter(pc.less(pc.field("rank"), sentences_per_neuron))
    texts = read_sentences(corpus_files, pa.array(pc.unique(table["sentence_id"])))
    rows = table.sort_by([("neuron", "ascending"), ("rank", "ascending")]).to_pylist()
    lines = [
        f"# Layer {layer}: top sentences per neuron",
        "",
        f"Each neuron's {sentences_per_neuron} most activating sentences (sentence activation = the run's pooling "
        "over tokens); the **bold** span is the token with the maximum activation. "
        f"Config hash `{read_config_hash(topk)}`.",
        "",
    ]
    current = None
    for row in rows:
        if row["neuron"] != current:
            current = row["neuron"]
            lines += ["", f"## {unit_name(layer, current, features)}", ""]
        text = texts.get(row["sentence_id"], "")
        marked = mark_span(text, row["char_start"], row["char_end"])
        lines.append(f"{row['rank'] + 1}. `{row['activation']:.3f}` {marked}")
    write_text(out, "\n".join(lines) + "\n")


def _git_state(repo: str) -> tuple[str, bool | None]:
    try:
        commit = subprocess.run(
            ["git", "-C", repo, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "-C", repo, "status", "--porcelain", "--untracked-files=no"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        )
        return commit, dirty
    except (OSError, subprocess.CalledProcessError):
        return "unknown", None


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def directory_sha256(directory: str | os.PathLike[str]) -> str:
    """SHA-256 over the relative paths and contents of every file in `directory` (sorted)."""
    root = Path(directory)
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(sha256_file(path).encode())
    return digest.hexdigest()


PROVENANCE_PACKAGES = (
    "numpy", "pyarrow", "torch", "transformers", "tokenizers", "nltk", "spacy", "scikit-learn", "snakemake",
)  # fmt: skip


def write_provenance(config: dict, model_dir: str, source_files: list[str], repo: str, out: str) -> dict:
    """Write `provenance.json`: git commit and dirty flag, config and its hash, package versions, the model
    directory's sha256, source checksums, device, dtype and threads."""
    commit, dirty = _git_state(repo)
    versions = {}
    for package in PROVENANCE_PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    try:
        import torch

        cuda = torch.cuda.is_available()
        device = torch.cuda.get_device_name(0) if cuda else f"cpu ({platform.processor() or platform.machine()})"
    except ImportError:  # pragma: no cover - torch is a dependency
        device = "unknown"
    scan = config["scan"]  # validated: check_config requires scan with model and fills its defaults
    provenance = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git_commit": commit,
        "git_dirty": dirty,
        "config_hash": config_hash(config),
        "config": config,
        "packages": versions,
        "python": platform.python_version(),
        "model": {"path": config["model"]["path"], "directory": model_dir, "sha256": directory_sha256(model_dir)},
        "sources": {path: sha256_file(path) for path in sorted(source_files)},
        "device": device,
        "dtype": scan["dtype"],
        "threads": scan["threads"],
        "host": platform.node(),
    }
    write_json(out, json.loads(json.dumps(provenance, default=str)))
    return provenance
