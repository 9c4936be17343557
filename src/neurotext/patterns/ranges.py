"""One range of neurons of one layer profiled (the ``patterns_range`` job): ``patterns/{kind}/layer{L}/n{start:05d}-
{end:05d}.parquet`` for every entry of `RANGE_OUTPUTS`; docs/ARCHITECTURE.md, "Pattern mining"."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from neurotext.artifacts.patterns import (
    METADATA_SCHEMA,
    PATTERNS_SCHEMA,
    profile_schema,
    read_corpus_metadata,
    read_sentences,
)
from neurotext.artifacts.topk import read_top_sentences
from neurotext.io import write_parquet
from neurotext.logs import progress
from neurotext.mining import PATTERN_KINDS, Background, NeuronProfile, PatternSettings, encode_sentences, profile_neuron

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]

#: Every per-range output: the pattern kinds, the metadata and the profile.
RANGE_OUTPUTS: tuple[str, ...] = (*PATTERN_KINDS, "metadata", "profile")


def neuron_ranges(n_neurons: int, neurons_per_job: int) -> list[tuple[int, int]]:
    """Half-open neuron ranges ``[start, end)`` of at most `neurons_per_job` neurons covering ``0..n_neurons-1``."""
    if n_neurons < 0 or neurons_per_job < 1:
        raise ValueError("need n_neurons >= 0 and neurons_per_job >= 1")
    return [(s, min(s + neurons_per_job, n_neurons)) for s in range(0, n_neurons, neurons_per_job)]


def range_name(start: int, end: int) -> str:
    """File stem of a neuron range: ``n00000-00128`` (end exclusive)."""
    return f"n{start:05d}-{end:05d}"


def _pattern_table(profiles: Sequence[NeuronProfile], kind: str) -> pa.Table:
    columns: dict[str, list[Any]] = {f.name: [] for f in PATTERNS_SCHEMA}
    for prof in profiles:
        rows = prof.patterns[kind]
        columns["neuron"] += [prof.neuron] * len(rows)
        for name in columns:
            if name != "neuron":
                columns[name] += getattr(rows, name)
    return pa.table(columns, schema=PATTERNS_SCHEMA)


def _rows_table(rows: Sequence[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    return pa.table({f.name: [r[f.name] for r in rows] for f in schema}, schema=schema)


def profile_range(
    topk: PathLike,
    sentences: PathLike,
    corpus_metadata: PathLike,
    start: int,
    end: int,
    settings: PatternSettings | Mapping[str, Any],
    outputs: Mapping[str, PathLike],
    config_hash: str = "",
) -> list[NeuronProfile]:
    """Profile neurons ``start <= n < end`` and write one file per entry of `RANGE_OUTPUTS` (keys of `outputs`).

    Inputs: the layer's top-K file, its gathered sentences (`gather_sentences`) and the corpus metadata counts
    (`count_corpus_metadata`). A neuron absent from the top-K file is profiled with no top sentences.
    """
    if not isinstance(settings, PatternSettings):
        settings = PatternSettings.from_config(settings)
    missing = [k for k in RANGE_OUTPUTS if k not in outputs]
    if missing:
        raise ValueError(f"profile_range needs an output path for {', '.join(missing)}")
    tops = read_top_sentences(topk, start, end)
    top_ids = np.unique(np.concatenate([np.zeros(0, np.uint32), *tops.values()]))
    table = read_sentences(sentences, top_ids, with_sample=True)
    corpus_counts = read_corpus_metadata(corpus_metadata)
    try:
        enc = encode_sentences(table, corpus_counts, settings.word_classes)
    except ValueError as error:
        raise ValueError(f"{sentences}: {error}") from None
    bg = Background.build(enc)
    log.info("neurons %d-%d: %d sentences encoded (%d in the sample, %d parsed)",
             start, end - 1, len(enc), int(enc.in_sample.sum()), int(enc.parsed.sum()))  # fmt: skip
    profiles = []
    for neuron in progress(range(start, end), desc=f"neurons {start}-{end - 1}", unit="neuron"):
        rows = enc.rows_of(tops.get(neuron, np.zeros(0, np.uint32)))
        profiles.append(profile_neuron(enc, bg, neuron, rows, corpus_counts, settings))
    for kind in PATTERN_KINDS:
        write_parquet(_pattern_table(profiles, kind), outputs[kind], config_hash)
    metadata = [row for prof in profiles for row in prof.metadata]
    write_parquet(_rows_table(metadata, METADATA_SCHEMA), outputs["metadata"], config_hash)
    write_parquet(_rows_table([p.row for p in profiles], profile_schema(settings.class_names)), outputs["profile"],
                  config_hash)  # fmt: skip
    return profiles
