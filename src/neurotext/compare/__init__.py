"""Comparisons across runs. `units`: how well mined patterns explain a neuron run's neurons against an SAE run's
latents, per layer, from the two runs' explanation scores (workflow/rules/compare.smk; the README's "Decoder models,
sites, directions and SAEs")."""

from neurotext.compare.units import (
    CompareSettings,
    ComparisonRow,
    GroupStats,
    UnitAurocs,
    compare_layer,
    comparison_rows,
    mannwhitney_p,
    neurons_vs_latents,
    p_higher,
)

__all__ = [
    "CompareSettings",
    "ComparisonRow",
    "GroupStats",
    "UnitAurocs",
    "compare_layer",
    "comparison_rows",
    "mannwhitney_p",
    "neurons_vs_latents",
    "p_higher",
]
