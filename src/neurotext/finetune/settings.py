"""The fine-tuning experiment's settings: the config's ``finetune:`` block validated into `FinetuneSettings`.

The config schema holds every default of the block; the dataclasses below have none, and ``from_config`` reads the
validated block (schema defaults filled; partial blocks: ``neurotext.validate.with_defaults("finetune", partial)``)
without a fallback, so a missing key raises ConfigError naming it. `max_train_examples` / `max_holdout_examples` are
optional keys without a default: absent (like null) means no cap.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from neurotext.config import ConfigError, require_key
from neurotext.encoder import DEVICES
from neurotext.artifacts.corpus import METADATA_FIELDS

MULTI_LABEL_MODES = ("first", "single", "multi")
UNITS = ("sentence", "document")
OPTIMIZERS = ("adam", "adamw")
DROPOUT_SCOPES = ("classifier", "all")
OVERLAP_SOURCES = ("sample", "corpus")


@dataclass(frozen=True)
class HoldoutSettings:
    """How the held-out part is chosen. `column`: the corpus column naming each row's split (used when it has
    values), with `train_values` / `holdout_values`; otherwise `fraction` of each class's documents (stratified by the
    document's first label when `stratify`), chosen by the smallest splitmix64(hash(doc_id) ^ seed)."""

    column: str
    train_values: tuple[str, ...]
    holdout_values: tuple[str, ...]
    fraction: float
    stratify: bool
    seed: int


@dataclass(frozen=True)
class EvalSettings:
    """Table 3's sets: `n` sentences (seeded) each of the training part, the held-out part and `out_of_domain`."""

    n: int
    out_of_domain: str
    seed: int


@dataclass(frozen=True)
class OverlapSettings:
    """How each neuron's top set is compared before and after: `source` 'sample' (top `k` among the sample's
    activations) or 'corpus' (the corpus top K of `topk/{base,finetuned}`); `top_neurons` rows in Table 3's
    most-moved list."""

    source: str
    k: int
    top_neurons: int


@dataclass(frozen=True)
class FinetuneSettings:
    """The config's `finetune:` block, validated (see `from_config` for each key)."""

    dataset: str
    label: str
    multi_label: str
    unit: str
    holdout: HoldoutSettings
    min_class_examples: int
    max_train_examples: int | None  # optional key, no default: absent or null = no cap
    max_holdout_examples: int | None
    epochs: int
    batch_size: int
    length_buckets: int
    dropout: float
    dropout_scope: str
    lr: float
    optimizer: str
    weight_decay: float
    seed: int
    device: str
    threads: int
    eval: EvalSettings
    overlap: OverlapSettings

    @classmethod
    def from_config(cls, block: Mapping[str, Any] | None, datasets: Sequence[str] | None = None) -> FinetuneSettings:
        """Validate the `finetune:` block (as `neurotext.validate` fills it: every default present); errors name the
        key. `datasets`: the configured dataset names."""
        if not isinstance(block, Mapping):
            raise ConfigError("finetune: missing or not a mapping; add a finetune: block (see config/config.yaml)")
        _known_keys(block, "finetune", {f for f in cls.__dataclass_fields__})
        dataset = _string(block, "dataset")
        if datasets is not None and dataset not in datasets:
            raise ConfigError(f"finetune.dataset = {dataset!r}: not a configured dataset ({', '.join(datasets)})")
        label = _string(block, "label")
        if label not in METADATA_FIELDS:
            raise ConfigError(
                f"finetune.label = {label!r}: choose a metadata column of the corpus ({', '.join(METADATA_FIELDS)})"
            )
        holdout_block = require_key(block, "finetune.holdout")
        if not isinstance(holdout_block, Mapping):
            raise ConfigError("finetune.holdout: a mapping (column, train_values, holdout_values, fraction, ...)")
        _known_keys(holdout_block, "finetune.holdout", set(HoldoutSettings.__dataclass_fields__))
        fraction = _number(holdout_block, "fraction", "finetune.holdout.fraction")
        if not 0.0 < fraction < 1.0:
            raise ConfigError(f"finetune.holdout.fraction = {fraction!r}: a number strictly between 0 and 1")
        holdout = HoldoutSettings(
            column=str(require_key(holdout_block, "finetune.holdout.column")),
            train_values=_strings(holdout_block, "train_values", "finetune.holdout.train_values"),
            holdout_values=_strings(holdout_block, "holdout_values", "finetune.holdout.holdout_values"),
            fraction=fraction,
            stratify=_boolean(holdout_block, "stratify", "finetune.holdout.stratify"),
            seed=_integer(holdout_block, "seed", "finetune.holdout.seed", minimum=0),
        )
        if set(holdout.train_values) & set(holdout.holdout_values):
            raise ConfigError("finetune.holdout.train_values and holdout_values share a value; make them disjoint")
        eval_block = require_key(block, "finetune.eval")
        if not isinstance(eval_block, Mapping):
            raise ConfigError("finetune.eval: a mapping (n, out_of_domain, seed)")
        _known_keys(eval_block, "finetune.eval", set(EvalSettings.__dataclass_fields__))
        out_of_domain = _string(eval_block, "out_of_domain", key="finetune.eval.out_of_domain")
        if datasets is not None and out_of_domain not in datasets:
            raise ConfigError(
                f"finetune.eval.out_of_domain = {out_of_domain!r}: not a configured dataset ({', '.join(datasets)})"
            )
        if out_of_domain == dataset:
            raise ConfigError(
                f"finetune.eval.out_of_domain = {out_of_domain!r} is the fine-tuning dataset; choose another dataset"
            )
        evaluation = EvalSettings(
            n=_integer(eval_block, "n", "finetune.eval.n", minimum=1),
            out_of_domain=out_of_domain,
            seed=_integer(eval_block, "seed", "finetune.eval.seed", minimum=0),
        )
        overlap_block = require_key(block, "finetune.overlap")
        if not isinstance(overlap_block, Mapping):
            raise ConfigError("finetune.overlap: a mapping (source, k, top_neurons)")
        _known_keys(overlap_block, "finetune.overlap", set(OverlapSettings.__dataclass_fields__))
        overlap = OverlapSettings(
            source=_choice(overlap_block, "source", OVERLAP_SOURCES, "finetune.overlap.source"),
            k=_integer(overlap_block, "k", "finetune.overlap.k", minimum=1),
            top_neurons=_integer(overlap_block, "top_neurons", "finetune.overlap.top_neurons", minimum=1),
        )
        dropout = _number(block, "dropout", "finetune.dropout")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"finetune.dropout = {dropout!r}: a probability in [0, 1)")
        lr = _number(block, "lr", "finetune.lr")
        if lr < 0:
            raise ConfigError(f"finetune.lr = {lr!r}: a learning rate >= 0")
        weight_decay = _number(block, "weight_decay", "finetune.weight_decay")
        if weight_decay < 0:
            raise ConfigError(f"finetune.weight_decay = {weight_decay!r}: >= 0")
        return cls(
            dataset=dataset,
            label=label,
            multi_label=_choice(block, "multi_label", MULTI_LABEL_MODES, "finetune.multi_label"),
            unit=_choice(block, "unit", UNITS, "finetune.unit"),
            holdout=holdout,
            min_class_examples=_integer(block, "min_class_examples", "finetune.min_class_examples", minimum=1),
            max_train_examples=_optional_integer(block, "max_train_examples"),
            max_holdout_examples=_optional_integer(block, "max_holdout_examples"),
            epochs=_integer(block, "epochs", "finetune.epochs", minimum=1),
            batch_size=_integer(block, "batch_size", "finetune.batch_size", minimum=1),
            length_buckets=_integer(block, "length_buckets", "finetune.length_buckets", minimum=1),
            dropout=dropout,
            dropout_scope=_choice(block, "dropout_scope", DROPOUT_SCOPES, "finetune.dropout_scope"),
            lr=lr,
            optimizer=_choice(block, "optimizer", OPTIMIZERS, "finetune.optimizer"),
            weight_decay=weight_decay,
            seed=_integer(block, "seed", "finetune.seed", minimum=0),
            device=_choice(block, "device", DEVICES, "finetune.device"),
            threads=_integer(block, "threads", "finetune.threads", minimum=1),
            eval=evaluation,
            overlap=overlap,
        )


def check_finetune_config(
    block: Mapping[str, Any] | None, datasets: Sequence[str], sample_size: int | None = None
) -> FinetuneSettings | None:
    """Validate the `finetune:` block when the DAG is built; None when the config has no such block (the
    experiment is then off). `overlap.k` larger than `sample.size` is an error naming finetune.overlap.k."""
    if block is None:
        return None
    settings = FinetuneSettings.from_config(block, datasets)
    if settings.overlap.source == "sample" and sample_size is not None and settings.overlap.k > sample_size:
        raise ConfigError(
            f"finetune.overlap.k = {settings.overlap.k}: larger than sample.size = {sample_size}; the top sets are "
            "taken among the sample's activations, so choose k <= sample.size (about 1-5% of it)"
        )
    return settings


def _known_keys(block: Mapping[str, Any], prefix: str, known: set[str]) -> None:
    unknown = sorted(set(block) - known)
    if unknown:
        raise ConfigError(f"{prefix}.{unknown[0]}: unknown key; the keys of {prefix} are {', '.join(sorted(known))}")


def _string(block: Mapping[str, Any], name: str, key: str | None = None) -> str:
    key = key or f"finetune.{name}"
    value = block.get(name)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key} = {value!r}: required, a non-empty string")
    return value


def _strings(block: Mapping[str, Any], name: str, key: str) -> tuple[str, ...]:
    value = require_key(block, key)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{key} = {value!r}: a non-empty list of strings")
    return tuple(value)


def _integer(block: Mapping[str, Any], name: str, key: str, minimum: int) -> int:
    value = require_key(block, key)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{key} = {value!r}: an integer >= {minimum}")
    return value


def _optional_integer(block: Mapping[str, Any], name: str) -> int | None:
    value = block.get(name)
    if value is None:
        return None
    return _integer(block, name, f"finetune.{name}", minimum=1)


def _number(block: Mapping[str, Any], name: str, key: str) -> float:
    value = require_key(block, key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{key} = {value!r}: a number")
    return float(value)


def _boolean(block: Mapping[str, Any], name: str, key: str) -> bool:
    value = require_key(block, key)
    if not isinstance(value, bool):
        raise ConfigError(f"{key} = {value!r}: true or false")
    return value


def _choice(block: Mapping[str, Any], name: str, choices: Sequence[str], key: str) -> str:
    value = require_key(block, key)
    if value not in choices:
        raise ConfigError(f"{key} = {value!r}: choose one of {', '.join(choices)}")
    return value
