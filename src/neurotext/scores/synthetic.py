"""A synthetic layer with planted neurons, for the tests and `benchmarks/scores.py`.

Sentences of random words with random PTB tags, flat random trees (a root and its children) and a domain. Four
features are each planted in `planted_share` of the sentences: the word ``zebra`` tagged NN (words), two tags no
other sentence has side by side (``FW SYM``, POS n-grams; the words stay random), a chain of depth 3
``(NN (VB (JJ)))`` (subtrees; random trees are flat) and the domain ``special`` (metadata). Neuron ``f`` (f < 4)
has activation 1 + noise where feature ``f`` is present and noise elsewhere, so its top K holds only planted
sentences when ``planted_share * n_sentences >= k``; neurons 4.. are pure noise. Files written (the scores stage's
inputs, `build_layer`): ``topk.parquet``, ``sentences.parquet`` (top K and sample), ``negatives.parquet``
(gathered negatives), ``negatives.npy`` (their activations), ``corpus_metadata.parquet``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from neurotext.artifacts.corpus import METADATA_FIELDS
from neurotext.artifacts.patterns import CORPUS_METADATA_SCHEMA, SENTENCES_SCHEMA
from neurotext.artifacts.topk import TOPK_SCHEMA
from neurotext.scores.split import negative_ids

TAGS = ("NN", "VB", "JJ", "DT", "IN", "RB", "PRP", "CC")
DOMAINS = ("news", "review", "wiki", "speech")
#: The planted features, in neuron order, and the kind that should explain each.
PLANTED: tuple[str, ...] = ("word", "posgram", "subtree", "metadata")
PLANTED_KIND = {"word": "words", "posgram": "posgrams", "subtree": "subtrees", "metadata": "metadata"}


@dataclass(frozen=True)
class SyntheticLayer:
    """Sizes of a synthetic layer (`build_layer`)."""

    n_sentences: int = 4000
    n_sample: int = 800
    n_negatives: int = 800
    k: int = 100
    n_random: int = 50
    planted_share: float = 0.03
    n_words: int = 150
    seed: int = 1

    @property
    def n_neurons(self) -> int:
        return len(PLANTED) + self.n_random


def _sentence(rng: np.random.Generator, feature: str | None, n_words: int) -> dict:
    n = int(rng.integers(6, 14))
    tokens = [f"w{i}" for i in rng.integers(0, n_words, n)]
    tags = [TAGS[i] for i in rng.integers(0, len(TAGS), n)]
    domain = DOMAINS[int(rng.integers(0, len(DOMAINS)))]
    extra = ""
    if feature == "word":
        i = int(rng.integers(0, n))
        tokens[i], tags[i] = "zebra", "NN"
    elif feature == "posgram":
        i = int(rng.integers(0, n - 1))
        tags[i], tags[i + 1] = "FW", "SYM"
    elif feature == "subtree":
        extra = " (NN (VB (JJ)))"
    elif feature == "metadata":
        domain = "special"
    tree = f"({tags[0]} {' '.join(f'({t})' for t in tags[1:])}{extra})"
    return {"tokens": tokens, "tags": tags, "tree": tree, "domain": domain}


def _sentences_table(ids: np.ndarray, rows: list[dict], which: np.ndarray, in_sample: np.ndarray) -> pa.Table:
    idx = np.searchsorted(ids, which)
    cols = {
        "sentence_id": which, "in_sample": in_sample, "tokens": [rows[i]["tokens"] for i in idx],
        "tags": [rows[i]["tags"] for i in idx], "tree": [rows[i]["tree"] for i in idx],
        "parsed": [True] * idx.size, "reason": [None] * idx.size,
    }  # fmt: skip
    for name in METADATA_FIELDS:
        cols[name] = [rows[i]["domain"] for i in idx] if name == "domain" else [None] * idx.size
    return pa.table([pa.array(cols[f.name], f.type) for f in SENTENCES_SCHEMA], schema=SENTENCES_SCHEMA)


def build_layer(root: str | os.PathLike[str], spec: SyntheticLayer = SyntheticLayer()) -> Path:
    """Write the synthetic layer's files under `root` (see the module docstring); returns `root` as a Path."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.seed)
    features = np.array([None] * spec.n_sentences, dtype=object)
    order = rng.permutation(spec.n_sentences)
    per = int(spec.planted_share * spec.n_sentences)
    for f, name in enumerate(PLANTED):
        features[order[f * per : (f + 1) * per]] = name
    rows = [_sentence(rng, features[i], spec.n_words) for i in range(spec.n_sentences)]
    ids = (np.uint32(1) << np.uint32(27)) | np.arange(spec.n_sentences, dtype=np.uint32)
    sample = np.sort(rng.choice(ids, spec.n_sample, replace=False))
    negs = negative_ids(ids, sample, spec.n_negatives, seed=5)
    acts = rng.normal(0.0, 0.1, (spec.n_sentences, spec.n_neurons))
    for f, name in enumerate(PLANTED):
        acts[features == name, f] += 1.0
    best = np.argsort(-acts, axis=0, kind="stable")[: spec.k].T  # [n_neurons, k]
    n = best.size
    topk = pa.table({
        "neuron": pa.array(np.repeat(np.arange(spec.n_neurons), spec.k), pa.int32()),
        "rank": pa.array(np.tile(np.arange(spec.k), spec.n_neurons), pa.int32()),
        "sentence_id": pa.array(ids[best.ravel()], pa.uint32()),
        "activation": pa.array(np.take_along_axis(acts.T, best, axis=1).ravel(), pa.float32()),
        "token_index": pa.array(np.zeros(n, np.int32)), "char_start": pa.array(np.zeros(n, np.int32)),
        "char_end": pa.array(np.ones(n, np.int32)),
    }, schema=TOPK_SCHEMA)  # fmt: skip
    pq.write_table(topk, root / "topk.parquet")
    gathered = np.union1d(topk["sentence_id"].to_numpy(), sample)
    pq.write_table(_sentences_table(ids, rows, gathered, np.isin(gathered, sample)), root / "sentences.parquet")
    pq.write_table(_sentences_table(ids, rows, negs, np.zeros(negs.size, bool)), root / "negatives.parquet")
    np.save(root / "negatives.npy", acts[np.searchsorted(ids, negs)].astype(np.float32))
    values, counts = np.unique([r["domain"] for r in rows], return_counts=True)
    meta = pa.table({"field": ["domain"] * values.size, "value": values.tolist(), "count": counts.astype(np.int64)},
                    schema=CORPUS_METADATA_SCHEMA)  # fmt: skip
    pq.write_table(meta, root / "corpus_metadata.parquet")
    return root
