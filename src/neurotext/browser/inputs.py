"""What the browser reads: the rule's named input files grouped by layer (`BrowserInputs`), the rule's inputs for a
run (`browser_rule_inputs`: every file a rule of the Snakefile makes) and the paper target's files."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from neurotext.artifacts.finetune import NEURONS_PATH
from neurotext.artifacts.paths import layer_of_path
from neurotext.artifacts.records import HISTOGRAM_PATH, RECORDS_PATH
from neurotext.artifacts.scores import SCORES_PATH, SUMMARY_PATH

PathLike = str | os.PathLike[str]

#: Per-layer inputs of `LayerInputs` (the names the rule's input uses).
LAYER_INPUTS: tuple[str, ...] = (
    "topk", "records", "histograms", "patterns", "profiles", "profile_metadata", "clusters", "tsne", "overlap",
    "scores", "scores_summary",
)  # fmt: skip


@dataclass(frozen=True)
class LayerInputs:
    """One layer's input files; every one but `topk` may be None."""

    layer: int
    topk: Path
    records: Path | None = None
    histograms: Path | None = None
    patterns: Path | None = None
    profiles: Path | None = None
    profile_metadata: Path | None = None
    clusters: Path | None = None
    tsne: Path | None = None
    overlap: Path | None = None
    scores: Path | None = None
    scores_summary: Path | None = None


@dataclass(frozen=True)
class BrowserInputs:
    """Everything the browser reads (see the package docstring)."""

    layers: tuple[LayerInputs, ...]
    corpus: tuple[Path, ...]
    provenance: Path | None = None
    finetune: Path | None = None

    @classmethod
    def from_files(cls, named: Mapping[str, Sequence[PathLike] | PathLike | None]) -> BrowserInputs:
        """Inputs from the rule's named file lists: the per-layer names of `LAYER_INPUTS` (each path's layer read
        from its ``layer{L}`` part, as the artifact paths name them), ``corpus``, and single ``provenance`` and
        ``finetune``. A per-layer file whose layer has no top K, or an unknown name, is an error naming it."""
        unknown = sorted(set(named) - {*LAYER_INPUTS, "corpus", "provenance", "finetune"})
        if unknown:
            raise ValueError(f"browser input {unknown[0]}: not an input of the browser (inputs: "
                             f"{', '.join([*LAYER_INPUTS, 'corpus', 'provenance', 'finetune'])})")  # fmt: skip
        by_layer: dict[str, dict[int, Path]] = {}
        for name in LAYER_INPUTS:
            mapping: dict[int, Path] = {}
            for path in _as_list(named.get(name)):
                try:
                    layer = layer_of_path(path)
                except ValueError as error:
                    raise ValueError(f"browser input {name}: {error}") from None
                if layer in mapping:
                    raise ValueError(f"browser input {name}: two files for layer {layer}: {mapping[layer]}, {path}")
                mapping[layer] = Path(path)
            by_layer[name] = mapping
        if not by_layer["topk"]:
            raise ValueError("browser input topk: no top-K file given; the browser needs topk/base/layer{L}.parquet")
        for name, mapping in by_layer.items():
            extra = sorted(set(mapping) - set(by_layer["topk"]))
            if extra:
                raise ValueError(
                    f"browser input {name}: {mapping[extra[0]]} is for layer {extra[0]}, which has no top K"
                )
        layers = tuple(
            LayerInputs(layer, **{name: by_layer[name].get(layer) for name in LAYER_INPUTS})  # type: ignore[arg-type]
            for layer in sorted(by_layer["topk"])
        )
        corpus = tuple(Path(p) for p in _as_list(named.get("corpus")))
        if not corpus:
            raise ValueError("browser input corpus: no corpus file given; the browser needs corpus/{dataset}.parquet")
        return cls(layers, corpus, *(_single(named.get(n), n) for n in ("provenance", "finetune")))


def _as_list(value: Sequence[PathLike] | PathLike | None) -> list[PathLike]:
    if value is None:
        return []
    if isinstance(value, str | os.PathLike):
        return [value]
    return list(value)


def _single(value: Sequence[PathLike] | PathLike | None, name: str) -> Path | None:
    files = _as_list(value)
    if len(files) > 1:
        raise ValueError(f"browser input {name}: give one file, not {len(files)}")
    return Path(files[0]) if files else None


#: The paper's tables and figures under ``results/{run}/`` (what the ``paper`` target collects).
PAPER_FILES: tuple[str, ...] = (
    *(f"tables/table{i}.{ext}" for i in (1, 2, 3) for ext in ("md", "csv")),
    *(f"figures/fig{i}.{ext}" for i in (1, 2, 3, 4) for ext in ("png", "pdf")),
    *(f"tables/scores.{ext}" for ext in ("md", "csv")),  # explanation scores (workflow/rules/scores.smk)
    *(f"figures/scores.{ext}" for ext in ("png", "pdf")),
)


def paper_targets(out: str, producible: Callable[[str], bool]) -> list[str]:
    """``{out}/tables/...`` and ``{out}/figures/...`` of `PAPER_FILES` that `producible` accepts (a rule makes them
    or they exist); the others are named on stderr, so a Snakefile without, say, the fine-tuning stage still builds
    the rest."""
    paths = [f"{out}/{name}" for name in PAPER_FILES]
    kept = [path for path in paths if producible(path)]
    if len(kept) < len(paths):
        print(f"neurotext: no rule makes {', '.join(p for p in paths if p not in kept)}; left out of the paper target",
              file=sys.stderr)  # fmt: skip
    return kept


def browser_rule_inputs(
    out: str, layers: Sequence[int], datasets: Sequence[str], clusters_k: int | None, producible: Callable[[str], bool]
) -> dict[str, list[str]]:
    """The browser rule's named inputs for the run under `out` (``results/{run}``): every file of
    `BrowserInputs.from_files` that `producible` accepts. The records and their whole-corpus histograms are the base
    model's; the clusters those of k = `clusters_k` (None: no clusters)."""
    k = clusters_k
    per_layer = {
        "topk": "topk/base/layer{layer}.parquet",
        "records": RECORDS_PATH.replace("{model}", "base"),
        "histograms": HISTOGRAM_PATH.replace("{model}", "base"),
        "patterns": "patterns/layer{layer}.parquet",
        "profiles": "profiles/layer{layer}.parquet",
        "profile_metadata": "profiles/metadata/layer{layer}.parquet",
        "clusters": f"relations/layer{{layer}}/clusters_k{k}.parquet" if k else None,
        "tsne": "relations/layer{layer}/tsne.parquet",
        "overlap": "relations/layer{layer}/overlap.parquet",
        "scores": SCORES_PATH,
        "scores_summary": SUMMARY_PATH,
    }
    named = {name: [p for layer in layers if producible(p := f"{out}/{pattern.format(layer=layer)}")]
             for name, pattern in per_layer.items() if pattern}  # fmt: skip
    named["corpus"] = [f"{out}/corpus/{dataset}.parquet" for dataset in datasets]
    for name, path in (("provenance", "provenance.json"), ("finetune", NEURONS_PATH)):
        named[name] = [f"{out}/{path}"] if producible(f"{out}/{path}") else []
    return {name: files for name, files in named.items() if files}


def clean_stale_layers(out_dir: PathLike, layers: Iterable[int]) -> None:
    """Remove ``data/layer{L}.js`` files of layers no longer built (a rerun with fewer layers)."""
    keep = {f"layer{layer}.js" for layer in layers}
    data = Path(out_dir) / "data"
    if data.is_dir():
        for path in data.glob("layer*.js"):
            if path.name not in keep:
                path.unlink()
