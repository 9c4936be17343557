"""The scores table (``tables/scores.{md,csv}``) and figure (``figures/scores.{png,pdf}``) from the per-layer
``scores/layer{L}.parquet`` files (`neurotext.artifacts.scores`).

Table: one row per layer x predictor (the kinds, then the controls): neurons scored, median AUROC and its IQR,
median Spearman, median F1 (kinds only), and the share of neurons whose AUROC for the kind is above the same
neuron's derangement control, above its length control, and above both. Figure: per layer, the AUROC distribution
(box: IQR and median; whiskers: 5th-95th percentile) of every kind next to the controls, chance (0.5) dashed.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping

import numpy as np

from neurotext.artifacts.scores import CONTROLS, KINDS, read_scores, scores_matrix
from neurotext.io import write_text

PathLike = str | os.PathLike[str]

TABLE_HEADER = ["layer", "kind", "neurons", "auroc_median", "auroc_q25", "auroc_q75", "spearman_median",
                "f1_median", "above_derangement", "above_length", "above_both"]  # fmt: skip


def _median(values: np.ndarray) -> float:
    v = values[~np.isnan(values)]
    return float(np.median(v)) if v.size else float("nan")


def _quantile(values: np.ndarray, q: float) -> float:
    v = values[~np.isnan(values)]
    return float(np.quantile(v, q)) if v.size else float("nan")


def _above(a: np.ndarray, b: np.ndarray) -> float:
    ok = ~np.isnan(a) & ~np.isnan(b)
    return float(np.mean(a[ok] > b[ok])) if ok.any() else float("nan")


def layer_rows(layer: int, path: PathLike) -> list[list[object]]:
    """Table rows of one layer (`TABLE_HEADER` columns; NaN where undefined)."""
    table = read_scores(path)
    neurons, kinds, auc = scores_matrix(table, "auroc")
    _, sp_kinds, spear = scores_matrix(table, "spearman")
    _, f1_kinds, f1 = scores_matrix(table, "f1")
    der = auc[:, kinds.index("derangement")] if "derangement" in kinds else np.full(neurons.size, np.nan)
    length = auc[:, kinds.index("length")] if "length" in kinds else np.full(neurons.size, np.nan)
    rows = []
    for k, kind in enumerate(kinds):
        a = auc[:, k]
        is_kind = kind in KINDS
        rows.append([
            layer, kind, int(np.sum(~np.isnan(a))), _median(a), _quantile(a, 0.25), _quantile(a, 0.75),
            _median(spear[:, sp_kinds.index(kind)]) if kind in sp_kinds else float("nan"),
            _median(f1[:, f1_kinds.index(kind)]) if kind in f1_kinds else float("nan"),
            _above(a, der) if is_kind else float("nan"), _above(a, length) if kind != "length" else float("nan"),
            _above(a, np.fmax(der, length)) if is_kind else float("nan"),
        ])  # fmt: skip
    return rows


def _fmt(value: object, percent: bool = False) -> str:
    if isinstance(value, float):
        if np.isnan(value):
            return "-"
        return f"{100 * value:.0f}%" if percent else f"{value:.3f}"
    return str(value)


def write_table(files: Mapping[int, PathLike], md_out: PathLike, csv_out: PathLike,
                headline: str = "random negatives") -> list[list[object]]:  # fmt: skip
    """Write the table for the layers of `files` ({layer: scores file}); returns its rows."""
    rows = [row for layer in sorted(files) for row in layer_rows(layer, files[layer])]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(TABLE_HEADER)
    writer.writerows([[f"{v:.6g}" if isinstance(v, float) else v for v in row] for row in rows])
    write_text(csv_out, buffer.getvalue())
    md = ["| layer | kind | neurons | AUROC median (IQR) | Spearman | F1 | > derangement | > length | > both |",
          "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        auc = "-" if np.isnan(r[3]) else f"{r[3]:.3f} ({r[4]:.3f}-{r[5]:.3f})"
        md.append(f"| {r[0]} | {r[1]} | {r[2]} | {auc} | {_fmt(r[6])} | {_fmt(r[7])} | {_fmt(r[8], True)} | "
                  f"{_fmt(r[9], True)} | {_fmt(r[10], True)} |")  # fmt: skip
    note = (f"\nDetection AUROC of each neuron's test top sentences against {headline} (the neuron's own top K left "
            "out), predicted by the patterns re-mined on the other part of its top K; kinds first, then the controls "
            "(derangement: another neuron's patterns; length: sentence length; bow: bag-of-words logistic "
            "regression; metadata only is the metadata kind). '> derangement' / '> length' / '> both': share of "
            "neurons whose AUROC for the kind is above the same neuron's control(s).\n")  # fmt: skip
    write_text(md_out, "\n".join(md) + "\n" + note)
    return rows


PREDICTOR_COLORS = {"words": "#1b9e77", "skipgrams": "#d95f02", "posgrams": "#7570b3", "subtrees": "#e7298a",
                    "metadata": "#66a61e", "all": "#e6ab02", "derangement": "#999999", "length": "#bbbbbb",
                    "bow": "#777777"}  # fmt: skip


def plot_figure(files: Mapping[int, PathLike]):
    """The figure: one panel per layer (up to 3 per row), AUROC boxes per kind and control."""
    import matplotlib.pyplot as plt

    layers = sorted(files)
    n_cols = min(3, max(len(layers), 1))
    n_rows = max(1, -(-len(layers) // n_cols))
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(4.2 * n_cols, 3.2 * n_rows), squeeze=False, sharey=True)
    for i, layer in enumerate(layers):
        ax = axes[i // n_cols][i % n_cols]
        _, kinds, auc = scores_matrix(read_scores(files[layer]), "auroc")
        order = [k for k in (*KINDS, *CONTROLS) if k in kinds]
        data = [auc[:, kinds.index(k)][~np.isnan(auc[:, kinds.index(k)])] for k in order]
        boxes = ax.boxplot(data, whis=(5, 95), showfliers=False, patch_artist=True, widths=0.6)
        for patch, name in zip(boxes["boxes"], order, strict=True):
            patch.set_facecolor(PREDICTOR_COLORS.get(name, "#cccccc"))
            patch.set_alpha(0.8 if name in KINDS else 0.5)
        ax.axhline(0.5, color="black", linestyle="--", linewidth=0.8)
        ax.axvline(len([k for k in order if k in KINDS]) + 0.5, color="#444444", linewidth=0.6)
        ax.set_xticks(range(1, len(order) + 1), order, rotation=45, ha="right", fontsize=7)
        ax.set_ylim(0, 1)
        ax.set_title(f"layer {layer}", fontsize=9)
        if i % n_cols == 0:
            ax.set_ylabel("detection AUROC (test top vs negatives)", fontsize=8)
    for j in range(len(layers), n_rows * n_cols):
        axes[j // n_cols][j % n_cols].set_visible(False)
    fig.tight_layout()
    return fig


def write_figure(files: Mapping[int, PathLike], png: PathLike, pdf: PathLike) -> None:
    """Write `plot_figure` as PNG and PDF with `neurotext.plots.save_figure` (same scores, same bytes)."""
    from neurotext.plots import save_figure, use_agg

    use_agg()
    import matplotlib.pyplot as plt

    fig = plot_figure(files)
    try:
        save_figure(fig, png, pdf)
    finally:
        plt.close(fig)
