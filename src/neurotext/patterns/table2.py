"""Table 2 (the ``table2`` job): the patterns of chosen neurons, one column each; ``tables/table2.{md,csv}``."""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from neurotext.artifacts.patterns import profile_class_names, read_patterns, read_profiles
from neurotext.config import ConfigError
from neurotext.ids import parse_neuron_name, unit_name
from neurotext.io import write_text
from neurotext.markdown import csv_text, escape_markdown
from neurotext.mining import KIND_LABELS, PATTERN_KINDS
from neurotext.mining.settings import check_block, check_int, require

PathLike = str | os.PathLike[str]

#: Keys of the ``table2`` config block.
TABLE2_KEYS = frozenset({"neurons", "seed", "count", "per_cell"})


@dataclass(frozen=True)
class Table2Settings:
    """The ``table2`` config block: explicit neurons (``L11.309``) or `count` drawn with `seed`; `per_cell` patterns
    (no defaults here: they are the config schema's, filled by `neurotext.validate`)."""

    neurons: tuple[str, ...]
    seed: int
    count: int
    per_cell: int

    @classmethod
    def from_config(cls, block: Mapping[str, Any] | None) -> Table2Settings:
        """The validated, defaults-filled ``table2`` block as settings (`ConfigError` naming a wrong key)."""
        block = check_block(block, "table2", TABLE2_KEYS)
        neurons = require(block, "neurons", "table2")
        if not isinstance(neurons, list) or not all(isinstance(n, str) for n in neurons):
            raise ConfigError(f"table2.neurons = {neurons!r}: give a list of neuron names like [L11.309, L6.200]")
        return cls(tuple(neurons), check_int(block, "seed", 0, "table2"), check_int(block, "count", 1, "table2"),
                   check_int(block, "per_cell", 1, "table2"))  # fmt: skip


def choose_neurons(
    settings: Table2Settings, layers: int | Sequence[int], n_neurons: int
) -> list[tuple[int, int]]:
    """The (layer, neuron) pairs of Table 2 and Figure 1: the configured names, in order, or `count` distinct ones
    drawn uniformly from `layers` (the scanned layers, 1-based; an int n = layers 1..n) x neurons 0..n_neurons-1
    with ``numpy.random.default_rng(seed)``."""
    layers = list(range(1, layers + 1)) if isinstance(layers, int) else sorted(layers)
    shown = f"{layers[0]}..{layers[-1]}" if layers == list(range(layers[0], layers[-1] + 1)) else str(layers)
    if settings.neurons:
        chosen = []
        for i, name in enumerate(settings.neurons):
            try:
                layer, neuron = parse_neuron_name(name)
            except ValueError as error:
                raise ConfigError(f"table2.neurons[{i}]: {error}") from None
            if not (layer in layers and 0 <= neuron < n_neurons):
                raise ConfigError(f"table2.neurons[{i}] = {name!r}: the model has layers {shown} and neurons "
                                  f"0..{n_neurons - 1}")  # fmt: skip
            chosen.append((layer, neuron))
        return chosen
    total = len(layers) * n_neurons
    if settings.count > total:
        raise ConfigError(f"table2.count = {settings.count}: the model has only {total} neurons")
    picks = np.random.default_rng(settings.seed).choice(total, size=settings.count, replace=False)
    return [(layers[int(p) // n_neurons], int(p) % n_neurons) for p in picks]


def _md_cell(text: str) -> str:
    return escape_markdown(text)


def table2_rows(
    patterns: pa.Table, profile: Mapping[str, Any], class_names: Sequence[str], per_cell: int, q_max: float
) -> list[tuple[str, str]]:
    """(row label, cell) pairs of one neuron's Table 2 column; ``†`` marks a pattern with q >= `q_max`."""

    def cell(kind: str, prefix: str | None = None) -> str:
        rows = patterns.filter(pc.equal(patterns["kind"], kind)).to_pylist()
        if prefix is not None:
            start = prefix + ":"
            rows = [{**r, "pattern": r["pattern"][len(start) :]} for r in rows if r["pattern"].startswith(start)]
        shown = [r["pattern"] + ("" if r["q"] < q_max else "†") for r in rows[:per_cell]]
        return ", ".join(shown) if shown else "-"

    out = [(f"{name.capitalize()}s", cell("words", name)) for name in class_names]
    out += [(KIND_LABELS[kind], cell(kind)) for kind in PATTERN_KINDS if kind != "words"]
    shares = " / ".join(_percent(profile[f"{name}_share"]) for name in class_names)
    background = " / ".join(_percent(profile[f"{name}_share_background"]) for name in class_names)
    out.append((" / ".join(class_names).capitalize() + " share", f"{shares} (sample {background})"))
    domain = profile["dominant_domain"]
    out.append(("Dominant domain", "-" if domain is None else f"{domain} {_percent(profile['dominant_domain_share'])} "
                f"(corpus {_percent(profile['dominant_domain_corpus_share'])})"))  # fmt: skip
    out.append(("Top sentences (unparsed)", f"{profile['n_top']} ({profile['n_top_unparsed']})"))
    return out


def _percent(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{100 * value:.1f}%"


def write_table2(
    patterns_files: Mapping[int, PathLike],
    profile_files: Mapping[int, PathLike],
    neurons: Sequence[tuple[int, int]],
    md_out: PathLike,
    csv_out: PathLike,
    per_cell: int = 3,
    q_max: float = 0.05,
    features: str = "neurons",
) -> list[list[str]]:
    """Table 2: one column per chosen (layer, neuron), rows of `table2_rows`; Markdown and CSV (same cells). Columns
    are named by `neurotext.ids.unit_name` (`features` = the run's ``model.features``: L6.12, or L6.f12 for latents).

    `patterns_files` / `profile_files` map a layer to its merged ``patterns/layer{L}.parquet`` /
    ``profiles/layer{L}.parquet``.
    """
    columns = []
    for layer, neuron in neurons:
        profile = read_profiles(profile_files[layer], neurons=[neuron]).to_pylist()
        if not profile:
            raise ValueError(f"{profile_files[layer]}: no profile for neuron {neuron}")
        class_names = profile_class_names(list(profile[0]))
        pats = read_patterns(patterns_files[layer], neurons=[neuron])
        columns.append(table2_rows(pats, profile[0], class_names, per_cell, q_max))
    header = ["", *(unit_name(layer, neuron, features) for layer, neuron in neurons)]
    labels = [label for label, _ in columns[0]] if columns else []
    grid = [header] + [[label, *(col[i][1] for col in columns)] for i, label in enumerate(labels)]
    md = ["| " + " | ".join(_md_cell(c) for c in grid[0]) + " |", "|" + "---|" * len(header)]
    md += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in grid[1:]]
    note = (f"\nPatterns of each neuron's top K, significant first, each group ranked by log-odds z against the "
            f"sample; † = q >= {q_max} (not significant); shares are of the parsed tokens of the top K (the sample's "
            "in parentheses).\n")
    write_text(md_out, "\n".join(md) + "\n" + note)
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([[csv_text(c) for c in row] for row in grid])
    write_text(csv_out, buffer.getvalue())
    return grid
