"""Neurons against latents: how well mined patterns explain one run's units (a neuron run's neurons) next to another
run's (an SAE run's latents), layer by layer, from the two runs' explanation scores (``scores/layer{L}.parquet``,
`neurotext.artifacts.scores`). Writes ``tables/neurons_vs_latents.{md,csv}`` and
``figures/neurons_vs_latents.{png,pdf}`` (`neurotext.artifacts.compare`).

Per layer and predictor (the pattern kinds, metadata and ``all``, then the controls derangement, length and bow):
each group's detection AUROC distribution (units whose AUROC is undefined, e.g. a latent with no test top sentence,
are left out), the median difference (latents minus neurons), the probability that a random latent's AUROC is above
a random neuron's (ties count half; the Mann-Whitney U of the latents over ``n_neurons * n_latents``; 0.5 = no
difference), the two-sided Mann-Whitney p-value (normal approximation with tie correction), and per kind the share
of units whose AUROC is above their own controls (max of 0.5, the derangement and the length control: the scores
summary's ``control_auroc``).

SAE latents that fire on fewer than K sentences fill the rest of their top K with zero activations (a dead latent's
top K is the K lowest sentence ids), so their "top sentences" are arbitrary and their scores meaningless: in a run
whose ``model.features`` is ``sae``, only the units whose every top-K activation is above 0 are compared (the
others are counted as left out).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neurotext.artifacts.compare import COMPARE_COLUMNS
from neurotext.artifacts.paths import RunPaths
from neurotext.artifacts.provenance import run_features
from neurotext.artifacts.scores import CONTROLS, KINDS, read_scores, scores_matrix
from neurotext.artifacts.topk import read_topk
from neurotext.config import ConfigError
from neurotext.io import write_text

PathLike = str | os.PathLike[str]

#: Keys of the ``compare`` config block.
COMPARE_KEYS = frozenset({"neurons_run"})
#: Colours of the two groups in the figure.
GROUP_COLORS = {"neurons": "#4c72b0", "latents": "#dd8452"}


@dataclass(frozen=True)
class CompareSettings:
    """The ``compare`` config block: `neurons_run` names the run whose units this run's are compared with, a run
    name under `results` (``demo``: ``results/demo``) or a path to a run directory (holding a ``/``); None = no
    comparison (the block is absent)."""

    neurons_run: str | None = None

    @classmethod
    def from_config(cls, block: Mapping[str, Any] | None) -> CompareSettings:
        """Validate the ``compare`` block; a wrong or unknown key raises `ConfigError` naming it and the fix."""
        if block is None:
            return cls()
        if not isinstance(block, Mapping):
            raise ConfigError(f"compare = {block!r}: give a mapping, e.g. compare: {{neurons_run: demo}}")
        unknown = sorted(set(block) - COMPARE_KEYS)
        if unknown:
            raise ConfigError(f"compare: unknown key(s) {unknown}; known keys are {sorted(COMPARE_KEYS)}")
        run = block.get("neurons_run")
        if not isinstance(run, str) or not run.strip():
            raise ConfigError(f"compare.neurons_run = {run!r}: give the neuron run to compare with, a run name "
                              "under results/ (demo) or a run directory")  # fmt: skip
        return cls(run.strip())

    def neurons_root(self, results: PathLike = "results") -> Path:
        """The neuron run's directory: ``{results}/{neurons_run}``, or `neurons_run` itself when it is a path."""
        if self.neurons_run is None:
            raise ConfigError("compare.neurons_run is not set: no run to compare with")
        return Path(self.neurons_run) if "/" in self.neurons_run else Path(results) / self.neurons_run


@dataclass(frozen=True)
class GroupStats:
    """One group's AUROCs for one predictor: units with a defined AUROC, median, quartiles, and the share above
    their own controls (NaN for a control, or without controls)."""

    n: int
    median: float
    q25: float
    q75: float
    above_controls: float


@dataclass(frozen=True)
class ComparisonRow:
    """One (layer, predictor) row of the table (`COMPARE_COLUMNS`)."""

    layer: int
    kind: str
    neurons: GroupStats
    latents: GroupStats
    median_difference: float  # latents minus neurons
    p_latent_higher: float  # P(latent AUROC > neuron AUROC) + half the ties
    mannwhitney_p: float
    neurons_left_out: int = 0  # scored units of the layer left out (not firing on their whole top K)
    latents_left_out: int = 0

    def cells(self) -> list[object]:
        """The row's values in `COMPARE_COLUMNS` order."""
        a, b = self.neurons, self.latents
        return [self.layer, self.kind, a.n, b.n, self.neurons_left_out, self.latents_left_out, a.median, a.q25,
                a.q75, b.median, b.q25, b.q75,
                self.median_difference, self.p_latent_higher, self.mannwhitney_p, a.above_controls,
                b.above_controls]  # fmt: skip


@dataclass(frozen=True)
class UnitAurocs:
    """One run's AUROCs at one layer: ``values[kind]`` float64 ``[n_units]`` (NaN = undefined) for every predictor
    present, each unit's control AUROC (max of 0.5, derangement, length; float64 ``[n_units]``), the unit ids
    (int32 ``[n_units]``) and how many scored units were left out (`keep_units`)."""

    values: dict[str, np.ndarray]
    controls: np.ndarray
    units: np.ndarray | None = None
    left_out: int = 0

    @classmethod
    def from_table(cls, table: Any) -> UnitAurocs:
        """From a `SCORES_SCHEMA` table (`neurotext.artifacts.scores.read_scores`)."""
        units, kinds, auc = scores_matrix(table, "auroc")
        values = {kind: auc[:, i] for i, kind in enumerate(kinds)}
        controls = np.full(auc.shape[0], 0.5)
        for name in ("derangement", "length"):
            if name in values:
                controls = np.fmax(controls, values[name])
        return cls(values, controls, units)

    def keep_units(self, keep: np.ndarray) -> UnitAurocs:
        """Only the units whose ids are in `keep`; the others are added to `left_out`."""
        units = self.units if self.units is not None else np.arange(self.controls.size, dtype=np.int32)
        mask = np.isin(units, keep)
        return UnitAurocs({k: v[mask] for k, v in self.values.items()}, self.controls[mask], units[mask],
                          self.left_out + int((~mask).sum()))  # fmt: skip


def firing_units(topk: PathLike) -> np.ndarray:
    """Ids (int32, sorted) of the units of a top-K file whose every top-K activation is above 0 and whose top K is
    as long as the longest (K rows); a latent firing on fewer than K sentences fails."""
    table = read_topk(topk, columns=["neuron", "activation"])
    neuron = table["neuron"].to_numpy().astype(np.int32)
    positive = table["activation"].to_numpy() > 0
    units, rows = np.unique(neuron, return_counts=True)
    firing = np.bincount(np.searchsorted(units, neuron[positive]), minlength=units.size)
    return units[(firing == rows) & (rows == (rows.max() if rows.size else 0))]


def p_higher(first: np.ndarray, second: np.ndarray) -> float:
    """P(a value of `second` is above a value of `first`) + half P(equal), over all pairs (NaNs dropped); NaN when a
    group is empty. Equals the Mann-Whitney U of `second` over ``len(first) * len(second)``."""
    a, b = _defined(first), _defined(second)
    if not a.size or not b.size:
        return float("nan")
    ranks = _ranks(np.concatenate([a, b]))
    u_second = ranks[a.size :].sum() - b.size * (b.size + 1) / 2
    return float(u_second / (a.size * b.size))


def mannwhitney_p(first: np.ndarray, second: np.ndarray) -> float:
    """Two-sided Mann-Whitney p-value (normal approximation with tie and continuity correction, as scipy's
    ``method="asymptotic"``); NaN when a group is empty or every value is tied."""
    a, b = _defined(first), _defined(second)
    if not a.size or not b.size:
        return float("nan")
    from scipy.stats import mannwhitneyu

    if np.unique(np.concatenate([a, b])).size < 2:
        return float("nan")
    return float(mannwhitneyu(a, b, alternative="two-sided", method="asymptotic").pvalue)


def _defined(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    return v[~np.isnan(v)]


def _ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties get their mean rank."""
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], values.size]
    mean_rank = (starts + ends + 1) / 2.0  # ranks starts+1 .. ends
    ranks = np.empty(values.size)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def group_stats(values: np.ndarray, controls: np.ndarray | None) -> GroupStats:
    """`GroupStats` of one predictor's AUROCs; `controls` (the units' control AUROCs) None for a control row."""
    defined = _defined(values)
    if not defined.size:
        return GroupStats(0, float("nan"), float("nan"), float("nan"), float("nan"))
    above = float("nan")
    if controls is not None:
        ok = ~np.isnan(values)
        above = float(np.mean(values[ok] > controls[ok]))
    q25, median, q75 = (float(x) for x in np.quantile(defined, [0.25, 0.5, 0.75]))
    return GroupStats(int(defined.size), median, q25, q75, above)


def compare_layer(layer: int, neurons: UnitAurocs, latents: UnitAurocs) -> list[ComparisonRow]:
    """The table rows of one layer: every predictor either run has, kinds first, then the controls."""
    rows = []
    empty = np.zeros(0)
    for kind in (*KINDS, *CONTROLS):
        if kind not in neurons.values and kind not in latents.values:
            continue
        a = neurons.values.get(kind, empty)
        b = latents.values.get(kind, empty)
        is_kind = kind in KINDS
        sa = group_stats(a, neurons.controls if is_kind and a.size else None)
        sb = group_stats(b, latents.controls if is_kind and b.size else None)
        rows.append(ComparisonRow(layer, kind, sa, sb, sb.median - sa.median, p_higher(a, b), mannwhitney_p(a, b),
                                  neurons.left_out, latents.left_out))  # fmt: skip
    return rows


def score_files(root: PathLike, layers: Sequence[int], role: str) -> dict[int, Path]:
    """``{layer: scores/layer{L}.parquet}`` of the run at `root`; a missing file is a FileNotFoundError naming it,
    the run (`role`) and how to make it."""
    paths = RunPaths(root)
    files = {layer: paths.scores(layer) for layer in layers}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"{missing[0]}: the {role} run has no explanation scores for layer(s) "
            f"{', '.join(str(layer) for layer, p in files.items() if not p.is_file())}; run that run's workflow "
            f"first (for results/demo: snakemake --cores 2), or point compare.neurons_run at a run that has them"
        )
    return files


def read_layers(files: Mapping[int, PathLike], topk: Mapping[int, PathLike] | None = None) -> dict[int, UnitAurocs]:
    """`UnitAurocs` per layer of `files` ({layer: scores file}); with `topk` ({layer: top-K file}) only the
    `firing_units` of each layer (an SAE run's)."""
    out = {}
    for layer in sorted(files):
        aurocs = UnitAurocs.from_table(read_scores(files[layer]))
        out[layer] = aurocs if topk is None else aurocs.keep_units(firing_units(topk[layer]))
    return out


def comparison_rows(neurons: Mapping[int, UnitAurocs], latents: Mapping[int, UnitAurocs]) -> list[ComparisonRow]:
    """Rows of every layer both runs have (`compare_layer`), by layer."""
    return [row for layer in sorted(set(neurons) & set(latents))
            for row in compare_layer(layer, neurons[layer], latents[layer])]  # fmt: skip


def _fmt(value: object, kind: str = "num") -> str:
    if isinstance(value, float):
        if np.isnan(value):
            return "-"
        if kind == "pct":
            return f"{100 * value:.0f}%"
        if kind == "p":
            return f"{value:.2g}"
        if kind == "diff":
            return f"{value:+.3f}"
        return f"{value:.3f}"
    return str(value)


def _iqr(s: GroupStats) -> str:
    return "-" if not s.n else f"{s.median:.3f} ({s.q25:.3f}-{s.q75:.3f})"


def headline(rows: Sequence[ComparisonRow]) -> list[str]:
    """One sentence per layer from its ``all`` row (every pattern kind and metadata together)."""
    lines = []
    for r in rows:
        if r.kind != "all" or not r.neurons.n or not r.latents.n:
            continue
        lines.append(
            f"Layer {r.layer}: all patterns together detect the test top sentences of {r.latents.n} latents with median "
            f"AUROC {r.latents.median:.3f} against {r.neurons.median:.3f} for {r.neurons.n} neurons (a latent beats a "
            f"neuron with probability {r.p_latent_higher:.2f}, Mann-Whitney p = {_fmt(r.mannwhitney_p, 'p')}); "
            f"{_fmt(r.latents.above_controls, 'pct')} of latents and {_fmt(r.neurons.above_controls, 'pct')} of "
            "neurons are above their controls."
            + (f" Left out (firing on fewer than K sentences): {r.latents_left_out} latents, {r.neurons_left_out} "
               "neurons." if r.latents_left_out or r.neurons_left_out else "")
        )
    return lines


def write_table(rows: Sequence[ComparisonRow], md_out: PathLike, csv_out: PathLike, neurons_run: str = "",
                latents_run: str = "") -> None:  # fmt: skip
    """``tables/neurons_vs_latents.csv`` (`COMPARE_COLUMNS`, 6 significant digits) and ``.md`` (the same numbers,
    a headline per layer and a note on every column)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COMPARE_COLUMNS)
    writer.writerows([[f"{v:.6g}" if isinstance(v, float) else v for v in row.cells()] for row in rows])
    write_text(csv_out, buffer.getvalue())
    md = [*(line + "\n" for line in headline(rows)),
          "| layer | kind | neurons | latents | neurons: AUROC median (IQR) | latents: AUROC median (IQR) | "
          "latents - neurons | P(latent > neuron) | Mann-Whitney p | neurons > controls | latents > controls |",
          "|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        md.append(f"| {r.layer} | {r.kind} | {r.neurons.n} | {r.latents.n} | {_iqr(r.neurons)} | {_iqr(r.latents)} | "
                  f"{_fmt(r.median_difference, 'diff')} | {_fmt(r.p_latent_higher)} | {_fmt(r.mannwhitney_p, 'p')} | "
                  f"{_fmt(r.neurons.above_controls, 'pct')} | {_fmt(r.latents.above_controls, 'pct')} |")  # fmt: skip
    runs = f" (neurons: {neurons_run}; latents: {latents_run})" if neurons_run or latents_run else ""
    note = (f"\nDetection AUROC of each unit's test top sentences against the negatives, predicted by the patterns "
            f"re-mined on the other part of its top K{runs}; kinds first, then the controls (derangement: another "
            "unit's patterns; length: sentence length; bow: bag-of-words logistic regression). Units with an "
            "undefined AUROC are left out, and so are an SAE run's latents that fire on fewer than K sentences "
            "(their top K is padded with zero activations). 'P(latent > neuron)': probability that a random latent's AUROC is above "
            "a random neuron's (ties half; 0.5 = no difference). '> controls': share of units whose AUROC for the "
            "kind is above their own max(0.5, derangement, length).\n")  # fmt: skip
    write_text(md_out, "\n".join(md) + "\n" + note)


def plot_figure(neurons: Mapping[int, UnitAurocs], latents: Mapping[int, UnitAurocs],
                labels: tuple[str, str] = ("neurons", "latents")):  # fmt: skip
    """One panel per layer both runs have: for every predictor, the neurons' and the latents' AUROC boxes side by
    side (box: IQR and median; whiskers: 5th-95th percentile), chance (0.5) dashed, controls right of the line."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    layers = sorted(set(neurons) & set(latents))
    kinds_of = {layer: [k for k in (*KINDS, *CONTROLS) if k in neurons[layer].values or k in latents[layer].values]
                for layer in layers}  # fmt: skip
    width = max(6.0, 0.75 * max((len(k) for k in kinds_of.values()), default=1) + 1.5)
    fig, axes = plt.subplots(max(len(layers), 1), 1, figsize=(width, 3.3 * max(len(layers), 1)), squeeze=False)
    for i, layer in enumerate(layers):
        ax = axes[i][0]
        kinds = kinds_of[layer]
        for offset, (group, runs) in zip((-0.19, 0.19), (("neurons", neurons), ("latents", latents)), strict=True):
            data = [_defined(runs[layer].values.get(k, np.zeros(0))) for k in kinds]
            positions = [j + 1 + offset for j, values in enumerate(data) if values.size]
            shown = [values for values in data if values.size]
            if not shown:
                continue
            boxes = ax.boxplot(shown, positions=positions, whis=(5, 95), showfliers=False, patch_artist=True,
                               widths=0.34, manage_ticks=False)  # fmt: skip
            for patch in boxes["boxes"]:
                patch.set_facecolor(GROUP_COLORS[group])
                patch.set_alpha(0.8)
            for median in boxes["medians"]:
                median.set_color("black")
        ax.axhline(0.5, color="black", linestyle="--", linewidth=0.8)
        ax.axvline(len([k for k in kinds if k in KINDS]) + 0.5, color="#444444", linewidth=0.6)
        ax.set_xticks(range(1, len(kinds) + 1), kinds, rotation=30, ha="right", fontsize=8)
        ax.set_xlim(0.4, len(kinds) + 0.6)
        ax.set_ylim(0, 1)
        n_a = _defined(neurons[layer].values.get("all", np.zeros(0))).size
        n_b = _defined(latents[layer].values.get("all", np.zeros(0))).size
        ax.set_title(f"layer {layer}: {n_a} {labels[0]} vs {n_b} {labels[1]}", fontsize=9)
        ax.set_ylabel("detection AUROC", fontsize=8)
        ax.legend(handles=[Patch(facecolor=GROUP_COLORS["neurons"], label=labels[0]),
                           Patch(facecolor=GROUP_COLORS["latents"], label=labels[1])],
                  fontsize=7, frameon=False, loc="lower left")  # fmt: skip
    fig.tight_layout()
    return fig


def write_figure(neurons: Mapping[int, UnitAurocs], latents: Mapping[int, UnitAurocs], png: PathLike,
                 pdf: PathLike, labels: tuple[str, str] = ("neurons", "latents")) -> None:  # fmt: skip
    """`plot_figure` as PNG and PDF through `neurotext.plots.save_figure` (same scores, same bytes)."""
    from neurotext.plots import save_figure, use_agg

    use_agg()
    import matplotlib.pyplot as plt

    fig = plot_figure(neurons, latents, labels)
    try:
        save_figure(fig, png, pdf)
    finally:
        plt.close(fig)


def neurons_vs_latents(
    latents: Sequence[PathLike],
    layers: Sequence[int],
    neurons_run: PathLike,
    md: PathLike,
    csv_out: PathLike,
    png: PathLike,
    pdf: PathLike,
    latents_run: str = "",
    topk: Sequence[PathLike] | None = None,
    features: str = "sae",
) -> list[ComparisonRow]:
    """The rule's entry: this run's scores files `latents` (``latents[i]`` is layer ``layers[i]``) against the
    same layers' scores of the neuron run directory `neurons_run`; writes the table and the figure. `topk` (this
    run's top-K files, same order) and `features` (this run's ``model.features``): with ``sae``, latents firing on
    fewer than K sentences are left out; the neuron run's units likewise when its provenance says ``sae``."""
    if len(latents) != len(layers):
        raise ValueError(f"{len(latents)} scores files for {len(layers)} layers")
    neuron_files = score_files(neurons_run, layers, f"neuron (compare.neurons_run = {neurons_run})")
    neuron_topk = None
    if run_features(neurons_run) == "sae":
        neuron_topk = {layer: RunPaths(neurons_run).topk("base", layer) for layer in layers}
    neuron_aurocs = read_layers(neuron_files, neuron_topk)
    latent_topk = dict(zip(layers, topk, strict=True)) if topk is not None and features == "sae" else None
    latent_aurocs = read_layers(dict(zip(layers, latents, strict=True)), latent_topk)
    rows = comparison_rows(neuron_aurocs, latent_aurocs)
    write_table(rows, md, csv_out, neurons_run=str(neurons_run), latents_run=latents_run)
    labels = (f"neurons ({Path(neurons_run).name})", f"latents ({latents_run})" if latents_run else "latents")
    write_figure(neuron_aurocs, latent_aurocs, png, pdf, labels=labels)
    return rows
