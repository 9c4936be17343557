"""Files of the scores stage (all under ``results/{run}/``; docs/ARCHITECTURE.md, "Artifacts"; the README's
"Explanation scores" section defines every kind and metric):

* ``scores/negatives.parquet``: the negatives, a second random sample of the corpus disjoint from the background
  sample (corpus schema, sorted by sentence_id); ``scores/negatives/{model}/{pooling}/layer{L}.npy``: their pooled
  activations, float32 ``[n_negatives, n_neurons]``, rows in sentence_id order (the scan's sample layout);
  ``scores/negatives/sentences.parquet``: their tokens, tags, trees and metadata (`SENTENCES_SCHEMA` of the
  patterns stage, ``in_sample`` false).
* ``scores/layer{L}.parquet`` (`SCORES_SCHEMA`): one row per (neuron, kind, metric).
* ``scores/summary/layer{L}.parquet`` (`SUMMARY_SCHEMA`): per neuron, the kind that explains it best, whether it
  beats the controls, and a one-line summary whose parts are picked by their contribution to the score.
* ``scores/predictions/layer{L}.parquet`` (`predictions_schema`, only with ``scores.keep_predictions``): every
  evaluated sentence's prediction per kind, its true activation and label.
* ``tables/scores.{md,csv}`` and ``figures/scores.{png,pdf}``: the summary table and figure.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

PathLike = str | os.PathLike[str]

NEGATIVES_PATH = "scores/negatives.parquet"
NEGATIVE_SENTENCES_PATH = "scores/negatives/sentences.parquet"
NEGATIVE_ACTIVATIONS_PATH = "scores/negatives/{model}/{pooling}/layer{layer}.npy"
SCORES_PATH = "scores/layer{layer}.parquet"
PREDICTIONS_PATH = "scores/predictions/layer{layer}.parquet"
SUMMARY_PATH = "scores/summary/layer{layer}.parquet"
TABLE_PATHS = ("tables/scores.md", "tables/scores.csv")
FIGURE_PATHS = ("figures/scores.png", "figures/scores.pdf")

#: The explanation kinds, in the order of every output: the four pattern kinds, metadata and their sum.
KINDS: tuple[str, ...] = ("words", "skipgrams", "posgrams", "subtrees", "metadata", "all")
#: The controls (metadata only is the ``metadata`` kind): another neuron's ``all`` prediction, sentence length,
#: bag-of-words logistic regression.
CONTROLS: tuple[str, ...] = ("derangement", "length", "bow")
#: Metrics of every kind and control; precision / recall / f1 need "contains a pattern" (kinds and derangement);
#: n_patterns counts the patterns that entered the prediction (kinds and derangement).
METRICS: tuple[str, ...] = ("auroc", "pearson", "spearman", "precision", "recall", "f1", "n_patterns")
PRESENCE_METRICS: tuple[str, ...] = ("precision", "recall", "f1", "n_patterns")

SCORES_SCHEMA = pa.schema(
    [
        pa.field("neuron", pa.int32(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),  # KINDS, then CONTROLS
        pa.field("metric", pa.string(), nullable=False),  # METRICS
        pa.field("value", pa.float64(), nullable=False),  # NaN where undefined (no positives or no negatives)
        pa.field("n_pos", pa.int32(), nullable=False),  # test top sentences (positives)
        pa.field("n_neg", pa.int32(), nullable=False),  # negatives evaluated (the neuron's own top K left out)
    ]
)


SUMMARY_SCHEMA = pa.schema(
    [
        pa.field("neuron", pa.int32(), nullable=False),
        pa.field("best_kind", pa.string()),  # the kind (not `all`) with the highest AUROC; null when none is defined
        pa.field("best_auroc", pa.float64(), nullable=False),
        pa.field("control_auroc", pa.float64(), nullable=False),  # max of 0.5, the derangement and length controls
        pa.field("explained", pa.bool_(), nullable=False),  # some kind's AUROC is above control_auroc
        pa.field("summary", pa.string(), nullable=False),
    ]
)


def read_summary(path: PathLike) -> pa.Table:
    """``scores/summary/layer{L}.parquet`` (`SUMMARY_SCHEMA`), by neuron."""
    return pq.read_table(path).select([f.name for f in SUMMARY_SCHEMA])


def predictions_schema(predictors: Sequence[str] = (*KINDS, *CONTROLS)) -> pa.Schema:
    """``scores/predictions/layer{L}.parquet``: one row per (neuron, evaluated sentence), a float64 column per
    predictor (kinds and controls)."""
    return pa.schema(
        [
            pa.field("neuron", pa.int32(), nullable=False),
            pa.field("sentence_id", pa.uint32(), nullable=False),
            pa.field("positive", pa.bool_(), nullable=False),  # a test top sentence (else a negative)
            pa.field("activation", pa.float32(), nullable=False),  # true pooled activation
            pa.field("label", pa.bool_(), nullable=False),  # activation >= the neuron's K-th top-K activation
            *[pa.field(name, pa.float64(), nullable=False) for name in predictors],
        ]
    )


def read_scores(path: PathLike, neurons: Sequence[int] | None = None) -> pa.Table:
    """Rows of ``scores/layer{L}.parquet`` (`SCORES_SCHEMA`), all or those of `neurons`, in file order."""
    try:
        names = pq.read_schema(path).names
    except (OSError, pa.ArrowInvalid) as error:
        raise ValueError(f"{path}: cannot read the scores ({error}); rerun the scores stage") from error
    missing = [f.name for f in SCORES_SCHEMA if f.name not in names]
    if missing:
        raise ValueError(f"{path}: not a scores file (no columns {', '.join(missing)}); rerun the scores stage")
    if neurons is None:
        return pq.read_table(path)
    return pq.read_table(path, filters=pc.field("neuron").isin(pa.array(list(neurons), pa.int32())))


def scores_matrix(table: pa.Table, metric: str = "auroc") -> tuple[np.ndarray, list[str], np.ndarray]:
    """One metric as a dense matrix: (neurons int32 ``[n]``, kinds present in `KINDS` + `CONTROLS` order,
    values float64 ``[n, len(kinds)]``, NaN where missing)."""
    t = table.filter(pc.equal(table["metric"], metric))
    neurons = np.unique(t["neuron"].to_numpy())
    present = set(t["kind"].to_pylist())
    kinds = [k for k in (*KINDS, *CONTROLS) if k in present]
    values = np.full((neurons.size, len(kinds)), np.nan)
    rows = np.searchsorted(neurons, t["neuron"].to_numpy())
    cols = np.array([kinds.index(k) for k in t["kind"].to_pylist()], dtype=np.int64)
    values[rows, cols] = t["value"].to_numpy()
    return neurons.astype(np.int32), kinds, values


def _rounded(value: float, digits: int = 3) -> float | None:
    return None if value is None or value != value else round(float(value), digits)


def read_neuron_scores(path: PathLike, summary: PathLike | None = None) -> dict[int, dict]:
    """Per neuron, what a neuron page shows: ``{"kinds": [...], "auroc": [...], "spearman": [...], "f1": [...],
    "n_pos", "n_neg"}`` (values rounded to 3 decimals, None where undefined; kinds in `KINDS` + `CONTROLS` order),
    plus ``best``, ``best_auroc``, ``control``, ``explained`` and ``summary`` from the summary file when given."""
    table = read_scores(path)
    out: dict[int, dict] = {}
    metrics = {m: scores_matrix(table, m) for m in ("auroc", "spearman", "f1")}
    neurons, kinds, _ = metrics["auroc"]
    sizes = table.filter(pc.equal(table["metric"], "auroc"))
    n_pos = dict(zip(sizes["neuron"].to_pylist(), sizes["n_pos"].to_pylist(), strict=True))
    n_neg = dict(zip(sizes["neuron"].to_pylist(), sizes["n_neg"].to_pylist(), strict=True))
    for i, neuron in enumerate(neurons.tolist()):
        entry: dict = {"kinds": kinds, "n_pos": n_pos.get(neuron), "n_neg": n_neg.get(neuron)}
        for metric, (m_neurons, m_kinds, values) in metrics.items():
            row = values[i] if m_neurons.size > i and m_neurons[i] == neuron else np.full(len(m_kinds), np.nan)
            by_kind = dict(zip(m_kinds, row.tolist(), strict=True))
            entry[metric] = [_rounded(by_kind.get(k, float("nan"))) for k in kinds]
        out[neuron] = entry
    if summary is not None:
        for row in read_summary(summary).to_pylist():
            entry = out.setdefault(row["neuron"], {"kinds": kinds})
            entry.update(best=row["best_kind"], best_auroc=_rounded(row["best_auroc"]),
                         control=_rounded(row["control_auroc"]), explained=row["explained"], summary=row["summary"])
    return out
