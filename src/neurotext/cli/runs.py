"""Finding runs under the results directory and `neurotext runs`: each run's config hash, layers and stages.

Everything is read through `neurotext.artifacts`, imported inside the functions (it pulls in pyarrow), so the
parser and ``--help`` start without it.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from neurotext.cli.text import print_json, span_text, table

DEFAULT_RESULTS = "results"
DEFAULT_RUN = "demo"


class UserError(Exception):
    """A problem the user can fix: printed as one line, exit status 2."""


#: What `neurotext runs` looks for, in DAG order: (stage shown, artifact names of `artifacts.paths.PATHS`,
#: wildcards). A per-layer artifact lists its layers; the others are present or not.
STAGES: tuple[tuple[str, tuple[str, ...], dict[str, str]], ...] = (
    ("corpus", ("corpus",), {}),
    ("sample", ("sample",), {}),
    ("topk", ("topk",), {"model": "base"}),
    ("records", ("records",), {"model": "base"}),
    ("parses", ("parses",), {}),
    ("patterns", ("patterns",), {}),
    ("relations", ("tsne",), {}),
    ("scores", ("scores",), {}),
    ("finetune", ("finetune_neurons",), {}),
    ("tables", ("table1", "table2", "table3", "scores_table"), {}),
    ("figures", ("fig1", "fig2", "fig3", "fig4", "scores_figure"), {}),
    ("browser", ("browser_index",), {}),
)
MODEL = "base"  # the model whose top K, patterns and scores the CLI shows


def results_dir(args: argparse.Namespace) -> Path:
    """The results directory from ``--results`` (before or after the command), else ./results."""
    chosen = getattr(args, "results", None) or getattr(args, "results_main", None) or DEFAULT_RESULTS
    path = Path(chosen)
    if not path.is_dir():
        raise UserError(
            f"no results directory {str(path)!r} (from {Path.cwd()}); run the workflow first "
            "(snakemake --cores 2) or point --results at the directory holding the runs"
        )
    return path


def run_paths(root: Path) -> Any:
    """`neurotext.artifacts.paths.RunPaths` of the run folder `root` (imported here: it pulls in pyarrow)."""
    from neurotext.artifacts.paths import RunPaths

    return RunPaths(root)


def every_layer(name: str, **wildcards: str) -> str:
    """Artifact `name`'s path template with ``{layer}`` as ``*`` and `wildcards` filled, for messages."""
    from neurotext.artifacts.paths import PATHS

    return PATHS[name].replace("{layer}", "*").format(**wildcards)


def list_runs(results: Path) -> list[str]:
    """Names of the run folders under `results` (those holding provenance.json or any artifact's folder), sorted."""
    from neurotext.artifacts.paths import PATHS

    tops = {template.split("/", 1)[0] for template in PATHS.values()}
    return [entry.name for entry in sorted(results.iterdir())
            if entry.is_dir() and any((entry / top).exists() for top in tops)]  # fmt: skip


def choose_run(results: Path, name: str | None) -> tuple[str, Path]:
    """(run name, run folder): `name`, else the only run, else 'demo'; a `UserError` naming the runs otherwise."""
    runs = list_runs(results)
    hint = f"runs under {str(results)!r}: {', '.join(runs)}" if runs else f"{str(results)!r} holds no runs yet"
    if name is None:
        if len(runs) == 1:
            name = runs[0]
        elif DEFAULT_RUN in runs:
            name = DEFAULT_RUN
        elif not runs:
            raise UserError(f"{str(results)!r} holds no runs yet; run the workflow first (snakemake --cores 2)")
        else:
            raise UserError(f"several runs and none is {DEFAULT_RUN!r}; pick one with --run NAME ({hint})")
    if name not in runs:
        raise UserError(f"no run {name!r} ({hint}); pick one with --run NAME or run the workflow for it")
    return name, results / name


def read_provenance(root: Path) -> dict[str, Any]:
    """The run's ``provenance.json`` ({} when absent or unreadable)."""
    try:
        provenance = json.loads(run_paths(root).provenance().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return provenance if isinstance(provenance, dict) else {}


def run_features(root: Path) -> str:
    """The run's ``model.features`` (neurons, directions, sae) from its provenance; 'neurons' when unknown."""
    from neurotext.artifacts.provenance import features_of

    return features_of(read_provenance(root))


def rebuild_hint(run: str, relative: str) -> str:
    return f"the workflow makes it: snakemake --cores 2 results/{run}/{relative}"


@dataclass
class RunSummary:
    """What one run holds: its config hash, the hashes stamped in each stage's files, layers and stages."""

    name: str
    path: str
    config_hash: str  # provenance.json's hash, else the hash stamped in most of its files
    hashes: dict[str, list[str]]  # stage -> the distinct config hashes stamped in its parquet files
    stale: list[str]  # stages whose files disagree with each other or with the run's config (provenance.json)
    layers: list[int]  # layers with a top-K file
    stages: dict[str, list[int] | bool]  # stage -> its layers (per-layer stages) or True

    def stage_text(self) -> str:
        words = []
        for stage, held in self.stages.items():
            words.append(stage if held is True or held == self.layers else f"{stage}[{span_text(held)}]")
        return " ".join(words) or "-"


def expected_hashes(config: Any) -> set[str] | None:
    """The hashes a file made under `config` may carry: the whole config's, or one stage's subset of it
    (`neurotext.hashing.stage_hash`); None without a config."""
    if not isinstance(config, dict):
        return None
    from neurotext.config import config_hash
    from neurotext.hashing import STAGE_KEYS, stage_hash

    return {config_hash(config), *(stage_hash(config, stage) for stage in STAGE_KEYS)}


def summarize_run(name: str, root: Path) -> RunSummary:
    """Scan the run folder `root`: stages present, layers, and the config hashes stamped in each stage's files.

    A stage is stale when its files carry different hashes, or (with a provenance.json holding the run's config) a
    hash that is neither the config's nor one of its per-stage hashes: it was made under another config.
    """
    from collections import Counter

    from neurotext.artifacts.paths import PATHS
    from neurotext.io import read_config_hash

    paths = run_paths(root)
    stages: dict[str, list[int] | bool] = {}
    hashes: dict[str, list[str]] = {}
    counts: Counter[str] = Counter()
    for stage, names, wildcards in STAGES:
        if "{layer}" in PATHS[names[0]]:
            found = paths.layers(names[0], **wildcards)
            held: list[int] | bool = list(found)
            files = list(found.values())
        else:
            files = [p for n in names for p in paths.glob(n, **wildcards)]
            held = True
        if files:
            stages[stage] = held
            stamped = [h for h in (read_config_hash(p) for p in files if p.suffix == ".parquet") if h]
            counts.update(stamped)
            if stamped:
                hashes[stage] = sorted(set(stamped))
    provenance = read_provenance(root)
    expected = expected_hashes(provenance.get("config"))
    stale = [stage for stage, stamped in hashes.items()
             if len(stamped) > 1 or (expected is not None and not set(stamped) <= expected)]  # fmt: skip
    common = min(counts, key=lambda h: (-counts[h], h)) if counts else ""
    config_hash = str(provenance.get("config_hash") or common)
    layers = stages.get("topk", [])
    return RunSummary(name, str(root), config_hash, hashes, stale, layers if isinstance(layers, list) else [], stages)


def cmd_runs(args: argparse.Namespace, out: TextIO) -> int:
    """`neurotext runs`."""
    results = results_dir(args)
    summaries = [summarize_run(name, results / name) for name in list_runs(results)]
    if args.json:
        print_json({"results": str(results), "runs": [vars(s) for s in summaries]}, out)
        return 0
    if not summaries:
        out.write(f"no runs under {str(results)!r} yet; run the workflow first (snakemake --cores 2)\n")
        return 0
    rows = [[s.name, s.config_hash or "-", span_text(s.layers) or "-", s.stage_text()] for s in summaries]
    out.write("\n".join(table(rows, ["run", "config", "layers", "stages"], indent="")) + "\n")
    for s in summaries:
        if s.stale:
            detail = "; ".join(f"{stage} {','.join(s.hashes[stage])}" for stage in s.stale)
            out.write(f"\nrun {s.name}: files made under another config (stale; rerun the workflow to remake them): "
                      f"{detail}\n")  # fmt: skip
    return 0
