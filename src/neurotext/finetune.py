"""The fine-tuning experiment (paper section 4.4, Table 3): how far fine-tuning moves each sentence's activations.

The paper fine-tunes BERT on Reuters category classification and measures, for 10,000 sentences each of Reuters
train, Reuters test and Sentiment140, the mean Manhattan and Euclidean distance between a sentence's 9,216-dim
activation vector (12 layers x 768 neurons) before and after fine-tuning: text closer to the fine-tuning data moves
more. Stages, each a rule, meeting only through files under `results/{run}/finetune/`:

1. `split_labelled` -> `labelled.parquet` (`LABELLED_SCHEMA`): the labelled sentences of `finetune.dataset`, their
   label (the metadata column `finetune.label`; multi-label values joined by '|' are handled by
   `finetune.multi_label`) and their part, train or holdout. The held-out part is the dataset's own split column
   (`finetune.holdout.column`, e.g. Reuters' LEWISSPLIT train/test) when it has values, else a seeded,
   document-level split (`holdout.fraction` of each class's documents, so no document is on both sides). Classes
   with fewer than `min_class_examples` training examples are dropped; at most `max_train_examples` /
   `max_holdout_examples` examples are kept (seeded choice).
2. `train_classifier` -> `model/` (Hugging Face `save_pretrained` of the encoder with its classification head, plus
   the tokenizer; written to a temporary directory beside it and renamed, so a killed run leaves no model) and
   `metrics.json` (held-out accuracy before training and after each epoch, the chance rate). Sequence
   classification with the paper's hyper-parameters by config: batch size, dropout, Adam, learning rate, epochs.
3. `eval_sentences` -> `eval/sentences.parquet` (`EVAL_SCHEMA`): N sentences (`eval.n`, seeded) each of the
   training part, the held-out part and the out-of-domain dataset (`eval.out_of_domain`). Their activations before
   and after fine-tuning come from `neurotext.scan.sample_activations` (the scan's own path: same tokenization,
   site, pooling and batch plan) as `eval/{model}/{pooling}/layer{L}.npy`.
4. `activation_distances` / `write_distances` -> `distances.parquet` (`DISTANCES_SCHEMA`: per set, per layer and
   over all layers, mean Manhattan and Euclidean distance) and `sentence_distances.parquet` (per sentence).
5. `neuron_changes` -> `neurons.parquet` (`NEURONS_SCHEMA`): per neuron, the mean absolute change of its
   activation over the sample and over each evaluation set, and how its top set moved: the Jaccard overlap of its
   top K' sample sentences before and after (`overlap.source: sample`, from `sample/{model}/{pooling}/layer{L}.npy`)
   or of its corpus top K (`overlap.source: corpus`, from `topk/{base,finetuned}/layer{L}.parquet`).
6. `write_table3` -> `tables/table3.md` (ours beside the paper's numbers, plus per-layer distances and the neurons
   that moved most) and `tables/table3.csv`.

Distances, exactly: for sentence s with pooled activations a_L(s) (before) and b_L(s) (after) of layer L, float32
[n_neurons], d_L(s) = b_L(s) - a_L(s) in float64; Manhattan_L(s) = sum |d_L(s)|, Euclidean_L(s) = sqrt(sum d_L(s)^2);
over all layers (the paper's vector: layers concatenated) Manhattan(s) = sum_L Manhattan_L(s) and
Euclidean(s) = sqrt(sum_L Euclidean_L(s)^2). Tables report means over the set's sentences, in activation units.

Determinism: fixed seeds (data order, dropout, head initialisation), `torch.use_deterministic_algorithms` (warn
only), torch threads from config. Same machine, threads and config -> same bytes (tested); across thread counts,
machines or devices the fine-tuned weights can differ in the last bits and drift apart over the steps, so distances
from different machines agree to a tolerance, not byte for byte.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from neurotext.config import ConfigError
from neurotext.encoder import (
    DEVICES,
    ModelSettings,
    ScanSettings,
    Tokens,
    load_tokenizer,
    make_batch,
    plan_batches,
    select_device,
    tokenize,
)
from neurotext.formats import METADATA_FIELDS, neuron_name
from neurotext.ids import dataset_code_of, sample_order, splitmix64, text_hash64
from neurotext.io import write_json, write_parquet, write_text
from neurotext.logs import progress
from neurotext.topk import activation_keys, decode_keys, select_top

log = logging.getLogger("neurotext.finetune")

PathLike = str | os.PathLike[str]

MULTI_LABEL_MODES = ("first", "single", "multi")
UNITS = ("sentence", "document")
OPTIMIZERS = ("adam", "adamw")
DROPOUT_SCOPES = ("classifier", "all")
OVERLAP_SOURCES = ("sample", "corpus")
PARTS = ("train", "holdout")
#: Evaluation sets, in table order: in-domain training part, in-domain held-out part, out-of-domain dataset.
EVAL_SETS = ("train", "holdout", "out_of_domain")
LABEL_SEPARATOR = "|"

#: Table 3 of the paper (BERT-base, Reuters fine-tuning, 10,000 sentences a set): (Manhattan, Euclidean).
PAPER_TABLE3: dict[str, tuple[str, float, float]] = {
    "train": ("Reuters train", 2161.4, 34.8),
    "holdout": ("Reuters test", 1947.9, 31.2),
    "out_of_domain": ("Sentiment140", 1553.4, 24.5),
}

#: `finetune/labelled.parquet`: one row per kept labelled sentence, sorted by sentence_id.
LABELLED_SCHEMA = pa.schema(
    [
        pa.field("sentence_id", pa.uint32(), nullable=False),
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("label", pa.string(), nullable=False),  # class name; multi-label: sorted names joined by '|'
        pa.field("part", pa.string(), nullable=False),  # train | holdout
    ]
)

#: `finetune/eval/sentences.parquet`: the evaluation sentences, sorted by sentence_id (the activation row order).
EVAL_SCHEMA = pa.schema(
    [
        pa.field("sentence_id", pa.uint32(), nullable=False),
        pa.field("set", pa.string(), nullable=False),  # train | holdout | out_of_domain
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
    ]
)

#: `finetune/distances.parquet`: one row per (set, layer); layer null = all layers concatenated (the paper's).
DISTANCES_SCHEMA = pa.schema(
    [
        pa.field("set", pa.string(), nullable=False),
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("layer", pa.int32(), nullable=True),
        pa.field("n_sentences", pa.int32(), nullable=False),
        pa.field("n_dims", pa.int32(), nullable=False),  # neurons in the vector (layers x neurons for null)
        pa.field("manhattan", pa.float64(), nullable=False),  # mean over sentences
        pa.field("manhattan_std", pa.float64(), nullable=False),
        pa.field("euclidean", pa.float64(), nullable=False),
        pa.field("euclidean_std", pa.float64(), nullable=False),
        pa.field("relative_euclidean", pa.float64(), nullable=False),  # mean of |after - before| / |before|
        pa.field("mean_abs_change", pa.float64(), nullable=False),  # manhattan / n_dims
    ]
)

#: `finetune/sentence_distances.parquet`: one row per (sentence, layer); layer null = all layers.
SENTENCE_DISTANCES_SCHEMA = pa.schema(
    [
        pa.field("sentence_id", pa.uint32(), nullable=False),
        pa.field("set", pa.string(), nullable=False),
        pa.field("layer", pa.int32(), nullable=True),
        pa.field("manhattan", pa.float64(), nullable=False),
        pa.field("euclidean", pa.float64(), nullable=False),
        pa.field("before_norm", pa.float64(), nullable=False),  # Euclidean norm of the before vector
        pa.field("n_words", pa.int32(), nullable=False),  # whitespace-separated words of the sentence
    ]
)

#: Sentence-length bins (words, lower bounds) of Table 3's length-matched comparison.
LENGTH_BINS = (1, 9, 16, 26, 41)

#: `finetune/neurons.parquet`: one row per neuron (layer, neuron), sorted.
NEURONS_SCHEMA = pa.schema(
    [
        pa.field("layer", pa.int32(), nullable=False),
        pa.field("neuron", pa.int32(), nullable=False),
        pa.field("name", pa.string(), nullable=False),  # L{layer}.{neuron}
        pa.field("mean_abs_change", pa.float64(), nullable=False),  # over the sample: mean |after - before|
        pa.field("mean_change", pa.float64(), nullable=False),  # over the sample: mean (after - before)
        pa.field("base_std", pa.float64(), nullable=False),  # std of the before activations over the sample
        pa.field("relative_change", pa.float64(), nullable=False),  # mean_abs_change / base_std (NaN: constant)
        pa.field("change_train", pa.float64(), nullable=False),  # mean |after - before| over each eval set
        pa.field("change_holdout", pa.float64(), nullable=False),
        pa.field("change_out_of_domain", pa.float64(), nullable=False),
        pa.field("top_k", pa.int32(), nullable=False),  # size of the top sets compared
        pa.field("jaccard", pa.float64(), nullable=False),  # |top before & top after| / |top before | top after|
        pa.field("top_dataset_before", pa.string(), nullable=False),  # most frequent dataset in the top set
        pa.field("top_share_before", pa.float64(), nullable=False),
        pa.field("top_dataset_after", pa.string(), nullable=False),
        pa.field("top_share_after", pa.float64(), nullable=False),
        pa.field("top_sentence_before", pa.uint32(), nullable=False),  # rank-0 sentence
        pa.field("top_sentence_after", pa.uint32(), nullable=False),
    ]
)


# --------------------------------------------------------------------------------------------------------------
# Settings


@dataclass(frozen=True)
class HoldoutSettings:
    """How the held-out part is chosen. `column`: the corpus column naming each row's split (used when it has
    values), with `train_values` / `holdout_values`; otherwise `fraction` of each class's documents (stratified by the
    document's first label when `stratify`), chosen by the smallest splitmix64(hash(doc_id) ^ seed)."""

    column: str = "split"
    train_values: tuple[str, ...] = ("train",)
    holdout_values: tuple[str, ...] = ("test",)
    fraction: float = 0.2
    stratify: bool = True
    seed: int = 0


@dataclass(frozen=True)
class EvalSettings:
    """Table 3's sets: `n` sentences (seeded) each of the training part, the held-out part and `out_of_domain`."""

    n: int = 500
    out_of_domain: str = ""
    seed: int = 0


@dataclass(frozen=True)
class OverlapSettings:
    """How each neuron's top set is compared before and after: `source` 'sample' (top `k` among the sample's
    activations) or 'corpus' (the corpus top K of `topk/{base,finetuned}`); `top_neurons` rows in Table 3's
    most-moved list."""

    source: str = "sample"
    k: int = 50
    top_neurons: int = 20


@dataclass(frozen=True)
class FinetuneSettings:
    """The config's `finetune:` block, validated (see `from_config` for each key)."""

    dataset: str
    label: str
    multi_label: str = "first"
    unit: str = "sentence"
    holdout: HoldoutSettings = field(default_factory=HoldoutSettings)
    min_class_examples: int = 1
    max_train_examples: int | None = None
    max_holdout_examples: int | None = None
    epochs: int = 5
    batch_size: int = 8
    length_buckets: int = 1
    dropout: float = 0.5
    dropout_scope: str = "classifier"
    lr: float = 1e-5
    optimizer: str = "adam"
    weight_decay: float = 0.0
    seed: int = 0
    device: str = "auto"
    threads: int = 2
    eval: EvalSettings = field(default_factory=EvalSettings)
    overlap: OverlapSettings = field(default_factory=OverlapSettings)

    @classmethod
    def from_config(cls, block: Mapping[str, Any] | None, datasets: Sequence[str] | None = None) -> FinetuneSettings:
        """Validate the `finetune:` block; errors name the key. `datasets`: the configured dataset names."""
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
        holdout_block = block.get("holdout", {}) or {}
        if not isinstance(holdout_block, Mapping):
            raise ConfigError("finetune.holdout: a mapping (column, train_values, holdout_values, fraction, ...)")
        _known_keys(holdout_block, "finetune.holdout", set(HoldoutSettings.__dataclass_fields__))
        fraction = _number(holdout_block, "fraction", 0.2, "finetune.holdout.fraction")
        if not 0.0 < fraction < 1.0:
            raise ConfigError(f"finetune.holdout.fraction = {fraction!r}: a number strictly between 0 and 1")
        holdout = HoldoutSettings(
            column=str(holdout_block.get("column", "split")),
            train_values=_strings(holdout_block, "train_values", ("train",), "finetune.holdout.train_values"),
            holdout_values=_strings(holdout_block, "holdout_values", ("test",), "finetune.holdout.holdout_values"),
            fraction=fraction,
            stratify=_boolean(holdout_block, "stratify", True, "finetune.holdout.stratify"),
            seed=_integer(holdout_block, "seed", 0, "finetune.holdout.seed", minimum=0),
        )
        if set(holdout.train_values) & set(holdout.holdout_values):
            raise ConfigError("finetune.holdout.train_values and holdout_values share a value; make them disjoint")
        eval_block = block.get("eval", {}) or {}
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
            n=_integer(eval_block, "n", 500, "finetune.eval.n", minimum=1),
            out_of_domain=out_of_domain,
            seed=_integer(eval_block, "seed", 0, "finetune.eval.seed", minimum=0),
        )
        overlap_block = block.get("overlap", {}) or {}
        if not isinstance(overlap_block, Mapping):
            raise ConfigError("finetune.overlap: a mapping (source, k, top_neurons)")
        _known_keys(overlap_block, "finetune.overlap", set(OverlapSettings.__dataclass_fields__))
        overlap = OverlapSettings(
            source=_choice(overlap_block, "source", "sample", OVERLAP_SOURCES, "finetune.overlap.source"),
            k=_integer(overlap_block, "k", 50, "finetune.overlap.k", minimum=1),
            top_neurons=_integer(overlap_block, "top_neurons", 20, "finetune.overlap.top_neurons", minimum=1),
        )
        dropout = _number(block, "dropout", 0.5, "finetune.dropout")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"finetune.dropout = {dropout!r}: a probability in [0, 1)")
        lr = _number(block, "lr", 1e-5, "finetune.lr")
        if lr < 0:
            raise ConfigError(f"finetune.lr = {lr!r}: a learning rate >= 0")
        weight_decay = _number(block, "weight_decay", 0.0, "finetune.weight_decay")
        if weight_decay < 0:
            raise ConfigError(f"finetune.weight_decay = {weight_decay!r}: >= 0")
        return cls(
            dataset=dataset,
            label=label,
            multi_label=_choice(block, "multi_label", "first", MULTI_LABEL_MODES, "finetune.multi_label"),
            unit=_choice(block, "unit", "sentence", UNITS, "finetune.unit"),
            holdout=holdout,
            min_class_examples=_integer(block, "min_class_examples", 1, "finetune.min_class_examples", minimum=1),
            max_train_examples=_optional_integer(block, "max_train_examples"),
            max_holdout_examples=_optional_integer(block, "max_holdout_examples"),
            epochs=_integer(block, "epochs", 5, "finetune.epochs", minimum=1),
            batch_size=_integer(block, "batch_size", 8, "finetune.batch_size", minimum=1),
            length_buckets=_integer(block, "length_buckets", 1, "finetune.length_buckets", minimum=1),
            dropout=dropout,
            dropout_scope=_choice(block, "dropout_scope", "classifier", DROPOUT_SCOPES, "finetune.dropout_scope"),
            lr=lr,
            optimizer=_choice(block, "optimizer", "adam", OPTIMIZERS, "finetune.optimizer"),
            weight_decay=weight_decay,
            seed=_integer(block, "seed", 0, "finetune.seed", minimum=0),
            device=_choice(block, "device", "auto", DEVICES, "finetune.device"),
            threads=_integer(block, "threads", 2, "finetune.threads", minimum=1),
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


def _strings(block: Mapping[str, Any], name: str, default: tuple[str, ...], key: str) -> tuple[str, ...]:
    value = block.get(name, list(default))
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{key} = {value!r}: a non-empty list of strings")
    return tuple(value)


def _integer(block: Mapping[str, Any], name: str, default: int, key: str, minimum: int) -> int:
    value = block.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{key} = {value!r}: an integer >= {minimum}")
    return value


def _optional_integer(block: Mapping[str, Any], name: str) -> int | None:
    value = block.get(name)
    if value is None:
        return None
    return _integer(block, name, 0, f"finetune.{name}", minimum=1)


def _number(block: Mapping[str, Any], name: str, default: float, key: str) -> float:
    value = block.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{key} = {value!r}: a number")
    return float(value)


def _boolean(block: Mapping[str, Any], name: str, default: bool, key: str) -> bool:
    value = block.get(name, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{key} = {value!r}: true or false")
    return value


def _choice(block: Mapping[str, Any], name: str, default: str, choices: Sequence[str], key: str) -> str:
    value = block.get(name, default)
    if value not in choices:
        raise ConfigError(f"{key} = {value!r}: choose one of {', '.join(choices)}")
    return value


# --------------------------------------------------------------------------------------------------------------
# Labelled data and the held-out split


def parse_labels(value: Any, multi_label: str) -> tuple[str, ...]:
    """The labels of one corpus value: None/empty -> (); 'a|b' -> ('a',) for 'first', () for 'single' (documents
    with several labels are dropped), ('a', 'b') sorted and unique for 'multi'."""
    if value is None:
        return ()
    names = [part.strip() for part in str(value).split(LABEL_SEPARATOR)]
    names = [name for name in names if name]
    if not names:
        return ()
    if multi_label == "first":
        return (names[0],)
    if multi_label == "single":
        return (names[0],) if len(set(names)) == 1 else ()
    return tuple(sorted(set(names)))


def seeded_order(sentence_ids: np.ndarray, seed: int) -> np.ndarray:
    """Row indices of `sentence_ids` by increasing splitmix64(sentence_id ^ seed) (the sample's rule)."""
    return np.argsort(sample_order(np.asarray(sentence_ids, dtype=np.uint32), seed), kind="stable")


def choose_seeded(sentence_ids: np.ndarray, n: int, seed: int) -> np.ndarray:
    """A boolean mask of the (at most) `n` rows with the smallest splitmix64(sentence_id ^ seed)."""
    mask = np.zeros(len(sentence_ids), dtype=bool)
    mask[seeded_order(sentence_ids, seed)[:n]] = True
    return mask


def split_documents(doc_ids: Sequence[str], strata: Sequence[str], fraction: float, seed: int) -> set[str]:
    """Held-out documents: in each stratum, the round(`fraction` x its documents) documents (at least 1 and at most
    all but one when the stratum has 2 or more) with the smallest splitmix64(text_hash64(doc_id) ^ seed).

    `doc_ids` are unique; `strata[i]` is document i's stratum (one stratum for an unstratified split)."""
    doc_ids = list(doc_ids)
    scores = splitmix64(text_hash64(doc_ids) ^ np.uint64(seed)) if doc_ids else np.empty(0, np.uint64)
    by_stratum: dict[str, list[int]] = {}
    for index, stratum in enumerate(strata):
        by_stratum.setdefault(stratum, []).append(index)
    held_out: set[str] = set()
    for stratum in sorted(by_stratum):
        members = by_stratum[stratum]
        n_docs = len(members)
        n_holdout = int(round(fraction * n_docs))
        if n_docs >= 2:
            n_holdout = min(max(n_holdout, 1), n_docs - 1)
        else:
            n_holdout = 0
        ranked = sorted(members, key=lambda i: (int(scores[i]), doc_ids[i]))
        held_out.update(doc_ids[i] for i in ranked[:n_holdout])
    return held_out


@dataclass
class LabelledRows:
    """Labelled sentences of the fine-tuning dataset: columns as `LABELLED_SCHEMA`; labels as tuples."""

    sentence_ids: np.ndarray  # uint32 [n]
    doc_ids: list[str]
    texts: list[str]
    labels: list[tuple[str, ...]]
    parts: list[str]

    def __len__(self) -> int:
        return len(self.sentence_ids)

    def select(self, mask: np.ndarray) -> LabelledRows:
        """The rows where `mask` (bool [n]) is True, in order."""
        index = np.flatnonzero(mask)
        return LabelledRows(
            self.sentence_ids[index],
            [self.doc_ids[i] for i in index],
            [self.texts[i] for i in index],
            [self.labels[i] for i in index],
            [self.parts[i] for i in index],
        )

    def to_table(self) -> pa.Table:
        return pa.Table.from_arrays(
            [
                pa.array(self.sentence_ids, pa.uint32()),
                pa.array(self.doc_ids, pa.string()),
                pa.array(self.texts, pa.string()),
                pa.array([LABEL_SEPARATOR.join(labels) for labels in self.labels], pa.string()),
                pa.array(self.parts, pa.string()),
            ],
            schema=LABELLED_SCHEMA,
        )


def read_labelled(path: PathLike) -> LabelledRows:
    """Read `finetune/labelled.parquet` (errors name the file)."""
    try:
        table = pq.read_table(path, columns=[f.name for f in LABELLED_SCHEMA])
    except (OSError, pa.ArrowInvalid, KeyError) as error:
        raise ValueError(f"{path}: not a labelled-sentences file ({error}); rerun finetune_split") from error
    return LabelledRows(
        table.column("sentence_id").to_numpy().astype(np.uint32),
        table.column("doc_id").to_pylist(),
        table.column("text").to_pylist(),
        [tuple(v.split(LABEL_SEPARATOR)) for v in table.column("label").to_pylist()],
        table.column("part").to_pylist(),
    )


def _assign_parts(
    corpus: PathLike, doc_ids: list[str], labels: list[tuple[str, ...]], split_values: list[Any] | None,
    settings: FinetuneSettings,
) -> list[str | None]:  # fmt: skip
    """Each row's part (train, holdout or None = unused) from the split column or a seeded document split."""
    holdout = settings.holdout
    if split_values is not None and any(v is not None for v in split_values):
        train_values, holdout_values = set(holdout.train_values), set(holdout.holdout_values)
        parts = [
            "train" if v in train_values else "holdout" if v in holdout_values else None
            for v in (None if s is None else str(s) for s in split_values)
        ]
        counts = Counter(parts)
        log.info(
            "held-out part from column %r: %d train, %d holdout, %d other rows left out",
            holdout.column, counts["train"], counts["holdout"], counts[None],
        )  # fmt: skip
        if counts["holdout"] == 0 or counts["train"] == 0:
            seen = sorted({str(v) for v in split_values if v is not None})
            side = "holdout_values" if counts["holdout"] == 0 else "train_values"
            raise ConfigError(
                f"finetune.holdout.{side} = {list(getattr(holdout, side))}: no labelled row of {corpus} has "
                f"{holdout.column} in it (values seen: {', '.join(seen[:10])}); set finetune.holdout.{side} to "
                f"values of that column, or set finetune.holdout.column to a column without values to use a seeded "
                f"document split"
            )
        return parts
    first_label: dict[str, str] = {}
    for doc_id, row_labels in zip(doc_ids, labels, strict=True):
        first_label.setdefault(doc_id, row_labels[0])
    documents = sorted(first_label)
    strata = [first_label[d] if holdout.stratify else "" for d in documents]
    held_out = split_documents(documents, strata, holdout.fraction, holdout.seed)
    log.info(
        "held-out part: no values in column %r, so a seeded document split (fraction %.2f, %s, seed %d): "
        "%d of %d documents held out",
        holdout.column, holdout.fraction, "stratified by label" if holdout.stratify else "unstratified",
        holdout.seed, len(held_out), len(documents),
    )  # fmt: skip
    if not held_out:
        raise ConfigError(
            f"finetune.holdout.fraction = {holdout.fraction}: holds out no document of {corpus} "
            f"({len(documents)} documents{', stratified by label' if holdout.stratify else ''}); raise the "
            "fraction or give the dataset more documents"
        )
    return ["holdout" if doc_id in held_out else "train" for doc_id in doc_ids]


def _drop_rare_classes(rows: LabelledRows, settings: FinetuneSettings) -> LabelledRows:
    """Keep the classes with at least `min_class_examples` training examples (sentences, or documents for
    unit: document); drop them from every row's labels and drop rows left without a label."""
    counts: Counter[str] = Counter()
    seen_docs: set[str] = set()
    for doc_id, labels, part in zip(rows.doc_ids, rows.labels, rows.parts, strict=True):
        if part != "train":
            continue
        if settings.unit == "document":
            if doc_id in seen_docs:
                continue
            seen_docs.add(doc_id)
        counts.update(labels)
    kept = {name for name, count in counts.items() if count >= settings.min_class_examples}
    dropped = sorted(set(counts) - kept)
    if dropped:
        log.warning(
            "finetune.min_class_examples = %d: dropping %d classes with fewer training examples: %s",
            settings.min_class_examples, len(dropped), ", ".join(dropped[:20]) + (" ..." if len(dropped) > 20 else ""),
        )  # fmt: skip
    return _restrict_to_classes(rows, kept)


def _restrict_to_classes(rows: LabelledRows, classes: set[str]) -> LabelledRows:
    """Rows with their labels outside `classes` removed; rows left without a label dropped."""
    labels = [tuple(name for name in row if name in classes) for row in rows.labels]
    rows = LabelledRows(rows.sentence_ids, rows.doc_ids, rows.texts, labels, rows.parts)
    return rows.select(np.array([bool(row) for row in labels], dtype=bool))


def _cap_part(rows: LabelledRows, part: str, limit: int | None, unit: str, seed: int) -> np.ndarray:
    """Mask of the rows of `part` to keep: all, or (seeded) `limit` sentences / documents."""
    in_part = np.array([p == part for p in rows.parts], dtype=bool)
    if limit is None:
        return in_part
    if unit == "sentence":
        keep = np.zeros(len(rows), dtype=bool)
        index = np.flatnonzero(in_part)
        keep[index[choose_seeded(rows.sentence_ids[index], limit, seed)]] = True
        return keep
    documents = sorted({d for d, p in zip(rows.doc_ids, rows.parts, strict=True) if p == part})
    scores = splitmix64(text_hash64(documents) ^ np.uint64(seed)) if documents else np.empty(0, np.uint64)
    chosen = {documents[i] for i in np.argsort(scores, kind="stable")[:limit]}
    return in_part & np.array([d in chosen for d in rows.doc_ids], dtype=bool)


def split_labelled(corpus: str, finetune: dict, out: str, config_hash: str = "") -> LabelledRows:
    """Write `finetune/labelled.parquet` (`LABELLED_SCHEMA`, sorted by sentence_id) from the corpus file of
    `finetune.dataset` and return its rows.

    Rows without a label are left out; `multi_label` turns '|'-joined values into one label ('first'), drops them
    ('single') or keeps the set ('multi'). Fewer than two classes, or an empty training or held-out part, is a
    ConfigError naming the key to change.
    """
    settings = FinetuneSettings.from_config(finetune)
    try:
        schema_names = pq.read_schema(corpus).names
    except (OSError, pa.ArrowInvalid) as error:
        raise ValueError(f"{corpus}: not a readable corpus file ({error}); rerun its corpus rule") from error
    if settings.label not in schema_names:
        raise ConfigError(f"finetune.label = {settings.label!r}: {corpus} has no column {settings.label!r}")
    columns = ["sentence_id", "doc_id", "text", settings.label]
    has_split = settings.holdout.column in schema_names
    if has_split and settings.holdout.column not in columns:
        columns.append(settings.holdout.column)
    table = pq.read_table(corpus, columns=columns).sort_by("sentence_id")
    raw_labels = table.column(settings.label).to_pylist()
    labels = [parse_labels(v, settings.multi_label) for v in raw_labels]
    labelled = np.array([bool(row) for row in labels], dtype=bool)
    n_multi = sum(1 for v in raw_labels if v is not None and LABEL_SEPARATOR in str(v))
    log.info(
        "%s: %d rows, %d with a %r label (%d multi-label values, multi_label = %s)",
        corpus, table.num_rows, int(labelled.sum()), settings.label, n_multi, settings.multi_label,
    )  # fmt: skip
    if not labelled.any():
        raise ConfigError(
            f"finetune.label = {settings.label!r}: no row of {corpus} has a value in that column; choose a column "
            "the dataset fills (its loader's metadata: e.g. genre for brown, sentiment for vader, category for reuters)"
        )
    index = np.flatnonzero(labelled)
    all_doc_ids = table.column("doc_id").to_pylist()
    doc_ids = [all_doc_ids[i] for i in index]
    row_labels = [labels[i] for i in index]
    split_values = table.column(settings.holdout.column).to_pylist() if has_split else None
    if split_values is not None:
        split_values = [split_values[i] for i in index]
    parts = _assign_parts(corpus, doc_ids, row_labels, split_values, settings)
    texts = table.column("text").to_pylist()
    rows = LabelledRows(
        table.column("sentence_id").to_numpy().astype(np.uint32)[index],
        doc_ids,
        [texts[i] for i in index],
        row_labels,
        [p if p is not None else "" for p in parts],
    )
    rows = rows.select(np.array([p in PARTS for p in rows.parts], dtype=bool))
    rows = _drop_rare_classes(rows, settings)
    keep = _cap_part(rows, "train", settings.max_train_examples, settings.unit, settings.seed)
    keep |= _cap_part(rows, "holdout", settings.max_holdout_examples, settings.unit, settings.seed + 1)
    rows = rows.select(keep)
    classes = sorted(
        {name for row, part in zip(rows.labels, rows.parts, strict=True) if part == "train" for name in row}
    )
    rows = _restrict_to_classes(rows, set(classes))  # a class the capped training part lost leaves the held-out one
    if len(classes) < 2:
        raise ConfigError(
            f"finetune.label = {settings.label!r}: the training part of {corpus} has {len(classes)} class"
            f"{'es' if len(classes) != 1 else ''} ({', '.join(classes) or 'none'}) after dropping rare classes; "
            "classification needs at least two: choose another label column or dataset, or lower "
            "finetune.min_class_examples"
        )
    n_train = sum(p == "train" for p in rows.parts)
    n_holdout = sum(p == "holdout" for p in rows.parts)
    if n_holdout == 0:
        raise ConfigError(
            f"finetune.holdout: the held-out part of {corpus} is empty after dropping rare classes; change "
            "finetune.holdout (values or fraction) or finetune.min_class_examples"
        )
    log.info("labelled: %d classes, %d training and %d held-out sentences", len(classes), n_train, n_holdout)
    write_parquet(rows.to_table(), out, config_hash)
    return rows


# --------------------------------------------------------------------------------------------------------------
# Training


@dataclass
class Examples:
    """Classification examples of one part: texts, label tuples, and the class index matrix.

    targets: int64 [n] class indices (single-label) or float32 [n, n_classes] multi-hot (multi-label)."""

    texts: list[str]
    labels: list[tuple[str, ...]]
    targets: np.ndarray


def build_examples(rows: LabelledRows, part: str, unit: str, classes: Sequence[str], multi: bool) -> Examples:
    """The examples of `part`: one per sentence, or one per document (its sentences in id order joined by a space,
    labelled with the first sentence's label) for unit 'document'. Labels outside `classes` are ignored."""
    index_of = {name: i for i, name in enumerate(classes)}
    texts: list[str] = []
    labels: list[tuple[str, ...]] = []
    if unit == "sentence":
        for text, row_labels, row_part in zip(rows.texts, rows.labels, rows.parts, strict=True):
            if row_part == part:
                texts.append(text)
                labels.append(row_labels)
    else:
        documents: dict[str, tuple[list[str], tuple[str, ...]]] = {}
        order = np.argsort(rows.sentence_ids, kind="stable")
        for i in order:
            if rows.parts[i] != part:
                continue
            doc = documents.setdefault(rows.doc_ids[i], ([], rows.labels[i]))
            doc[0].append(rows.texts[i])
        for doc_id in sorted(documents):
            sentences, doc_labels = documents[doc_id]
            texts.append(" ".join(sentences))
            labels.append(doc_labels)
    labels = [tuple(name for name in row if name in index_of) for row in labels]
    if not all(labels):
        raise ValueError(f"{sum(not row for row in labels)} {part} examples have no label among the classes")
    if multi:
        targets = np.zeros((len(labels), len(classes)), dtype=np.float32)
        for i, row in enumerate(labels):
            targets[i, [index_of[name] for name in row]] = 1.0
    else:
        targets = np.array([index_of[row[0]] for row in labels], dtype=np.int64)
    return Examples(texts, labels, targets)


def chance_rate(train: Examples, holdout: Examples) -> float:
    """Accuracy on `holdout` of always predicting the training examples' most frequent label (label set for
    multi-label; ties broken by name)."""
    counts = Counter(train.labels)
    if not counts or not holdout.labels:
        return float("nan")
    majority = min(counts, key=lambda labels: (-counts[labels], labels))
    return sum(labels == majority for labels in holdout.labels) / len(holdout.labels)


@contextlib.contextmanager
def deterministic_torch(seed: int, threads: int) -> Iterator[None]:
    """Seed torch (CPU and CUDA), ask for deterministic algorithms (warn only) and set `threads` intra-op threads;
    restore the previous settings afterwards."""
    import torch

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    previous_deterministic = torch.are_deterministic_algorithms_enabled()
    previous_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    previous_threads = torch.get_num_threads()
    rng_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous_deterministic, warn_only=previous_warn_only)
        torch.set_num_threads(previous_threads)
        torch.random.set_rng_state(rng_state)


def load_classifier(model_dir: PathLike, classes: Sequence[str], settings: FinetuneSettings, multi: bool):
    """The encoder in `model_dir` with a fresh sequence-classification head for `classes` (seeded by the caller).

    `dropout` goes to the head's dropout (`classifier_dropout`, DistilBERT's `seq_classif_dropout`) and, with
    dropout_scope 'all', to the encoder's hidden and attention dropout too."""
    import warnings

    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        config = AutoConfig.from_pretrained(str(model_dir), local_files_only=True)
    except (OSError, ValueError, KeyError) as error:
        raise ConfigError(f"model.path = {str(model_dir)!r}: cannot read the model config ({error})") from error
    config.num_labels = len(classes)
    config.id2label = dict(enumerate(classes))
    config.label2id = {name: i for i, name in enumerate(classes)}
    config.problem_type = "multi_label_classification" if multi else "single_label_classification"
    head_keys = [key for key in ("classifier_dropout", "seq_classif_dropout") if hasattr(config, key)]
    for key in head_keys or ["classifier_dropout"]:
        setattr(config, key, settings.dropout)
    if settings.dropout_scope == "all":
        for key in ("hidden_dropout_prob", "attention_probs_dropout_prob", "dropout", "attention_dropout"):
            if hasattr(config, key):
                setattr(config, key, settings.dropout)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            model = AutoModelForSequenceClassification.from_pretrained(
                str(model_dir), config=config, local_files_only=True, dtype=torch.float32
            )
        except (OSError, ValueError, RuntimeError) as error:
            raise ConfigError(
                f"model.path = {str(model_dir)!r}: cannot load it for classification ({error})"
            ) from error
    return model


def _make_optimizer(model, settings: FinetuneSettings):
    import torch

    parameters = [p for p in model.parameters() if p.requires_grad]
    if settings.optimizer == "adam":
        return torch.optim.Adam(parameters, lr=settings.lr, weight_decay=settings.weight_decay)
    return torch.optim.AdamW(parameters, lr=settings.lr, weight_decay=settings.weight_decay)


@dataclass
class EvalResult:
    """Held-out scores: accuracy (exact match for multi-label), micro-F1 (multi-label only, else None), mean loss."""

    accuracy: float
    micro_f1: float | None
    loss: float


def evaluate(model, tokens: Tokens, targets: np.ndarray, multi: bool, token_budget: int, device) -> EvalResult:
    """Score `model` (eval mode) on the tokenized examples, batched by the scan's batch plan."""
    import torch

    model.eval()
    n = len(tokens)
    if n == 0:
        return EvalResult(float("nan"), None, float("nan"))
    predictions = np.zeros(targets.shape, dtype=targets.dtype)
    loss_sum = 0.0
    with torch.inference_mode():
        for rows in plan_batches(tokens.lengths, np.arange(n), token_budget):
            batch = make_batch(tokens, rows, exclude_special=False, device=device)
            labels = torch.from_numpy(targets[rows]).to(device)
            output = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, labels=labels)
            loss_sum += float(output.loss) * len(rows)
            logits = output.logits.float()
            if multi:
                predictions[rows] = (logits > 0).to(torch.float32).cpu().numpy()
            else:
                predictions[rows] = logits.argmax(dim=-1).cpu().numpy()
    if multi:
        accuracy = float(np.mean(np.all(predictions == targets, axis=1)))
        true_positive = float(np.sum((predictions == 1) & (targets == 1)))
        denominator = float(np.sum(predictions == 1) + np.sum(targets == 1))
        micro_f1: float | None = 2 * true_positive / denominator if denominator else 0.0
    else:
        accuracy = float(np.mean(predictions == targets))
        micro_f1 = None
    return EvalResult(accuracy, micro_f1, loss_sum / n)


@dataclass
class TrainingReport:
    """What `train_classifier` measured: per-epoch rows for metrics.json and the step count."""

    epochs: list[dict[str, Any]]
    steps: int
    seconds: float


def epoch_batches(
    lengths: np.ndarray, batch_size: int, length_buckets: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """One epoch's batches of example indices: a random permutation cut into batches of `batch_size`. With
    `length_buckets` > 1, each run of `length_buckets` x `batch_size` shuffled examples is sorted by token length
    before it is cut, and the batches are then shuffled, so a batch holds examples of similar length (less padding,
    the same examples per epoch)."""
    order = rng.permutation(len(lengths))
    if length_buckets <= 1:
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    chunk = batch_size * length_buckets
    batches: list[np.ndarray] = []
    for start in range(0, len(order), chunk):
        part = order[start : start + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def train_classifier(
    model, train_tokens: Tokens, train_targets: np.ndarray, holdout_tokens: Tokens, holdout_targets: np.ndarray,
    settings: FinetuneSettings, multi: bool, token_budget: int, device,
) -> TrainingReport:  # fmt: skip
    """Fine-tune `model` in place: `settings.epochs` epochs of shuffled batches of `batch_size` examples
    (`epoch_batches`, seeded), Adam/AdamW at `lr`; held-out accuracy before training (epoch 0) and after each epoch."""
    import torch

    optimizer = _make_optimizer(model, settings)
    rng = np.random.default_rng(settings.seed)
    n = len(train_tokens)
    steps_per_epoch = math.ceil(n / settings.batch_size)
    before = evaluate(model, holdout_tokens, holdout_targets, multi, token_budget, device)
    epochs: list[dict[str, Any]] = [_epoch_row(0, None, before)]
    log.info("epoch 0 (before training): held-out accuracy %.4f, loss %.4f", before.accuracy, before.loss)
    started = time.perf_counter()
    bar = progress(total=settings.epochs * steps_per_epoch, desc="finetune", unit="step")
    step = 0
    try:
        for epoch in range(1, settings.epochs + 1):
            model.train()
            loss_sum = 0.0
            padded_tokens = 0
            for rows in epoch_batches(train_tokens.lengths, settings.batch_size, settings.length_buckets, rng):
                batch = make_batch(train_tokens, rows, exclude_special=False, device=device)
                padded_tokens += batch.input_ids.numel()
                labels = torch.from_numpy(train_targets[rows]).to(device)
                output = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, labels=labels)
                optimizer.zero_grad(set_to_none=True)
                output.loss.backward()
                optimizer.step()
                loss = float(output.loss.detach())
                if not math.isfinite(loss):
                    raise FloatingPointError(
                        f"fine-tuning diverged at epoch {epoch}, step {step} (loss {loss}); lower finetune.lr"
                    )
                loss_sum += loss * len(rows)
                step += 1
                bar.update(1)
                bar.set_postfix(epoch=epoch, loss=f"{loss:.3f}", refresh=False)
            result = evaluate(model, holdout_tokens, holdout_targets, multi, token_budget, device)
            train_loss = loss_sum / max(n, 1)
            epochs.append(_epoch_row(epoch, train_loss, result))
            log.info(
                "epoch %d: training loss %.4f, held-out accuracy %.4f%s, held-out loss %.4f (%d padded tokens for "
                "%d real ones; %.1f s so far)",
                epoch, train_loss, result.accuracy,
                "" if result.micro_f1 is None else f", micro-F1 {result.micro_f1:.4f}", result.loss, padded_tokens,
                int(train_tokens.lengths.sum()), time.perf_counter() - started,
            )  # fmt: skip
    finally:
        bar.close()
    model.eval()
    return TrainingReport(epochs, step, time.perf_counter() - started)


def _epoch_row(epoch: int, train_loss: float | None, result: EvalResult) -> dict[str, Any]:
    row: dict[str, Any] = {
        "epoch": epoch,
        "holdout_accuracy": round(result.accuracy, 6),
        "holdout_loss": round(result.loss, 6),
        "train_loss": None if train_loss is None else round(train_loss, 6),
    }
    if result.micro_f1 is not None:
        row["holdout_micro_f1"] = round(result.micro_f1, 6)
    return row


@contextlib.contextmanager
def atomic_directory(path: PathLike) -> Iterator[Path]:
    """Yield a fresh temporary directory beside `path`; on success replace `path` with it in one rename, on error
    delete it. Stale temporary directories of earlier killed runs (`.{name}.*.tmp`) are removed first, so a run
    killed midway leaves no `path` (or the previous complete one) and the next run starts clean."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".{target.name}.*.tmp"):
        log.warning("removing %s, left by an earlier run that was killed", stale)
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        _apply_umask(tmp)
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
            os.replace(target, old / target.name)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _apply_umask(directory: Path) -> None:
    """Give `directory` and everything in it the modes a plain mkdir / open would (mkdtemp and some writers use
    0700 / 0600), so a model directory is as readable as the workflow's other outputs."""
    umask = os.umask(0)
    os.umask(umask)
    for path in [directory, *directory.rglob("*")]:
        path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)


def finetune_model(
    labelled: str, model_dir: str, finetune: dict, model: dict, scan: dict, model_out: str, metrics_out: str
) -> dict[str, Any]:
    """Fine-tune the encoder in `model_dir` on `finetune/labelled.parquet`; save it to `model_out` (atomically) and
    write `metrics_out` (JSON: classes, example counts, chance rate, held-out accuracy per epoch). Returns the
    metrics. `model` / `scan` are the config's blocks (max_length; token_budget for held-out batches)."""
    settings = FinetuneSettings.from_config(finetune)
    model_settings = ModelSettings.from_config(model)
    scan_settings = ScanSettings.from_config(scan)
    multi = settings.multi_label == "multi"
    rows = read_labelled(labelled)
    classes = sorted(
        {name for row, part in zip(rows.labels, rows.parts, strict=True) if part == "train" for name in row}
    )
    if len(classes) < 2:
        raise ConfigError(f"finetune.label = {settings.label!r}: {labelled} has {len(classes)} training classes")
    train = build_examples(rows, "train", settings.unit, classes, multi)
    holdout = build_examples(rows, "holdout", settings.unit, classes, multi)
    tokenizer = load_tokenizer(model_dir)
    train_tokens = tokenize(tokenizer, train.texts, model_settings.max_length)
    holdout_tokens = tokenize(tokenizer, holdout.texts, model_settings.max_length)
    device = select_device(settings.device)
    log.info(
        "fine-tuning %s on %s/%s: %d classes, %d training and %d held-out %ss (%d and %d truncated), %d epochs of "
        "batch %d, %s lr %g, dropout %.2f (%s), device %s, %d threads",
        Path(model_dir).name, settings.dataset, settings.label, len(classes), len(train.texts), len(holdout.texts),
        settings.unit, int(train_tokens.truncated.sum()), int(holdout_tokens.truncated.sum()), settings.epochs,
        settings.batch_size, settings.optimizer, settings.lr, settings.dropout, settings.dropout_scope, device,
        settings.threads,
    )  # fmt: skip
    with deterministic_torch(settings.seed, settings.threads):
        classifier = load_classifier(model_dir, classes, settings, multi).to(device)
        report = train_classifier(
            classifier, train_tokens, train.targets, holdout_tokens, holdout.targets, settings, multi,
            scan_settings.token_budget, device,
        )  # fmt: skip
    classifier.to("cpu")
    with atomic_directory(model_out) as tmp:
        classifier.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
    log.info("saved the fine-tuned model to %s (%d steps in %.1f s)", model_out, report.steps, report.seconds)
    metrics: dict[str, Any] = {
        "dataset": settings.dataset,
        "label": settings.label,
        "unit": settings.unit,
        "multi_label": settings.multi_label,
        "classes": classes,
        "n_train": len(train.texts),
        "n_holdout": len(holdout.texts),
        "chance_rate": round(chance_rate(train, holdout), 6),
        "uniform_rate": round(1.0 / len(classes), 6),
        "epochs": report.epochs,
        "final_holdout_accuracy": report.epochs[-1]["holdout_accuracy"],
        "steps": report.steps,
        "hyperparameters": {
            "epochs": settings.epochs,
            "batch_size": settings.batch_size,
            "length_buckets": settings.length_buckets,
            "dropout": settings.dropout,
            "dropout_scope": settings.dropout_scope,
            "lr": settings.lr,
            "optimizer": settings.optimizer,
            "weight_decay": settings.weight_decay,
            "seed": settings.seed,
            "max_length": model_settings.max_length,
        },
    }
    write_json(metrics_out, metrics)
    return metrics


# --------------------------------------------------------------------------------------------------------------
# Evaluation sentences


def _choose_n(sentence_ids: np.ndarray, n: int, seed: int, name: str) -> np.ndarray:
    """Mask of `n` seeded rows; fewer rows than `n` is a logged fallback to all of them."""
    if len(sentence_ids) < n:
        log.warning(
            "finetune.eval.n = %d but the %s set has only %d sentences: using all %d (Table 3 reports the real n)",
            n, name, len(sentence_ids), len(sentence_ids),
        )  # fmt: skip
    return choose_seeded(sentence_ids, n, seed)


def eval_sentences(
    labelled: str, out_of_domain_corpus: str, finetune: dict, out: str, config_hash: str = ""
) -> pa.Table:
    """Write `finetune/eval/sentences.parquet` (`EVAL_SCHEMA`, sorted by sentence_id): `eval.n` sentences each of
    the training part (sentences the model was trained on), the held-out part and the out-of-domain corpus, each
    the n with the smallest splitmix64(sentence_id ^ eval.seed). A set smaller than n is taken whole (logged)."""
    settings = FinetuneSettings.from_config(finetune)
    rows = read_labelled(labelled)
    pieces: list[pa.Table] = []
    for name in ("train", "holdout"):
        part = rows.select(np.array([p == name for p in rows.parts], dtype=bool))
        chosen = part.select(_choose_n(part.sentence_ids, settings.eval.n, settings.eval.seed, name))
        pieces.append(_eval_table(chosen.sentence_ids, name, settings.dataset, chosen.texts))
    try:
        ood = pq.read_table(out_of_domain_corpus, columns=["sentence_id", "text"])
    except (OSError, pa.ArrowInvalid, KeyError) as error:
        raise ValueError(f"{out_of_domain_corpus}: not a readable corpus file ({error})") from error
    ood_ids = ood.column("sentence_id").to_numpy().astype(np.uint32)
    if len(ood_ids) == 0:
        raise ConfigError(
            f"finetune.eval.out_of_domain = {settings.eval.out_of_domain!r}: {out_of_domain_corpus} has no sentences"
        )
    mask = _choose_n(ood_ids, settings.eval.n, settings.eval.seed, "out_of_domain")
    texts = ood.column("text").to_pylist()
    pieces.append(
        _eval_table(
            ood_ids[mask], "out_of_domain", settings.eval.out_of_domain, [texts[i] for i in np.flatnonzero(mask)]
        )
    )
    table = pa.concat_tables(pieces).sort_by("sentence_id")
    ids = table.column("sentence_id").to_numpy()
    if len(np.unique(ids)) != len(ids):
        raise ValueError(
            "evaluation sets share sentence ids: the training and held-out parts overlap; rerun finetune_split"
        )
    counts = Counter(table.column("set").to_pylist())
    log.info("evaluation sentences: %s", ", ".join(f"{name} {counts[name]}" for name in EVAL_SETS))
    write_parquet(table, out, config_hash)
    return table


def _eval_table(sentence_ids: np.ndarray, name: str, dataset: str, texts: list[str]) -> pa.Table:
    n = len(sentence_ids)
    return pa.Table.from_arrays(
        [
            pa.array(np.asarray(sentence_ids, dtype=np.uint32), pa.uint32()),
            pa.array([name] * n, pa.string()),
            pa.array([dataset] * n, pa.string()),
            pa.array(texts, pa.string()),
        ],
        schema=EVAL_SCHEMA,
    )


# --------------------------------------------------------------------------------------------------------------
# Distances


@dataclass
class SentenceDistances:
    """Per sentence and layer, float64 [n, n_layers]: Manhattan distance, squared Euclidean distance and squared
    norm of the before vector; `n_neurons` per layer."""

    manhattan: np.ndarray
    squared_euclidean: np.ndarray
    squared_before_norm: np.ndarray
    n_neurons: int

    @property
    def n_layers(self) -> int:
        return self.manhattan.shape[1]

    def total_manhattan(self) -> np.ndarray:
        """Over all layers (the concatenated vector), float64 [n]."""
        return self.manhattan.sum(axis=1)

    def total_euclidean(self) -> np.ndarray:
        return np.sqrt(self.squared_euclidean.sum(axis=1))

    def total_before_norm(self) -> np.ndarray:
        return np.sqrt(self.squared_before_norm.sum(axis=1))


def activation_distances(before: Iterable[np.ndarray], after: Iterable[np.ndarray]) -> SentenceDistances:
    """Distances between per-layer activations before and after, each a float array [n, n_neurons] (same n and
    width in every layer, rows aligned). Differences are taken in float64. The layers are consumed one at a time,
    so generators keep one layer in memory."""
    manhattan: list[np.ndarray] = []
    squared: list[np.ndarray] = []
    norms: list[np.ndarray] = []
    shape: tuple[int, ...] | None = None
    for index, (a, b) in enumerate(zip(before, after, strict=True)):
        shape = shape or a.shape
        if a.ndim != 2 or a.shape != shape or b.shape != shape:
            raise ValueError(f"layer {index + 1}: before {a.shape} and after {b.shape}, expected {shape}")
        a64 = a.astype(np.float64)
        difference = b.astype(np.float64) - a64
        manhattan.append(np.abs(difference).sum(axis=1))
        squared.append(np.einsum("ij,ij->i", difference, difference))
        norms.append(np.einsum("ij,ij->i", a64, a64))
    if shape is None:
        raise ValueError("activation_distances: no layers")
    return SentenceDistances(np.stack(manhattan, 1), np.stack(squared, 1), np.stack(norms, 1), int(shape[1]))


def _layer_path(paths: Sequence[str], layer: int, suffix: str = ".npy") -> str:
    """The path among `paths` whose file name is `layer{layer}{suffix}`."""
    wanted = f"layer{layer}{suffix}"
    for path in paths:
        if Path(path).name == wanted:
            return str(path)
    raise ValueError(f"no {wanted} among the files {[str(p) for p in list(paths)[:3]]}...")


def iter_layers(paths: Sequence[str], layers: Sequence[int], n_rows: int, name: str) -> Iterator[np.ndarray]:
    """The activation arrays `layer{L}.npy` for `layers`, one at a time, each float32 [n_rows, n_neurons] (errors
    name the file)."""
    for layer in layers:
        path = _layer_path(paths, layer)
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise ValueError(f"{path}: not a readable .npy file ({error}); rerun the rule that writes it") from error
        if array.ndim != 2 or array.shape[0] != n_rows:
            raise ValueError(f"{path}: shape {array.shape}, expected ({n_rows}, n_neurons) rows of {name}; rerun it")
        yield array.astype(np.float32, copy=False)


def load_layer(paths: Sequence[str], layer: int, n_rows: int, name: str) -> np.ndarray:
    """One layer's activations (see `iter_layers`)."""
    return next(iter_layers(paths, [layer], n_rows, name))


def write_distances(
    sentences: str, before: Sequence[str], after: Sequence[str], layers: Sequence[int], out: str,
    sentences_out: str, config_hash: str = "",
) -> pa.Table:  # fmt: skip
    """Distances of the evaluation sentences before and after fine-tuning: `out` (`DISTANCES_SCHEMA`, per set and
    per layer plus all layers) and `sentences_out` (`SENTENCE_DISTANCES_SCHEMA`). `before` / `after` are the
    `layer{L}.npy` files of `finetune/eval/{base,finetuned}/{pooling}/`."""
    table = pq.read_table(sentences, columns=["sentence_id", "set", "dataset", "text"])
    ids = table.column("sentence_id").to_numpy().astype(np.uint32)
    if np.any(np.diff(ids.astype(np.int64)) <= 0):
        raise ValueError(f"{sentences}: not sorted by unique sentence_id; rerun finetune_eval_sentences")
    sets = np.array(table.column("set").to_pylist(), dtype=object)
    datasets = table.column("dataset").to_pylist()
    distances = activation_distances(
        iter_layers(before, layers, len(ids), "before"), iter_layers(after, layers, len(ids), "after")
    )
    if distances.n_layers != len(layers):
        raise ValueError(f"{distances.n_layers} layers of activations for the {len(layers)} configured layers")
    rows: list[dict[str, Any]] = []
    for name in EVAL_SETS:
        mask = sets == name
        if not mask.any():
            continue
        dataset = datasets[int(np.flatnonzero(mask)[0])]
        for layer_index, layer in [(None, None), *enumerate(layers)]:
            if layer_index is None:
                manhattan = distances.total_manhattan()[mask]
                euclidean = distances.total_euclidean()[mask]
                norm = distances.total_before_norm()[mask]
                n_dims = distances.n_neurons * distances.n_layers
            else:
                manhattan = distances.manhattan[mask, layer_index]
                euclidean = np.sqrt(distances.squared_euclidean[mask, layer_index])
                norm = np.sqrt(distances.squared_before_norm[mask, layer_index])
                n_dims = distances.n_neurons
            relative = np.divide(euclidean, norm, out=np.full_like(euclidean, np.nan), where=norm > 0)
            rows.append(
                {
                    "set": name,
                    "dataset": dataset,
                    "layer": layer,
                    "n_sentences": int(mask.sum()),
                    "n_dims": int(n_dims),
                    "manhattan": float(manhattan.mean()),
                    "manhattan_std": float(manhattan.std()),
                    "euclidean": float(euclidean.mean()),
                    "euclidean_std": float(euclidean.std()),
                    "relative_euclidean": float(np.nanmean(relative)) if np.isfinite(relative).any() else float("nan"),
                    "mean_abs_change": float(manhattan.mean() / n_dims),
                }
            )
        log.info(
            "%s (%s, %d sentences): mean Manhattan %.4f, mean Euclidean %.4f over %d layers x %d neurons",
            name, dataset, int(mask.sum()), rows[-len(layers) - 1]["manhattan"], rows[-len(layers) - 1]["euclidean"],
            distances.n_layers, distances.n_neurons,
        )  # fmt: skip
    result = pa.Table.from_pylist(rows, schema=DISTANCES_SCHEMA)
    write_parquet(result, out, config_hash)
    n_words = np.array([len(text.split()) for text in table.column("text").to_pylist()], dtype=np.int32)
    write_parquet(_sentence_table(ids, sets, n_words, layers, distances), sentences_out, config_hash)
    return result


def _sentence_table(
    ids: np.ndarray, sets: np.ndarray, n_words: np.ndarray, layers: Sequence[int], d: SentenceDistances
) -> pa.Table:
    n = len(ids)
    blocks = [(None, d.total_manhattan(), d.total_euclidean(), d.total_before_norm())]
    blocks += [
        (layer, d.manhattan[:, i], np.sqrt(d.squared_euclidean[:, i]), np.sqrt(d.squared_before_norm[:, i]))
        for i, layer in enumerate(layers)
    ]
    layer_column = pa.array([layer for layer, *_ in blocks for _ in range(n)], pa.int32())
    return pa.Table.from_arrays(
        [
            pa.array(np.tile(ids, len(blocks)), pa.uint32()),
            pa.array(np.tile(sets, len(blocks)).tolist(), pa.string()),
            layer_column,
            pa.array(np.concatenate([m for _, m, _, _ in blocks]), pa.float64()),
            pa.array(np.concatenate([e for _, _, e, _ in blocks]), pa.float64()),
            pa.array(np.concatenate([b for _, _, _, b in blocks]), pa.float64()),
            pa.array(np.tile(n_words, len(blocks)), pa.int32()),
        ],
        schema=SENTENCE_DISTANCES_SCHEMA,
    )


# --------------------------------------------------------------------------------------------------------------
# Neurons: how much each moved and how its top set changed


def top_sets(activations: np.ndarray, sentence_ids: np.ndarray, k: int) -> np.ndarray:
    """Each neuron's top `k` sentence ids among the rows of `activations` (float32 [n, n_neurons], rows =
    `sentence_ids`), by the scan's unique keys (activation descending, lower id on ties): uint32 [n_neurons, k']
    sorted by rank, k' = min(k, n)."""
    keys = activation_keys(np.ascontiguousarray(activations.T), np.asarray(sentence_ids, dtype=np.uint32)[None, :])
    top, _ = select_top(keys, min(k, activations.shape[0]))
    ids, _values = decode_keys(top)
    return ids


def jaccard_rows(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Row-wise Jaccard overlap of two id matrices [n, k1] and [n, k2] (ids unique within a row): float64 [n]."""
    if first.shape[0] != second.shape[0]:
        raise ValueError(f"jaccard_rows: {first.shape[0]} and {second.shape[0]} rows")
    merged = np.sort(np.concatenate([first, second], axis=1), axis=1)
    intersection = (merged[:, 1:] == merged[:, :-1]).sum(axis=1)
    union = first.shape[1] + second.shape[1] - intersection
    return np.divide(intersection, union, out=np.ones(len(union), dtype=np.float64), where=union > 0)


def dominant_dataset(top_ids: np.ndarray, dataset_names: Mapping[int, str]) -> tuple[list[str], np.ndarray]:
    """Per row of `top_ids` (uint32 [n, k]), the most frequent dataset (by the id's dataset code; ties to the lower
    code) and its share of the row."""
    codes = dataset_code_of(top_ids).astype(np.int64)
    counts = np.stack([(codes == c).sum(axis=1) for c in range(32)], axis=1)
    best = counts.argmax(axis=1)
    share = counts[np.arange(len(best)), best] / max(top_ids.shape[1], 1)
    return [dataset_names.get(int(c), f"code{int(c)}") for c in best], share.astype(np.float64)


def read_topk_sets(path: PathLike) -> np.ndarray:
    """Sentence ids of a `topk/{model}/layer{L}.parquet`, uint32 [n_neurons, K] by rank (every neuron must have the
    same number of rows, as the scan writes them)."""
    table = pq.read_table(path, columns=["neuron", "rank", "sentence_id"]).sort_by(
        [("neuron", "ascending"), ("rank", "ascending")]
    )
    neurons = table.column("neuron").to_numpy()
    if len(neurons) == 0:
        raise ValueError(f"{path}: no rows; rerun merge_topk")
    n_neurons = int(neurons.max()) + 1
    if len(neurons) % n_neurons:
        raise ValueError(f"{path}: neurons have different top-K sizes; rerun merge_topk")
    return table.column("sentence_id").to_numpy().astype(np.uint32).reshape(n_neurons, -1)


def neuron_changes(
    sample: str, sample_before: Sequence[str], sample_after: Sequence[str], eval_sentences_path: str,
    eval_before: Sequence[str], eval_after: Sequence[str], layers: Sequence[int], finetune: dict,
    dataset_codes: Mapping[str, int], out: str, config_hash: str = "",
    topk_before: Sequence[str] = (), topk_after: Sequence[str] = (),
) -> pa.Table:  # fmt: skip
    """Write `finetune/neurons.parquet` (`NEURONS_SCHEMA`): per neuron, the mean (absolute) change of its
    activation over the sample (`sample/{base,finetuned}/{pooling}/layer{L}.npy`) and over each evaluation set
    (`finetune/eval/{base,finetuned}/...`), and the Jaccard overlap of its top set before and after: the top
    `overlap.k` of the sample (source 'sample') or the corpus top K of `topk_before` / `topk_after` (source 'corpus').

    Also checks that the evaluation sentences that are in the sample got the same before activations on both paths
    (logged: the maximum absolute difference; batch plans differ, so expect ~1e-6 in float32)."""
    settings = FinetuneSettings.from_config(finetune)
    names = {code: name for name, code in dataset_codes.items()}
    sample_ids = pq.read_table(sample, columns=["sentence_id"]).column("sentence_id").to_numpy().astype(np.uint32)
    sample_ids = np.sort(sample_ids)
    eval_table = pq.read_table(eval_sentences_path, columns=["sentence_id", "set"])
    eval_ids = eval_table.column("sentence_id").to_numpy().astype(np.uint32)
    eval_sets = np.array(eval_table.column("set").to_pylist(), dtype=object)
    shared, in_sample, in_eval = np.intersect1d(sample_ids, eval_ids, assume_unique=True, return_indices=True)
    columns: dict[str, list[np.ndarray]] = {f.name: [] for f in NEURONS_SCHEMA}
    worst_difference = 0.0
    for layer in progress(list(layers), desc="neurons", unit="layer"):
        before = load_layer(sample_before, layer, len(sample_ids), "the sample")
        after = load_layer(sample_after, layer, len(sample_ids), "the sample")
        eval_a = load_layer(eval_before, layer, len(eval_ids), "the evaluation sentences")
        eval_b = load_layer(eval_after, layer, len(eval_ids), "the evaluation sentences")
        if shared.size:
            worst_difference = max(worst_difference, float(np.max(np.abs(before[in_sample] - eval_a[in_eval]))))
        n_neurons = before.shape[1]
        change = after.astype(np.float64) - before
        base_std = before.astype(np.float64).std(axis=0)
        mean_abs = np.abs(change).mean(axis=0)
        # a neuron (nearly) constant over the sample, within float32 rounding of its mean, has no relative change
        varies = base_std > 1e-6 * np.maximum(1.0, np.abs(before.astype(np.float64).mean(axis=0)))
        columns["layer"].append(np.full(n_neurons, layer, dtype=np.int32))
        columns["neuron"].append(np.arange(n_neurons, dtype=np.int32))
        columns["name"].append(np.array([neuron_name(layer, i) for i in range(n_neurons)], dtype=object))
        columns["mean_abs_change"].append(mean_abs)
        columns["mean_change"].append(change.mean(axis=0))
        columns["base_std"].append(base_std)
        columns["relative_change"].append(np.divide(mean_abs, base_std, out=np.full(n_neurons, np.nan), where=varies))
        eval_change = np.abs(eval_b.astype(np.float64) - eval_a)
        for name in EVAL_SETS:
            mask = eval_sets == name
            columns[f"change_{name}"].append(
                eval_change[mask].mean(axis=0) if mask.any() else np.full(n_neurons, np.nan)
            )
        if settings.overlap.source == "sample":
            top_before = top_sets(before, sample_ids, settings.overlap.k)
            top_after = top_sets(after, sample_ids, settings.overlap.k)
        else:
            top_before = read_topk_sets(_layer_path(topk_before, layer, ".parquet"))
            top_after = read_topk_sets(_layer_path(topk_after, layer, ".parquet"))
        if top_before.shape[0] != n_neurons or top_after.shape[0] != n_neurons:
            raise ValueError(f"layer {layer}: top sets of {top_before.shape[0]} / {top_after.shape[0]} neurons, "
                             f"activations of {n_neurons}")  # fmt: skip
        columns["top_k"].append(np.full(n_neurons, top_before.shape[1], dtype=np.int32))
        columns["jaccard"].append(jaccard_rows(top_before, top_after))
        for suffix, top in (("before", top_before), ("after", top_after)):
            dominant, share = dominant_dataset(top, names)
            columns[f"top_dataset_{suffix}"].append(np.array(dominant, dtype=object))
            columns[f"top_share_{suffix}"].append(share)
            columns[f"top_sentence_{suffix}"].append(top[:, 0].astype(np.uint32))
    if shared.size:
        log.info(
            "consistency: %d evaluation sentences are in the sample; their before activations on the two paths "
            "differ by at most %.3g", shared.size, worst_difference,
        )  # fmt: skip
        if worst_difference > 1e-2:
            log.warning("the before activations of the evaluation sentences and the sample disagree by %.3g: were "
                        "they computed with different models or settings?", worst_difference)  # fmt: skip
    table = pa.Table.from_arrays(
        [pa.array(np.concatenate(columns[f.name]), f.type) for f in NEURONS_SCHEMA], schema=NEURONS_SCHEMA
    )
    jaccard = table.column("jaccard").to_numpy()
    log.info(
        "%d neurons: mean |change| over the sample %.4g; top-set Jaccard (%s, k %d) mean %.3f, median %.3f",
        table.num_rows, float(np.mean(table.column("mean_abs_change").to_numpy())), settings.overlap.source,
        int(table.column("top_k")[0].as_py()), float(jaccard.mean()), float(np.median(jaccard)),
    )  # fmt: skip
    write_parquet(table, out, config_hash)
    return table


# --------------------------------------------------------------------------------------------------------------
# Table 3


def _fmt(value: float, digits: int = 2) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:,.{digits}f}"


def _clip(text: str, width: int = 90) -> str:
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= width else text[: width - 1] + "…"


def ordering_verdict(totals: Mapping[str, float]) -> str:
    """Whether train > holdout > out_of_domain holds for the given per-set values (the paper's ordering)."""
    if not all(name in totals and math.isfinite(totals[name]) for name in EVAL_SETS):
        return "cannot be checked (a set is missing)"
    train, holdout, ood = (totals[name] for name in EVAL_SETS)
    if train > holdout > ood:
        return "holds (training > held-out > out-of-domain)"
    parts = []
    parts.append("training > held-out" if train > holdout else "training <= held-out")
    parts.append("held-out > out-of-domain" if holdout > ood else "held-out <= out-of-domain")
    parts.append("training > out-of-domain" if train > ood else "training <= out-of-domain")
    return "does not hold fully: " + ", ".join(parts)


def length_matched_section(sentence_distances: str) -> list[str]:
    """Markdown lines: mean Manhattan distance (all layers) per set within sentence-length bins (`LENGTH_BINS`,
    words), so that the sets' different lengths (max pooling over more tokens) cannot make the ordering."""
    frame = pq.read_table(sentence_distances, columns=["set", "layer", "manhattan", "n_words"]).to_pandas()
    frame = frame[frame["layer"].isna()]
    edges = [*LENGTH_BINS, np.iinfo(np.int32).max]
    labels = [f"{low}-{high - 1}" for low, high in zip(edges[:-2], edges[1:-1], strict=True)] + [f"{edges[-2]}+"]
    frame["bin"] = np.searchsorted(np.asarray(LENGTH_BINS), frame["n_words"].to_numpy(), side="right") - 1
    present = [name for name in EVAL_SETS if (frame["set"] == name).any()]
    lines = [
        "",
        "## Beyond the paper: the ordering at equal sentence length",
        "",
        "Mean Manhattan distance (all layers; sentences in brackets) per sentence length in words: max pooling "
        "over more tokens can move more, and the sets differ in length.",
        "",
        "| words | " + " | ".join(n.replace("_", "-") for n in present) + " | ordering |",
        "|---|" + "---|" * (len(present) + 1),
    ]
    for index, label in enumerate(labels):
        in_bin = frame[frame["bin"] == index]
        if in_bin.empty:
            continue
        means = {name: float(in_bin.loc[in_bin["set"] == name, "manhattan"].mean()) for name in present}
        counts = {name: int((in_bin["set"] == name).sum()) for name in present}
        cells = [f"{_fmt(means[name], 1)} ({counts[name]})" if counts[name] else "-" for name in present]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {ordering_verdict(means).split(' (')[0]} |")
    return lines


def write_table3(
    distances: str, neurons: str, metrics: str, sample: str, md_out: str, csv_out: str, finetune: dict,
    model: dict, config_hash: str = "", sentence_distances: str | None = None,
) -> str:  # fmt: skip
    """Write `tables/table3.md` (our Table 3 beside the paper's, the fine-tuning run, distances per layer and, with
    `sentence_distances`, at equal sentence length; top-set overlap per layer, and the neurons that moved most with
    their top sentences before and after) and
    `tables/table3.csv` (set, dataset, n_sentences, manhattan, euclidean, relative_euclidean, ratio_to_out_of_domain).
    Returns the Markdown."""
    import json

    settings = FinetuneSettings.from_config(finetune)
    model_settings = ModelSettings.from_config(model)
    dist = pq.read_table(distances).to_pylist()
    totals = [row for row in dist if row["layer"] is None]
    by_set = {row["set"]: row for row in totals}
    run = json.loads(Path(metrics).read_text(encoding="utf-8"))
    ood = by_set.get("out_of_domain")
    lines = [
        "# Table 3: how far fine-tuning moves sentence activations",
        "",
        f"Mean distance between each sentence's activation vector before and after fine-tuning (all layers x neurons,"
        f" site `{model_settings.site}`, `{model_settings.pooling}` pooling; config `{config_hash}`).",
        "",
        "| set | dataset | N | Manhattan | Euclidean | Euclidean relative to the before norm "
        "| Manhattan vs out-of-domain"
        " | paper set | paper Manhattan | paper Euclidean | paper vs out-of-domain |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    csv_lines = ["set,dataset,n_sentences,manhattan,euclidean,relative_euclidean,ratio_to_out_of_domain"]
    for name in EVAL_SETS:
        row = by_set.get(name)
        paper_name, paper_manhattan, paper_euclidean = PAPER_TABLE3[name]
        paper_ratio = paper_manhattan / PAPER_TABLE3["out_of_domain"][1]
        if row is None:
            continue
        ratio = row["manhattan"] / ood["manhattan"] if ood and ood["manhattan"] > 0 else float("nan")
        lines.append(
            f"| {name.replace('_', '-')} | {row['dataset']} | {row['n_sentences']:,} | {_fmt(row['manhattan'])} | "
            f"{_fmt(row['euclidean'])} | {_fmt(row['relative_euclidean'], 4)} | {_fmt(ratio, 3)} | {paper_name} | "
            f"{paper_manhattan:,.1f} | {paper_euclidean:.1f} | {paper_ratio:.3f} |"
        )
        csv_lines.append(
            f"{name},{row['dataset']},{row['n_sentences']},{row['manhattan']:.6f},{row['euclidean']:.6f},"
            f"{row['relative_euclidean']:.6f},{ratio:.6f}"
        )
    manhattan_order = ordering_verdict({name: row["manhattan"] for name, row in by_set.items()})
    euclidean_order = ordering_verdict({name: row["euclidean"] for name, row in by_set.items()})
    lines += [
        "",
        f"The paper's ordering (training data moves most, out-of-domain least): Manhattan {manhattan_order}; "
        f"Euclidean {euclidean_order}.",
        "Absolute values depend on the model (the paper: BERT-base, 12 x 768 = 9,216 neurons); compare the ratios.",
        "",
        "## The fine-tuning run",
        "",
        f"Sequence classification of `{run['label']}` on `{run['dataset']}` ({run['unit']}s, multi-label: "
        f"{run['multi_label']}): {len(run['classes'])} classes, {run['n_train']:,} training and {run['n_holdout']:,} "
        f"held-out examples; {run['hyperparameters']['epochs']} epochs, batch {run['hyperparameters']['batch_size']}, "
        f"{run['hyperparameters']['optimizer']} lr {run['hyperparameters']['lr']:g}, dropout "
        f"{run['hyperparameters']['dropout']:g} ({run['hyperparameters']['dropout_scope']}).",
        "",
        f"Chance (always the most frequent training label): {_fmt(run['chance_rate'], 4)}; uniform: "
        f"{_fmt(run['uniform_rate'], 4)}.",
        "",
        "| epoch | training loss | held-out loss | held-out accuracy |",
        "|---|---|---|---|",
    ]
    for epoch in run["epochs"]:
        train_loss = "-" if epoch["train_loss"] is None else f"{epoch['train_loss']:.4f}"
        lines.append(
            f"| {epoch['epoch']} | {train_loss} | {epoch['holdout_loss']:.4f} | {epoch['holdout_accuracy']:.4f} |"
        )
    lines += [
        "",
        "## Beyond the paper: distances per layer",
        "",
        "Mean Euclidean distance per layer (mean Manhattan in brackets) and, per set, relative to the norm of the "
        "before vector.",
        "",
    ]
    per_layer = sorted((row for row in dist if row["layer"] is not None), key=lambda r: (r["layer"], r["set"]))
    layers = sorted({row["layer"] for row in per_layer})
    present = [name for name in EVAL_SETS if name in by_set]
    lines.append("| layer | " + " | ".join(f"{n.replace('_', '-')}" for n in present) + " | "
                 + " | ".join(f"{n.replace('_', '-')} relative" for n in present) + " |")  # fmt: skip
    lines.append("|---|" + "---|" * (2 * len(present)))
    cell = {(row["layer"], row["set"]): row for row in per_layer}
    for layer in layers:
        values = [cell.get((layer, name)) for name in present]
        lines.append(
            f"| {layer} | "
            + " | ".join(f"{_fmt(v['euclidean'])} ({_fmt(v['manhattan'], 1)})" if v else "-" for v in values)
            + " | "
            + " | ".join(_fmt(v["relative_euclidean"], 4) if v else "-" for v in values)
            + " |"
        )
    if sentence_distances is not None:
        lines += length_matched_section(sentence_distances)
    lines += _neuron_sections(neurons, sample, settings)
    markdown = "\n".join(lines) + "\n"
    write_text(md_out, markdown)
    write_text(csv_out, "\n".join(csv_lines) + "\n")
    return markdown


def _neuron_sections(neurons: str, sample: str, settings: FinetuneSettings) -> list[str]:
    table = pq.read_table(neurons)
    frame = table.to_pandas()
    sample_table = pq.read_table(sample, columns=["sentence_id", "text"])
    texts = dict(
        zip(sample_table.column("sentence_id").to_pylist(), sample_table.column("text").to_pylist(), strict=True)
    )
    k = int(frame["top_k"].iloc[0]) if len(frame) else 0
    source = "the sample" if settings.overlap.source == "sample" else "the corpus"
    lines = [
        "",
        f"## Beyond the paper: neurons that moved, and their top sets (top {k} of {source})",
        "",
        "Per layer: mean over neurons of the mean |change| of a neuron's activation over the sample and each set, and "
        "of the Jaccard overlap between its top set before and after fine-tuning.",
        "",
        "| layer | mean abs change (sample) | train | held-out | out-of-domain | median relative to std "
        "| top-set Jaccard mean "
        "| median | share < 0.5 | top dataset changed |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for layer, group in frame.groupby("layer", sort=True):
        jaccard = group["jaccard"].to_numpy()
        changed = float(np.mean(group["top_dataset_before"].to_numpy() != group["top_dataset_after"].to_numpy()))
        lines.append(
            f"| {layer} | {_fmt(group['mean_abs_change'].mean(), 4)} | {_fmt(group['change_train'].mean(), 4)} | "
            f"{_fmt(group['change_holdout'].mean(), 4)} | {_fmt(group['change_out_of_domain'].mean(), 4)} | "
            f"{_fmt(group['relative_change'].median(), 3)} | {jaccard.mean():.3f} | {np.median(jaccard):.3f} | "
            f"{np.mean(jaccard < 0.5):.3f} | {changed:.3f} |"
        )
    top = frame.sort_values(["mean_abs_change", "layer", "neuron"], ascending=[False, True, True]).head(
        settings.overlap.top_neurons
    )
    lines += [
        "",
        f"The {len(top)} neurons whose activation moved most (mean |change| over the sample), with their top set's "
        "dominant dataset and top sentence before and after fine-tuning:",
        "",
        "| neuron | mean abs change | relative to std | train / held-out / out-of-domain | Jaccard "
        "| top dataset before "
        "-> after | top sentence before | top sentence after |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in top.itertuples(index=False):
        before_text = _clip(texts.get(int(row.top_sentence_before), f"#{row.top_sentence_before}"))
        after_text = _clip(texts.get(int(row.top_sentence_after), f"#{row.top_sentence_after}"))
        lines.append(
            f"| {row.name} | {_fmt(row.mean_abs_change, 4)} | {_fmt(row.relative_change, 3)} | "
            f"{_fmt(row.change_train, 3)} / {_fmt(row.change_holdout, 3)} / {_fmt(row.change_out_of_domain, 3)} | "
            f"{row.jaccard:.3f} | {row.top_dataset_before} ({row.top_share_before:.2f}) -> {row.top_dataset_after} "
            f"({row.top_share_after:.2f}) | {before_text} | {after_text} |"
        )
    return lines
