"""Figures 2-4: dominant domains across layers, the SSE curves, the t-SNE map of one layer."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from neurotext.artifacts.corpus import UNKNOWN_DOMAIN, read_domains
from neurotext.artifacts.relations import read_clusters, read_sse, read_tsne
from neurotext.plots import save_figure, use_agg
from neurotext.relations.domains import DominantGrid, dominant_grid
from neurotext.relations.settings import figure2_range

PathLike = str | os.PathLike[str]

#: Fixed colours for the design's domains (tab10), so a domain keeps its colour across runs and configs; other
#: domains take the remaining tab10/tab20 colours in name order.
DOMAIN_COLOURS: dict[str, str] = {
    "book": "#1f77b4",
    "wiki": "#ff7f0e",
    "twitter": "#2ca02c",
    "review": "#d62728",
    "news": "#9467bd",
    "speech": "#8c564b",
}
_SPARE_COLOURS = ("#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896")
UNKNOWN_COLOUR = "#c7c7c7"




def domain_colours(domains: Sequence[str]) -> dict[str, str]:
    """A colour per domain: fixed for the design's domains, spare colours in name order for others."""
    spare = iter(_SPARE_COLOURS)
    colours = {}
    for name in sorted(domains):
        if name in DOMAIN_COLOURS:
            colours[name] = DOMAIN_COLOURS[name]
        elif name == UNKNOWN_DOMAIN:
            colours[name] = UNKNOWN_COLOUR
        else:
            colours[name] = next(spare, UNKNOWN_COLOUR)
    return colours


def shaded(colour: str, share: float) -> tuple[float, float, float]:
    """`colour` blended with white: share 1 -> the full colour, share 0 -> white (an empty cell is white)."""
    from matplotlib.colors import to_rgb

    if not np.isfinite(share):
        return (1.0, 1.0, 1.0)
    base = np.asarray(to_rgb(colour))
    return tuple(float(v) for v in 1.0 - share * (1.0 - base))


def grid_rgb(grid: DominantGrid) -> np.ndarray:
    """Figure 2's cell colours, float [n_layers, n_cols, 3]: the dominant domain's colour shaded by its share."""
    colours = domain_colours(grid.domains)
    rgb = np.ones(grid.dominant.shape + (3,))
    for (row, col), code in np.ndenumerate(grid.dominant):
        if code >= 0:
            rgb[row, col] = shaded(colours[grid.domains[code]], grid.share[row, col])
    return rgb


def _new_figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def plot_figure2(grid: DominantGrid):
    """Figure 2: a cell per (layer, neuron), colour = dominant domain of the neuron's top K, shade = its share;
    layer 1 at the bottom. Legend: the domains that are dominant somewhere, in name order."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.patches import Patch

    n_layers, width = grid.dominant.shape
    fig = _new_figure(max(6.0, 0.16 * width + 2.5), max(2.5, 0.32 * n_layers + 1.6))
    ax = fig.add_subplot()
    first, last = grid.neurons[0], grid.neurons[-1]
    ax.imshow(
        grid_rgb(grid), origin="lower", aspect="auto", interpolation="nearest",
        extent=(first - 0.5, last + 0.5, 0.5, n_layers + 0.5),
    )  # fmt: skip
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(nbins=12, integer=True))
    ax.set_yticks(range(1, n_layers + 1), [str(layer) for layer in grid.layers])
    ax.set_xlabel("neuron")
    ax.set_ylabel("layer")
    ax.set_title("Dominant domain of each neuron's top K (shade = its share)")
    colours = domain_colours(grid.domains)
    present = sorted({grid.domains[c] for c in grid.dominant.ravel() if c >= 0})
    handles = [Patch(facecolor=colours[name], label=name) for name in present]
    ax.legend(handles=handles, title="domain", loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    shade = ScalarMappable(norm=Normalize(0.0, 1.0), cmap="Greys")
    fig.colorbar(shade, ax=ax, label="share of top K", location="bottom", shrink=0.35, aspect=25)
    return fig


def plot_figure3(sse_by_layer: Mapping[int, pd.DataFrame]):
    """Figure 3: k-means SSE against k, one line per layer (label 'layer L'), deeper layers darker."""
    from matplotlib import colormaps
    from matplotlib.ticker import MaxNLocator

    fig = _new_figure(6.4, 4.2)
    ax = fig.add_subplot()
    layers = sorted(sse_by_layer)
    cmap = colormaps["viridis"]
    for index, layer in enumerate(layers):
        table = sse_by_layer[layer].sort_values("k")
        colour = cmap(0.85 * (1.0 - index / max(len(layers) - 1, 1)))  # layer 1 light, the last dark
        ax.plot(
            table["k"].to_numpy(),
            table["sse"].to_numpy(),
            marker="o",
            markersize=3,
            color=colour,
            label=f"layer {layer}",
        )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("k (number of clusters)")
    ax.set_ylabel("SSE (sum of squared distances to centres)")
    ax.set_title("k-means of each layer's neurons")
    ax.legend(ncols=2 if len(layers) > 6 else 1, fontsize="small", frameon=False)
    return fig


def plot_figure4(coordinates: pd.DataFrame, clusters: pd.DataFrame, layer: int):
    """Figure 4: the t-SNE map of one layer's neurons, one scatter series per cluster (label 'cluster c (n)')."""
    from matplotlib import colormaps

    merged = coordinates.merge(clusters[["neuron", "cluster"]], on="neuron", how="inner", validate="one_to_one")
    if len(merged) != len(coordinates) or len(merged) != len(clusters):
        raise ValueError(
            f"layer {layer}: the t-SNE and cluster files do not list the same neurons; rerun relations_layer"
        )
    k = int(clusters["cluster"].max()) + 1 if len(clusters) else 0
    fig = _new_figure(6.4, 5.2)
    ax = fig.add_subplot()
    cmap = colormaps["tab10" if k <= 10 else "tab20"]
    for cluster in range(k):
        members = merged[merged["cluster"] == cluster].sort_values("neuron")
        ax.scatter(
            members["x"].to_numpy(), members["y"].to_numpy(), s=10, color=cmap(cluster % cmap.N),
            label=f"cluster {cluster} ({len(members)})",
        )  # fmt: skip
    ax.set_xlabel("t-SNE 1")
    ax.set_ylabel("t-SNE 2")
    ax.set_title(f"Layer {layer}: t-SNE of {len(merged)} neurons, k-means k = {k}")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False, markerscale=1.5)
    return fig


def figure2(
    topk: Sequence[PathLike],
    layers: Sequence[int],
    corpus: Sequence[PathLike],
    neurons: Sequence[int],
    png: PathLike,
    pdf: PathLike,
) -> DominantGrid:
    """Rule entry: Figure 2 from every layer's top K (`topk[i]` is layer `layers[i]`) and the corpus, for neurons
    `neurons` = [first, last] (0-based, inclusive; `relations.figure2.neurons`)."""
    use_agg()
    first, last = figure2_range(list(neurons))
    grid = dominant_grid(dict(zip(layers, topk, strict=True)), read_domains(corpus), (first, last))
    save_figure(plot_figure2(grid), png, pdf)
    return grid


def figure3(sse: Sequence[PathLike], layers: Sequence[int], png: PathLike, pdf: PathLike) -> None:
    """Rule entry: Figure 3 from every layer's `sse.csv` (`sse[i]` is layer `layers[i]`)."""
    use_agg()
    save_figure(plot_figure3({layer: read_sse(path) for layer, path in zip(layers, sse, strict=True)}), png, pdf)


def figure4(tsne: PathLike, clusters: PathLike, layer: int, png: PathLike, pdf: PathLike) -> None:
    """Rule entry: Figure 4 from one layer's `tsne.parquet` and `clusters_k{k}.parquet`."""
    use_agg()
    fig = plot_figure4(read_tsne(tsne), read_clusters(clusters), layer)
    save_figure(fig, png, pdf)
