"""What the patterns rules need when the DAG is built (workflow/rules/patterns.smk calls `patterns_plan` once): the
checked settings, the neuron ranges of the range jobs and the neurons of Table 2 and Figure 1."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from neurotext.artifacts.paths import rule_path
from neurotext.mining import PatternSettings
from neurotext.patterns.ranges import RANGE_OUTPUTS, neuron_ranges, range_name
from neurotext.patterns.table2 import Table2Settings, choose_neurons


@dataclass(frozen=True)
class PatternsPlan:
    """The ``patterns`` and ``table2`` blocks checked, the range file stems (``n00000-00128``) covering every neuron
    and the chosen (layer, neuron) pairs of Table 2 and Figure 1."""

    settings: PatternSettings
    table2: Table2Settings
    ranges: tuple[str, ...]
    table2_neurons: tuple[tuple[int, int], ...]

    @property
    def table2_layers(self) -> list[int]:
        """The layers of the chosen neurons, sorted."""
        return sorted({layer for layer, _ in self.table2_neurons})

    def range_outputs(self) -> dict[str, str]:
        """The ``patterns_range`` rule's named outputs: one ``results/{run}/patterns/{kind}/layer{layer}/n{start}-
        {end}.parquet`` per entry of `RANGE_OUTPUTS` (wildcards run, layer, start, end left to Snakemake)."""
        return {kind: rule_path("pattern_range").replace("{kind}", kind) for kind in RANGE_OUTPUTS}

    def merge_inputs(self) -> dict[str, list[str]]:
        """The ``patterns_merge`` rule's named inputs: per entry of `RANGE_OUTPUTS`, its file of every range of the
        layer (wildcards run and layer left to Snakemake)."""
        return {kind: [path.replace("n{start}-{end}", name) for name in self.ranges]
                for kind, path in self.range_outputs().items()}  # fmt: skip


def patterns_plan(config: Mapping[str, Any], layers: Sequence[int], n_neurons: int) -> PatternsPlan:
    """The plan for a config, the scanned `layers` (1-based) and `n_neurons` per layer (ConfigError naming the key)."""
    settings = PatternSettings.from_config(config["patterns"])  # validated: the schema's defaults are filled in
    table2 = Table2Settings.from_config(config["table2"])
    ranges = tuple(range_name(start, end) for start, end in neuron_ranges(n_neurons, settings.neurons_per_job))
    return PatternsPlan(settings, table2, ranges, tuple(choose_neurons(table2, layers, n_neurons)))
