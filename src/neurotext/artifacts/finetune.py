"""Fine-tuning artifacts: the files under ``results/{run}/finetune/`` (written by `neurotext.finetune`), their
Arrow schemas and readers.

* ``finetune/labelled.parquet`` (`LABELLED_SCHEMA`, `read_labelled`): the labelled sentences and their part.
* ``finetune/model/`` + ``finetune/metrics.json``: the fine-tuned encoder and its training metrics.
* ``finetune/eval/sentences.parquet`` (`EVAL_SCHEMA`) and ``finetune/eval/{model}/{pooling}/layer{L}.npy``
  (float32 [n_eval, n_neurons], rows in sentence-id order): the evaluation sentences and their activations.
* ``finetune/distances.parquet`` (`DISTANCES_SCHEMA`), ``finetune/sentence_distances.parquet``
  (`SENTENCE_DISTANCES_SCHEMA`).
* ``finetune/neurons.parquet`` (`NEURONS_SCHEMA`, `read_neuron_changes`): per neuron, how fine-tuning moved it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

PathLike = str | os.PathLike[str]

#: Path templates relative to ``results/{run}/``.
LABELLED_PATH = "finetune/labelled.parquet"
MODEL_PATH = "finetune/model"
METRICS_PATH = "finetune/metrics.json"
EVAL_SENTENCES_PATH = "finetune/eval/sentences.parquet"
EVAL_ACTIVATIONS_PATH = "finetune/eval/{model}/{pooling}/layer{layer}.npy"
DISTANCES_PATH = "finetune/distances.parquet"
SENTENCE_DISTANCES_PATH = "finetune/sentence_distances.parquet"
NEURONS_PATH = "finetune/neurons.parquet"

PARTS = ("train", "holdout")
#: Evaluation sets, in table order: in-domain training part, in-domain held-out part, out-of-domain dataset.
EVAL_SETS = ("train", "holdout", "out_of_domain")
LABEL_SEPARATOR = "|"

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


#: `NEURONS_SCHEMA` columns a neuron page shows, in this order (the first, ``mean_abs_change``, also in the index).
NEURON_FIELDS: tuple[str, ...] = (
    "mean_abs_change", "relative_change", "jaccard", "change_train", "change_holdout", "change_out_of_domain",
    "mean_change", "base_std", "top_k", "top_dataset_before", "top_share_before", "top_dataset_after",
    "top_share_after",
)  # fmt: skip


@dataclass(frozen=True)
class NeuronChanges:
    """`finetune/neurons.parquet` read back: `fields` (of `NEURON_FIELDS`, in that order) and per (layer, neuron)
    its values (numbers as float or int, strings as they are; NaN kept)."""

    fields: tuple[str, ...]
    by_neuron: dict[tuple[int, int], dict[str, object]]


def read_neuron_changes(path: PathLike) -> NeuronChanges:
    """Read `finetune/neurons.parquet`; a file that does not follow `NEURONS_SCHEMA` is an error naming it."""
    try:
        table = pq.read_table(path, columns=["layer", "neuron", *NEURON_FIELDS])
    except (OSError, pa.ArrowInvalid, KeyError) as error:
        raise ValueError(f"{path}: not a fine-tuning neurons file ({error}); rerun finetune_neurons") from error
    columns = {name: table[name].to_pylist() for name in NEURON_FIELDS}
    keys = zip(table["layer"].to_pylist(), table["neuron"].to_pylist(), strict=True)
    rows = {key: {name: columns[name][i] for name in NEURON_FIELDS} for i, key in enumerate(keys)}
    return NeuronChanges(NEURON_FIELDS, rows)
