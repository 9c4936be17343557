"""Neurons: how much each moved and how its top set changed (`neuron_changes` -> ``finetune/neurons.parquet``)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from neurotext.artifacts.finetune import EVAL_SETS, NEURONS_SCHEMA, PathLike
from neurotext.artifacts.sample import read_sample_ids
from neurotext.artifacts.topk import read_topk
from neurotext.finetune.distances import layer_file, load_layer
from neurotext.finetune.settings import FinetuneSettings
from neurotext.ids import dataset_code_of, neuron_name
from neurotext.io import write_parquet
from neurotext.logs import progress
from neurotext.topk import activation_keys, decode_keys, select_top

log = logging.getLogger("neurotext.finetune")


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
    table = read_topk(path, columns=["neuron", "rank", "sentence_id"])  # sorted by neuron, then rank
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
    sample_ids = read_sample_ids(sample)
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
            top_before = read_topk_sets(layer_file(topk_before, layer, ".parquet"))
            top_after = read_topk_sets(layer_file(topk_after, layer, ".parquet"))
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
