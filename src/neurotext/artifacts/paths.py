"""Every file path under ``results/{run}/``: one template per artifact (`PATHS`, relative to the run's root), the
rule files' form of it (`rule_path`), a run's concrete paths (`RunPaths`) and the one place that reads a layer
number out of a file name (`layer_of_path`, `layer_files`). docs/ARCHITECTURE.md, "Artifacts", lists each with its
schema (a test checks that every template here is documented there).

Wildcards: ``{run}`` (the run name, config ``run``), ``{dataset}`` (a key of config ``datasets``), ``{part}`` and
``{shard}`` (0-based integers), ``{model}`` (``base`` or ``finetuned``), ``{layer}`` (1-based), ``{pooling}``
(``max``, ``cls``, ``mean``, ``last``), ``{kind}`` (a pattern kind or ``metadata``/``profile``), ``{start}`` /
``{end}`` (5-digit neuron range, end exclusive), ``{k}`` (``relations.k``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from neurotext.artifacts import compare as _compare
from neurotext.artifacts import finetune as _finetune
from neurotext.artifacts import records as _records
from neurotext.artifacts import scores as _scores

PathLike = str | os.PathLike[str]

#: Every artifact path template, relative to ``results/{run}/``, by name.
PATHS: dict[str, str] = {
    # corpus (neurotext.artifacts.corpus)
    "corpus_part": "corpus/{dataset}/part{part}.parquet",
    "corpus_part_losses": "corpus/{dataset}/part{part}.losses.tsv",
    "corpus": "corpus/{dataset}.parquet",
    "corpus_losses": "corpus/{dataset}.losses.tsv",
    "corpus_stats": "corpus/stats.tsv",
    "corpus_metadata_counts": "corpus/metadata_counts.tsv",
    "table1": "tables/table1.md",
    "table1_csv": "tables/table1.csv",
    # shards and the scan (neurotext.artifacts.shards, neurotext.artifacts.topk)
    "shard": "shards/{dataset}/{shard}.parquet",
    "acts": "acts/{model}/{dataset}/{shard}.npz",
    "toptokens": "acts/{model}/{dataset}/{shard}.toptokens.npz",
    "topk": "topk/{model}/layer{layer}.parquet",
    # the sample (neurotext.artifacts.sample)
    "sample": "sample/sentences.parquet",
    "sample_activations": "sample/{model}/{pooling}/layer{layer}.npy",
    # records (neurotext.artifacts.records)
    "histogram_edges": _records.HISTOGRAM_EDGES_PATH,
    "histograms": _records.HISTOGRAM_PATH,
    "records": _records.RECORDS_PATH,
    # parses (neurotext.artifacts.parses)
    "parse_targets": "parses/targets.parquet",
    "parses": "parses/{dataset}/{shard}.parquet",
    # patterns (neurotext.artifacts.patterns)
    "corpus_metadata": "patterns/corpus_metadata.parquet",
    "mining_kernels": "patterns/kernels.txt",
    "pattern_sentences": "patterns/sentences/layer{layer}.parquet",
    "pattern_range": "patterns/{kind}/layer{layer}/n{start}-{end}.parquet",
    "patterns": "patterns/layer{layer}.parquet",
    "profiles": "profiles/layer{layer}.parquet",
    "profile_metadata": "profiles/metadata/layer{layer}.parquet",
    "table2": "tables/table2.md",
    "table2_csv": "tables/table2.csv",
    "fig1": "figures/fig1.png",
    "fig1_pdf": "figures/fig1.pdf",
    # relations (neurotext.artifacts.relations)
    "sse": "relations/layer{layer}/sse.csv",
    "clusters": "relations/layer{layer}/clusters_k{k}.parquet",
    "tsne": "relations/layer{layer}/tsne.parquet",
    "overlap": "relations/layer{layer}/overlap.parquet",
    "relations_summary": "relations/summary.csv",
    "fig2": "figures/fig2.png",
    "fig2_pdf": "figures/fig2.pdf",
    "fig3": "figures/fig3.png",
    "fig3_pdf": "figures/fig3.pdf",
    "fig4": "figures/fig4.png",
    "fig4_pdf": "figures/fig4.pdf",
    # fine-tuning (neurotext.artifacts.finetune)
    "finetune_labelled": _finetune.LABELLED_PATH,
    "finetune_model": _finetune.MODEL_PATH,
    "finetune_metrics": _finetune.METRICS_PATH,
    "finetune_eval_sentences": _finetune.EVAL_SENTENCES_PATH,
    "finetune_eval_activations": _finetune.EVAL_ACTIVATIONS_PATH,
    "finetune_distances": _finetune.DISTANCES_PATH,
    "finetune_sentence_distances": _finetune.SENTENCE_DISTANCES_PATH,
    "finetune_neurons": _finetune.NEURONS_PATH,
    "table3": "tables/table3.md",
    "table3_csv": "tables/table3.csv",
    # scores (neurotext.artifacts.scores)
    "negatives": _scores.NEGATIVES_PATH,
    "negative_sentences": _scores.NEGATIVE_SENTENCES_PATH,
    "negative_activations": _scores.NEGATIVE_ACTIVATIONS_PATH,
    "scores": _scores.SCORES_PATH,
    "score_predictions": _scores.PREDICTIONS_PATH,
    "score_summary": _scores.SUMMARY_PATH,
    "scores_table": _scores.TABLE_PATHS[0],
    "scores_table_csv": _scores.TABLE_PATHS[1],
    "scores_figure": _scores.FIGURE_PATHS[0],
    "scores_figure_pdf": _scores.FIGURE_PATHS[1],
    # SAEs
    "sae_config": "sae/layer{layer}/cfg.json",
    "sae_weights": "sae/layer{layer}/sae_weights.safetensors",
    "sae_metrics": "sae/layer{layer}/metrics.json",
    # neurons against latents (neurotext.artifacts.compare)
    "neurons_vs_latents_table": _compare.COMPARE_TABLE_PATHS[0],
    "neurons_vs_latents_table_csv": _compare.COMPARE_TABLE_PATHS[1],
    "neurons_vs_latents_figure": _compare.COMPARE_FIGURE_PATHS[0],
    "neurons_vs_latents_figure_pdf": _compare.COMPARE_FIGURE_PATHS[1],
    # readable outputs
    "layer_page": "pages/layer{layer}.md",
    "browser_index": "browser/index.html",
    "browser_neuron": "browser/neuron.html",
    "browser_data": "browser/data/{name}.js",
    "browser_asset": "browser/assets/{name}",
    "provenance": "provenance.json",
}

_LAYER_IN_NAME = re.compile(r"layer(\d+)")


def rule_path(name: str) -> str:
    """The rule files' form of artifact `name`: ``results/{run}/`` + its template (wildcards left for Snakemake)."""
    return f"results/{{run}}/{PATHS[name]}"


def layer_of_path(path: PathLike) -> int:
    """The layer of a per-layer file: the number in its last ``layer{L}`` path component part (a ValueError naming
    the path when there is none)."""
    found = _LAYER_IN_NAME.findall(Path(path).as_posix())
    if not found:
        raise ValueError(f"{path}: no layer{{L}} in the path; expected a per-layer file such as .../layer6.parquet")
    return int(found[-1])


def layer_files(root: PathLike, template: str) -> dict[int, Path]:
    """{layer: path} of the files of `template` (relative to `root`, with ``{layer}`` and no other wildcard) present
    under `root`, by layer."""
    root = Path(root)
    pattern = re.compile(re.escape(template).replace(re.escape("{layer}"), r"(\d+)") + "$")
    found = {}
    for path in root.glob(template.replace("{layer}", "*")):
        match = pattern.fullmatch(path.relative_to(root).as_posix())
        if match and path.is_file():
            found[int(match.group(1))] = path
    return dict(sorted(found.items()))


class RunPaths:
    """The concrete paths of one run: ``RunPaths("results/default").topk("base", 6)``."""

    def __init__(self, root: PathLike) -> None:
        self.root = Path(root)

    def path(self, name: str, **wildcards: object) -> Path:
        """Artifact `name` with its wildcards filled (a KeyError names a missing wildcard)."""
        return self.root / PATHS[name].format(**wildcards)

    def layers(self, name: str, **wildcards: object) -> dict[int, Path]:
        """{layer: path} of the per-layer artifact `name` present in the run (other wildcards filled)."""
        template = PATHS[name].replace("{layer}", "\0").format(**wildcards).replace("\0", "{layer}")
        return layer_files(self.root, template)

    def glob(self, name: str, **wildcards: object) -> list[Path]:
        """The existing files of artifact `name`, the wildcards not given matching anything, sorted."""
        template = re.sub(r"\{(\w+)\}", lambda m: str(wildcards.get(m.group(1), "*")), PATHS[name])
        return sorted(p for p in self.root.glob(template) if p.is_file())

    def corpus_files(self) -> list[Path]:
        """The run's ``corpus/{dataset}.parquet`` files, sorted by name."""
        return sorted(p for p in (self.root / "corpus").glob("*.parquet") if p.is_file())

    def topk(self, model: str, layer: int) -> Path:
        return self.path("topk", model=model, layer=layer)

    def sample(self) -> Path:
        return self.path("sample")

    def sample_activations(self, model: str, pooling: str, layer: int) -> Path:
        return self.path("sample_activations", model=model, pooling=pooling, layer=layer)

    def patterns(self, layer: int) -> Path:
        return self.path("patterns", layer=layer)

    def profiles(self, layer: int) -> Path:
        return self.path("profiles", layer=layer)

    def profile_metadata(self, layer: int) -> Path:
        return self.path("profile_metadata", layer=layer)

    def pattern_sentences(self, layer: int) -> Path:
        return self.path("pattern_sentences", layer=layer)

    def corpus_metadata(self) -> Path:
        return self.path("corpus_metadata")

    def records(self, model: str, layer: int) -> Path:
        return self.path("records", model=model, layer=layer)

    def histograms(self, model: str, layer: int) -> Path:
        return self.path("histograms", model=model, layer=layer)

    def scores(self, layer: int) -> Path:
        return self.path("scores", layer=layer)

    def provenance(self) -> Path:
        return self.path("provenance")
