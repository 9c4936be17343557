"""Per-stage config hashes: each job's params hold only the config its output depends on.

Snakemake reruns a job when its params change (``--rerun-triggers params``). A hash of the whole config in a job's
params reruns it after any edit, e.g. a display setting such as ``report.sentences_per_neuron`` would rerun every
scan. `stage_hash(config, stage)` hashes only the config subset that determines the stage's outputs (transitively,
through its inputs), and that hash is also what the stage stamps into its parquet metadata, so the same relevant
config gives the same bytes.
"""

from __future__ import annotations

from typing import Any

from neurotext.config import config_hash

#: Config keys (dotted paths) that determine each stage's outputs, inputs' keys included.
STAGE_KEYS: dict[str, tuple[str, ...]] = {
    "corpus": ("datasets", "corpus"),
    "shards": ("datasets", "corpus", "model.path", "model.max_length"),
    "topk": ("datasets", "corpus", "model", "scan"),
}


def config_subset(config: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """The values of the dotted `keys` in `config` (absent keys left out), nested as in the config."""
    subset: dict[str, Any] = {}
    for key in keys:
        *parents, last = key.split(".")
        source: Any = config
        for part in parents:
            source = source.get(part) if isinstance(source, dict) else None
        if not isinstance(source, dict) or last not in source:
            continue
        target = subset
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = source[last]
    return subset


def stage_hash(config: dict[str, Any], stage: str) -> str:
    """16 hex digits: the config hash of the keys `STAGE_KEYS[stage]` alone."""
    if stage not in STAGE_KEYS:
        raise KeyError(f"unknown stage {stage!r}: one of {', '.join(STAGE_KEYS)}")
    return config_hash(config_subset(config, STAGE_KEYS[stage]))
