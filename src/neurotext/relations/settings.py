"""The ``relations`` config block as a typed, checked `RelationsSettings`, and its checks against the model;
docs/ARCHITECTURE.md, "Relations". The defaults are the config schema's only (filled in by `neurotext.validate`):
``from_config`` reads every key without a fallback (partial blocks: ``neurotext.validate.with_defaults``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from neurotext.config import ConfigError

STANDARDIZE_CHOICES = ("zscore", "center", "none")
TSNE_BACKENDS = ("sklearn", "opentsne")


@dataclass(frozen=True)
class TsneSettings:
    """t-SNE of one layer's neurons: backend 'sklearn' or 'opentsne', perplexity (< number of neurons), seed,
    max_iter (total optimisation iterations, early exaggeration included)."""

    backend: str
    perplexity: float
    seed: int
    max_iter: int


def _require(block: Mapping[str, Any], key: str) -> Any:
    """``block[key]`` of the ``relations`` block (`key` dotted below it); missing = ConfigError naming it."""
    *parents, name = key.split(".")
    if not isinstance(block, Mapping) or name not in block:
        raise ConfigError(
            f"config key `relations.{key}` is missing: the config schema fills its default, so this block was not "
            "validated (use neurotext.validate.check_config, or with_defaults for a partial block)"
        )
    return block[name]


def _integer(value: Any, key: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ConfigError(f"relations.{key} = {value!r}: expected an integer >= {minimum}")
    return int(value)


@dataclass(frozen=True)
class LayerRelationsSettings:
    """The keys one layer's computation (k-means sweep, t-SNE, overlap) depends on: the relations_layer rule's
    params, so changing a figure's range does not rerun k-means."""

    pooling: str
    standardize: str
    k_min: int
    k_max: int
    k: int
    n_init: int
    max_iter: int
    seed: int
    tsne: TsneSettings
    top_pairs: int

    @property
    def ks(self) -> list[int]:
        """The k values of the SSE sweep, k_min..k_max inclusive."""
        return list(range(self.k_min, self.k_max + 1))

    def layer_config(self) -> dict[str, Any]:
        """These settings as a config block (the relations_layer rule's params)."""
        return {
            "pooling": self.pooling,
            "standardize": self.standardize,
            "k_min": self.k_min,
            "k_max": self.k_max,
            "k": self.k,
            "n_init": self.n_init,
            "max_iter": self.max_iter,
            "seed": self.seed,
            "tsne": {
                "backend": self.tsne.backend,
                "perplexity": self.tsne.perplexity,
                "seed": self.tsne.seed,
                "max_iter": self.tsne.max_iter,
            },
            "top_pairs": self.top_pairs,
        }

    @classmethod
    def from_config(cls, block: Mapping[str, Any]) -> LayerRelationsSettings:
        """Read and check the layer keys of a validated ``relations`` block (or of `layer_config`'s block)."""
        tsne = _require(block, "tsne")
        standardize = _require(block, "standardize")
        if standardize is True:  # accept the boolean spelling: true = z-score, false = raw activations
            standardize = "zscore"
        elif standardize is False:
            standardize = "none"
        if standardize not in STANDARDIZE_CHOICES:
            raise ConfigError(
                f"relations.standardize = {standardize!r}: choose one of {', '.join(STANDARDIZE_CHOICES)}"
            )
        backend = _require(tsne, "tsne.backend")
        if backend not in TSNE_BACKENDS:
            raise ConfigError(f"relations.tsne.backend = {backend!r}: choose one of {', '.join(TSNE_BACKENDS)}")
        perplexity = _require(tsne, "tsne.perplexity")
        if isinstance(perplexity, bool) or not isinstance(perplexity, int | float) or not perplexity > 0:
            raise ConfigError(f"relations.tsne.perplexity = {perplexity!r}: expected a number > 0")
        settings = cls(
            pooling=str(_require(block, "pooling")),
            standardize=standardize,
            **{key: _integer(_require(block, key), key, minimum)
               for key, minimum in (("k_min", 1), ("k_max", 1), ("k", 1), ("n_init", 1), ("max_iter", 1), ("seed", 0))},
            tsne=TsneSettings(
                backend=backend,
                perplexity=float(perplexity),
                seed=_integer(_require(tsne, "tsne.seed"), "tsne.seed", 0),
                max_iter=_integer(_require(tsne, "tsne.max_iter"), "tsne.max_iter", 251),
            ),
            top_pairs=_integer(_require(block, "top_pairs"), "top_pairs", 1),
        )  # fmt: skip
        if settings.k_min > settings.k_max:
            raise ConfigError(f"relations.k_min = {settings.k_min} > relations.k_max = {settings.k_max}: swap them")
        return settings


def figure2_range(neurons: Any) -> tuple[int, int]:
    """``relations.figure2.neurons`` checked: [first, last], 0-based and inclusive."""
    if (
        not isinstance(neurons, list | tuple)
        or len(neurons) != 2
        or not all(isinstance(n, int) and not isinstance(n, bool) for n in neurons)
        or not 0 <= neurons[0] <= neurons[1]
    ):
        raise ConfigError(
            f"relations.figure2.neurons = {neurons!r}: expected [first, last], 0-based and inclusive, "
            "first <= last (the paper's grid is [301, 350])"
        )
    return int(neurons[0]), int(neurons[1])


@dataclass(frozen=True)
class RelationsSettings:
    """The config's `relations` block, checked: the per-layer settings, the threads of a layer job and the figures'
    choices. Neuron ranges are 0-based and inclusive."""

    layer: LayerRelationsSettings
    threads: int
    figure2_neurons: tuple[int, int]
    figure4_layer: int

    def layer_config(self) -> dict[str, Any]:
        """The keys the per-layer computation depends on (no figure keys): the relations_layer rule's params."""
        return self.layer.layer_config()

    @classmethod
    def from_config(cls, relations: Mapping[str, Any]) -> RelationsSettings:
        """Read and check the validated ``relations`` block (every key present: the schema's defaults filled)."""
        return cls(
            layer=LayerRelationsSettings.from_config(relations),
            threads=_integer(_require(relations, "threads"), "threads", 1),
            figure2_neurons=figure2_range(_require(_require(relations, "figure2"), "figure2.neurons")),
            figure4_layer=_integer(_require(_require(relations, "figure4"), "figure4.layer"), "figure4.layer", 1),
        )


def check_relations_config(
    relations: Mapping[str, Any] | None, n_layers: int, n_neurons: int, poolings: Iterable[str]
) -> RelationsSettings:
    """Check the `relations` block against the model (layers 1..n_layers, neurons 0..n_neurons-1) and the
    poolings the sample has; called when the workflow is built, so a bad value fails before any job runs."""
    settings = RelationsSettings.from_config(relations)
    available = sorted(set(poolings))
    if settings.layer.pooling not in available:
        raise ConfigError(
            f"relations.pooling = {settings.layer.pooling!r}: the sample has activations for {', '.join(available)} "
            "only (cls always, plus model.pooling)"
        )
    first, last = settings.figure2_neurons
    if last >= n_neurons:
        raise ConfigError(
            f"relations.figure2.neurons = [{first}, {last}]: the model has {n_neurons} neurons per layer, "
            f"numbered 0..{n_neurons - 1}; choose a range inside it"
        )
    if not 1 <= settings.figure4_layer <= n_layers:
        raise ConfigError(
            f"relations.figure4.layer = {settings.figure4_layer}: the model has layers 1..{n_layers} "
            "(0 = embeddings is never a target)"
        )
    check_points(settings.layer, n_neurons)
    return settings


def check_points(settings: LayerRelationsSettings, n_neurons: int) -> None:
    """k-means and t-SNE place the layer's neurons: k and the perplexity must stay below their number."""
    for key, value in (("k_max", settings.k_max), ("k", settings.k)):
        if value > n_neurons:
            raise ConfigError(
                f"relations.{key} = {value}: k-means clusters the layer's neurons and there are only {n_neurons}; "
                f"lower relations.{key} to at most {n_neurons}"
            )
    if settings.tsne.perplexity >= n_neurons:
        raise ConfigError(
            f"relations.tsne.perplexity = {settings.tsne.perplexity:g}: t-SNE needs it below the number of neurons "
            f"({n_neurons}); about n/3 or less is usual"
        )
