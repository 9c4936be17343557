"""The scores stage's jobs: gather the negatives' parses, and score one layer (`score_layer`).

Per neuron of the layer (the README's "Explanation scores" section):

1. split its top K into explain and test parts (`split.explain_mask`);
2. re-mine its patterns on the explain part with the run's pattern settings against the run's sample (the
   patterns stage's core, `neurotext.mining`), the sample minus the explain part as background;
3. predict every kind on the test part (positives) and on the negatives minus the neuron's own top K (`predict`);
4. score the predictions (`metrics`) next to the controls (`controls`): another neuron's ``all`` prediction (a
   seeded derangement within the layer), sentence length, a bag-of-words logistic regression; metadata only is the
   ``metadata`` kind.

Memory: the layer's encoded sentences, the negatives' activations ``[n_negatives, n_neurons]`` and each neuron's
``all`` prediction over the negatives (float64 ``[n_neurons, n_negatives]``).
"""

from __future__ import annotations

import logging
import os
import time
from contextlib import contextmanager
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from neurotext.artifacts.corpus import METADATA_FIELDS, isin, string_column
from neurotext.artifacts.parses import read_parse_rows
from neurotext.artifacts.patterns import SENTENCES_SCHEMA, read_corpus_metadata
from neurotext.artifacts.scores import (
    CONTROLS,
    KINDS,
    METRICS,
    PRESENCE_METRICS,
    SCORES_SCHEMA,
    SUMMARY_SCHEMA,
    predictions_schema,
)
from neurotext.io import write_parquet
from neurotext.logs import progress
from neurotext.mining import Background, PatternSettings, encode_sentences, mine_neuron
from neurotext.scores.controls import BagOfWords, derangement, length_matched
from neurotext.scores.headline import Headline, all_contributions, headline
from neurotext.scores.metrics import auroc, pearson, precision_recall_f1, spearman
from neurotext.scores.predict import Explanation, Prediction, predict, sentence_lengths
from neurotext.scores.settings import ScoreSettings
from neurotext.scores.split import explain_mask

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]

#: Every predictor scored, in output order.
PREDICTORS: tuple[str, ...] = (*KINDS, *CONTROLS)


def gather_negatives(
    negatives: PathLike, parse_files: Sequence[PathLike], out: PathLike, config_hash: str = ""
) -> pa.Table:
    """Write the negatives' tokens, tags, trees and metadata (`SENTENCES_SCHEMA`, ``in_sample`` false) from the
    parse files and the negatives' own corpus rows; every negative must be in the parse files."""
    corpus = pq.read_table(negatives, columns=["sentence_id", *METADATA_FIELDS]).sort_by("sentence_id")
    ids = corpus["sentence_id"].to_numpy().astype(np.uint32)
    parses = read_parse_rows(parse_files, ids)
    columns = {
        "sentence_id": pa.array(ids, pa.uint32()),
        "in_sample": pa.array(np.zeros(ids.size, dtype=bool)),
        **{name: parses[name] for name in ("tokens", "tags", "tree", "parsed", "reason")},
        **{name: string_column(corpus[name]) for name in METADATA_FIELDS},
    }
    table = pa.table([columns[f.name] for f in SENTENCES_SCHEMA], schema=SENTENCES_SCHEMA)
    write_parquet(table, out, config_hash)
    log.info("negatives: %d sentences, %d parsed", ids.size, int(pc.sum(table["parsed"]).as_py() or 0))
    return table


@dataclass(frozen=True)
class LayerInputs:
    """One layer's top K (sorted by neuron, rank) and the negatives' ids (sorted) and activations."""

    neurons: np.ndarray  # int32 [rows], top-K rows
    sentence_ids: np.ndarray  # uint32 [rows]
    activations: np.ndarray  # float64 [rows]
    negative_ids: np.ndarray  # uint32 [n_neg]
    negative_acts: np.ndarray  # float32 [n_neg, n_neurons]


def _read_inputs(topk: PathLike, negative_sentences: PathLike, negative_acts: PathLike) -> LayerInputs:
    top = pq.read_table(topk, columns=["neuron", "rank", "sentence_id", "activation"])
    top = top.sort_by([("neuron", "ascending"), ("rank", "ascending")])
    neg_ids = pq.read_table(negative_sentences, columns=["sentence_id"])["sentence_id"].to_numpy().astype(np.uint32)
    acts = np.load(negative_acts, mmap_mode=None)
    if acts.ndim != 2 or acts.shape[0] != neg_ids.size:
        raise ValueError(f"{negative_acts}: shape {acts.shape}, expected [{neg_ids.size}, n_neurons] (one row per "
                         f"negative in {negative_sentences}); rerun the scores_negative_activations rule")  # fmt: skip
    if neg_ids.size > 1 and np.any(neg_ids[1:] <= neg_ids[:-1]):
        raise ValueError(f"{negative_sentences}: sentence ids must be sorted and distinct")
    return LayerInputs(
        top["neuron"].to_numpy().astype(np.int32), top["sentence_id"].to_numpy().astype(np.uint32),
        top["activation"].to_numpy().astype(np.float64), neg_ids, acts,
    )  # fmt: skip


def _encode(sentences: PathLike, negative_sentences: PathLike, corpus_counts: Any, settings: PatternSettings):
    """The layer's gathered sentences (top K and sample) plus the negatives not already among them, encoded."""
    table = pq.read_table(sentences).select([f.name for f in SENTENCES_SCHEMA])
    negatives = pq.read_table(negative_sentences).select([f.name for f in SENTENCES_SCHEMA])
    extra = negatives.filter(pc.invert(isin("sentence_id", table["sentence_id"].to_numpy())))
    table = pa.concat_tables([table.cast(SENTENCES_SCHEMA), extra.cast(SENTENCES_SCHEMA)]).sort_by("sentence_id")
    return encode_sentences(table, corpus_counts, settings.word_classes)


@dataclass
class NeuronResult:
    """One neuron's metric matrix ``[len(PREDICTORS), len(METRICS)]`` (NaN: not defined) and its test sizes."""

    neuron: int
    values: np.ndarray
    n_pos: int
    n_neg: int


def _metrics(values: np.ndarray, present: np.ndarray | None, positive: np.ndarray, acts: np.ndarray,
             label: np.ndarray) -> np.ndarray:  # fmt: skip
    """Metric rows ``[m, len(METRICS)]`` for predictions `values` ``[m, n]`` (presence ``[m, n]`` or None)."""
    out = np.full((values.shape[0], len(METRICS)), np.nan)
    out[:, METRICS.index("auroc")] = auroc(values, positive)
    out[:, METRICS.index("pearson")] = pearson(values, acts)
    out[:, METRICS.index("spearman")] = spearman(values, acts)
    if present is not None:
        p, r, f = precision_recall_f1(present, label)
        out[:, METRICS.index("precision")], out[:, METRICS.index("recall")], out[:, METRICS.index("f1")] = p, r, f
    return out


@contextmanager
def _timed(timings: dict[str, float], step: str):
    """Add the CPU seconds of the block to ``timings[step]``."""
    start = time.process_time()
    try:
        yield
    finally:
        timings[step] = timings.get(step, 0.0) + time.process_time() - start


@dataclass(frozen=True, eq=False)
class Layer:
    """Everything shared by the neurons of one layer: inputs, encoded sentences, the sample (background), the
    negatives' rows and indexes, the bag-of-words matrix and the settings."""

    inputs: LayerInputs
    enc: Any  # neurotext.mining.EncodedSentences
    sample: Background
    negatives: Background
    neg_rows: np.ndarray  # int64 [n_neg], rows of enc, in negative_ids order (sorted)
    neg_lengths: np.ndarray  # float64 [n_neg]
    bow: BagOfWords
    corpus_counts: Any
    corpus_index: dict[str, Mapping[str, int]]
    bounds: np.ndarray  # int64 [n_neurons + 1]: neuron n's top-K rows are bounds[n]:bounds[n + 1]
    psettings: PatternSettings
    settings: ScoreSettings

    @property
    def n_neurons(self) -> int:
        return int(self.inputs.negative_acts.shape[1])


def load_layer(topk: PathLike, sentences: PathLike, negative_sentences: PathLike, negative_acts: PathLike,
               corpus_metadata: PathLike, psettings: PatternSettings, settings: ScoreSettings) -> Layer:  # fmt: skip
    """Read and encode one layer's inputs (see `score_layer`)."""
    inputs = _read_inputs(topk, negative_sentences, negative_acts)
    n_neurons = int(inputs.negative_acts.shape[1])
    if inputs.neurons.size and int(inputs.neurons.max()) >= n_neurons:
        raise ValueError(f"{topk}: neuron {int(inputs.neurons.max())} but {negative_acts} has {n_neurons} columns; "
                         "rerun the scores_negative_activations rule with the same model")  # fmt: skip
    corpus_counts = read_corpus_metadata(corpus_metadata)
    try:
        enc = _encode(sentences, negative_sentences, corpus_counts, psettings)
    except ValueError as error:
        raise ValueError(f"{sentences} + {negative_sentences}: {error}") from None
    neg_rows = enc.rows_of(inputs.negative_ids)
    layer = Layer(
        inputs=inputs, enc=enc, sample=Background.build(enc), negatives=Background.build(enc, neg_rows),
        neg_rows=neg_rows, neg_lengths=sentence_lengths(enc, neg_rows),
        bow=BagOfWords.build(enc.words, settings.bow_c, settings.bow_max_iter), corpus_counts=corpus_counts,
        corpus_index={name: counts.index for name, counts in corpus_counts.items()},
        bounds=np.searchsorted(inputs.neurons, np.arange(n_neurons + 1)), psettings=psettings, settings=settings,
    )  # fmt: skip
    log.info("layer: %d neurons, %d sentences encoded (%d sample, %d negatives)", n_neurons, len(enc),
             int(enc.in_sample.sum()), neg_rows.size)  # fmt: skip
    return layer


@dataclass
class Evaluated:
    """One neuron's evaluation set: its test rows (positives, by sentence id) and the negatives kept (bool
    ``[n_neg]``), with labels and true activations over positives then kept negatives."""

    test_ids: np.ndarray
    test_rows: np.ndarray
    keep: np.ndarray
    positive: np.ndarray
    acts: np.ndarray
    label: np.ndarray


def _split_neuron(layer: Layer, neuron: int) -> tuple[np.ndarray, np.ndarray, Evaluated]:
    """(all top ids, explain-part ids, evaluation set) of one neuron."""
    inputs, settings = layer.inputs, layer.settings
    part = slice(int(layer.bounds[neuron]), int(layer.bounds[neuron + 1]))
    ids, acts = inputs.sentence_ids[part], inputs.activations[part]
    explain = explain_mask(ids, settings.seed, settings.explain_fraction)
    order = np.argsort(ids[~explain], kind="stable")
    test_ids, test_acts = ids[~explain][order], acts[~explain][order]
    test_rows = layer.enc.rows_of(test_ids)
    keep = ~np.isin(inputs.negative_ids, ids)  # the neuron's own top K is never a negative
    if settings.length_matched:
        keep &= length_matched(sentence_lengths(layer.enc, test_rows), layer.neg_lengths, inputs.negative_ids,
                               settings.seed)  # fmt: skip
    eval_acts = np.concatenate([test_acts, inputs.negative_acts[keep, neuron].astype(np.float64)])
    positive = np.zeros(eval_acts.size, dtype=bool)
    positive[: test_ids.size] = True
    kth = float(acts.min()) if acts.size else np.inf  # the neuron's K-th top-K activation
    return ids, ids[explain], Evaluated(test_ids, test_rows, keep, positive, eval_acts, eval_acts >= kth)


@dataclass
class NeuronOutput:
    """What `_score_neuron` hands on: the result, the explanation, the predictions over the evaluation set, the
    ``all`` prediction over every negative (for the derangement), the evaluation set and the controls' predictions
    ``[len(CONTROLS), n_eval]``."""

    result: NeuronResult
    explanation: Explanation
    evaluated_pred: Prediction
    negatives_all: Prediction
    evaluated: Evaluated
    controls: np.ndarray
    contributions: dict[str, np.ndarray]


def _score_neuron(layer: Layer, neuron: int, timings: dict[str, float]) -> NeuronOutput:
    """Mine, predict and score one neuron (all but the derangement)."""
    enc, skip_gap = layer.enc, layer.psettings.skipgrams.max_gap
    ids, explain_ids, ev = _split_neuron(layer, neuron)
    with _timed(timings, "mine"):
        prof = mine_neuron(enc, layer.sample, explain_ids, layer.corpus_counts, layer.psettings, neuron=neuron)
    expl = Explanation.from_rows(prof.patterns, prof.metadata, layer.corpus_index, layer.settings.patterns,
                                 layer.settings.top_n, layer.psettings.q_max)  # fmt: skip
    with _timed(timings, "predict"):
        neg_pred = predict(enc, layer.negatives, layer.neg_rows, expl, skip_gap)
        test_pred = predict(enc, Background.build(enc, ev.test_rows), ev.test_rows, expl, skip_gap)
    values = np.concatenate([test_pred.values, neg_pred.values[:, ev.keep]], axis=1)
    present = np.concatenate([test_pred.present, neg_pred.present[:, ev.keep]], axis=1)
    eval_rows = np.concatenate([ev.test_rows, layer.neg_rows[ev.keep]])
    with _timed(timings, "bow"):
        background_rows = np.flatnonzero(layer.sample.member & ~np.isin(enc.sentence_ids, ids))
        bow_scores = layer.bow.scores(enc.rows_of(explain_ids), background_rows, eval_rows)
    # the derangement row is filled by the second pass
    controls = np.stack([np.zeros(eval_rows.size), sentence_lengths(enc, eval_rows), bow_scores])
    with _timed(timings, "metrics"):
        matrix = np.full((len(PREDICTORS), len(METRICS)), np.nan)
        matrix[: len(KINDS)] = _metrics(values, present, ev.positive, ev.acts, ev.label)
        matrix[: len(KINDS), METRICS.index("n_patterns")] = expl.n_patterns()
        first = len(KINDS) + CONTROLS.index("length")
        matrix[first:] = _metrics(controls[1:], None, ev.positive, ev.acts, ev.label)
    result = NeuronResult(neuron, matrix, int(ev.test_ids.size), int(ev.keep.sum()))
    negatives_all = Prediction(neg_pred.values[-1], neg_pred.present[-1])
    contrib = all_contributions(expl, test_pred, neg_pred, ev.keep)
    return NeuronOutput(result, expl, Prediction(values, present), negatives_all, ev, controls, contrib)


def score_layer(
    topk: PathLike,
    sentences: PathLike,
    negative_sentences: PathLike,
    negative_acts: PathLike,
    corpus_metadata: PathLike,
    patterns: PatternSettings | Mapping[str, Any] | None,
    scores: ScoreSettings | Mapping[str, Any] | None,
    out: PathLike,
    predictions_out: PathLike | None = None,
    config_hash: str = "",
    timings: dict[str, float] | None = None,
    summary_out: PathLike | None = None,
) -> pa.Table:
    """Score every neuron of one layer; write `SCORES_SCHEMA` to `out`, the one-line summaries (`SUMMARY_SCHEMA`)
    to `summary_out` and the predictions to `predictions_out` when given. Inputs: the layer's top-K file, its
    gathered sentences (``patterns/sentences/layer{L}.parquet``), the negatives' gathered sentences and activations,
    the corpus metadata counts. `timings` (when given) receives
    the CPU seconds of each step (load, mine, predict, bow, metrics, derangement, write); they are also logged."""
    psettings = patterns if isinstance(patterns, PatternSettings) else PatternSettings.from_config(patterns)
    settings = scores if isinstance(scores, ScoreSettings) else ScoreSettings.from_config(scores)
    timings = {} if timings is None else timings
    with _timed(timings, "load"):
        layer = load_layer(topk, sentences, negative_sentences, negative_acts, corpus_metadata, psettings, settings)
    n_neurons, n_neg = layer.n_neurons, layer.neg_rows.size
    explanations: list[Explanation] = []
    neg_all = np.zeros((n_neurons, n_neg))  # each neuron's `all` prediction over every negative
    neg_all_present = np.zeros((n_neurons, n_neg), dtype=bool)
    results: list[NeuronResult] = []
    evaluated: list[Evaluated] = []
    contributions: list[dict[str, np.ndarray]] = []
    pieces: list[pa.Table] = []
    for neuron in progress(range(n_neurons), desc="scores", unit="neuron"):
        output = _score_neuron(layer, neuron, timings)
        ev = output.evaluated
        results.append(output.result)
        explanations.append(output.explanation)
        evaluated.append(ev)
        contributions.append(output.contributions)
        neg_all[neuron], neg_all_present[neuron] = output.negatives_all.values, output.negatives_all.present
        if predictions_out is not None:
            ids = np.concatenate([ev.test_ids, layer.inputs.negative_ids[ev.keep]])
            pieces.append(_prediction_piece(neuron, ids, ev, output.evaluated_pred.values, output.controls))
    with _timed(timings, "derangement"):
        _derangement_pass(layer, explanations, evaluated, neg_all, neg_all_present, results, pieces)
    with _timed(timings, "write"):
        table = _scores_table(results)
        write_parquet(table, out, config_hash)
        if summary_out is not None:
            rows = [headline(r.neuron, r.values, explanations[i], contributions[i], PREDICTORS)
                    for i, r in enumerate(results)]  # fmt: skip
            write_parquet(_summary_table(rows), summary_out, config_hash)
        if predictions_out is not None:
            schema = predictions_schema(PREDICTORS)
            merged = pa.concat_tables(pieces).cast(schema) if pieces else schema.empty_table()
            write_parquet(merged, predictions_out, config_hash)
    _log_summary(table)
    log.info("CPU seconds: %s (%d neurons)", ", ".join(f"{k} {v:.2f}" for k, v in timings.items()), n_neurons)
    return table


def _derangement_pass(layer: Layer, explanations: Sequence[Explanation], evaluated: Sequence[Evaluated],
                      neg_all: np.ndarray, neg_all_present: np.ndarray, results: list[NeuronResult],
                      pieces: list[pa.Table]) -> None:  # fmt: skip
    """Score neuron i's test set with neuron d[i]'s explanation (`controls.derangement`), in place."""
    deranged = derangement(layer.n_neurons, layer.settings.derangement_seed)
    row = len(KINDS) + CONTROLS.index("derangement")
    skip_gap = layer.psettings.skipgrams.max_gap
    for neuron, ev in enumerate(evaluated):
        other = int(deranged[neuron])
        pred = predict(layer.enc, Background.build(layer.enc, ev.test_rows), ev.test_rows, explanations[other],
                       skip_gap)  # fmt: skip
        values = np.concatenate([pred.values[-1], neg_all[other][ev.keep]])[None, :]
        present = np.concatenate([pred.present[-1], neg_all_present[other][ev.keep]])[None, :]
        metrics = _metrics(values, present, ev.positive, ev.acts, ev.label)
        metrics[0, METRICS.index("n_patterns")] = explanations[other].n_patterns()[-1]
        results[neuron].values[row] = metrics[0]
        if pieces:
            index = pieces[neuron].schema.get_field_index("derangement")
            pieces[neuron] = pieces[neuron].set_column(index, "derangement", pa.array(values[0], pa.float64()))


def _prediction_piece(neuron: int, ids: np.ndarray, ev: Evaluated, values: np.ndarray,
                      controls: np.ndarray) -> pa.Table:  # fmt: skip
    columns: dict[str, Any] = {
        "neuron": pa.array(np.full(ids.size, neuron, np.int32)),
        "sentence_id": pa.array(ids, pa.uint32()),
        "positive": pa.array(ev.positive),
        "activation": pa.array(ev.acts.astype(np.float32)),
        "label": pa.array(ev.label),
    }
    for k, kind in enumerate(KINDS):
        columns[kind] = pa.array(values[k], pa.float64())
    for k, name in enumerate(CONTROLS):
        columns[name] = pa.array(controls[k], pa.float64())
    return pa.table(columns)


def _scores_table(results: Sequence[NeuronResult]) -> pa.Table:
    """`SCORES_SCHEMA` rows: per neuron, predictor (`PREDICTORS` order) and metric (`METRICS` order); controls
    without presence get no precision / recall / f1 / n_patterns rows."""
    has = np.ones((len(PREDICTORS), len(METRICS)), dtype=bool)
    for name in ("length", "bow"):
        for metric in PRESENCE_METRICS:
            has[PREDICTORS.index(name), METRICS.index(metric)] = False
    p_idx, m_idx = np.nonzero(has)
    n = len(results)
    neurons = np.repeat([r.neuron for r in results], p_idx.size).astype(np.int32)
    values = np.concatenate([r.values[p_idx, m_idx] for r in results]) if n else np.zeros(0)
    return pa.table(
        {
            "neuron": pa.array(neurons, pa.int32()),
            "kind": pa.array([PREDICTORS[i] for i in p_idx] * n, pa.string()),
            "metric": pa.array([METRICS[i] for i in m_idx] * n, pa.string()),
            "value": pa.array(values, pa.float64()),
            "n_pos": pa.array(np.repeat([r.n_pos for r in results], p_idx.size).astype(np.int32), pa.int32()),
            "n_neg": pa.array(np.repeat([r.n_neg for r in results], p_idx.size).astype(np.int32), pa.int32()),
        },
        schema=SCORES_SCHEMA,
    )


def _summary_table(rows: Sequence[Headline]) -> pa.Table:
    return pa.table({f.name: pa.array([getattr(r, f.name) for r in rows], f.type) for f in SUMMARY_SCHEMA},
                    schema=SUMMARY_SCHEMA)  # fmt: skip


def _log_summary(table: pa.Table) -> None:
    t = table.filter(pc.equal(table["metric"], "auroc"))
    for kind in PREDICTORS:
        v = t.filter(pc.equal(t["kind"], kind))["value"].to_numpy()
        v = v[~np.isnan(v)]
        if v.size:
            log.info("AUROC %-12s median %.3f (IQR %.3f-%.3f) over %d neurons", kind, np.median(v),
                     np.quantile(v, 0.25), np.quantile(v, 0.75), v.size)  # fmt: skip


__all__ = ["PREDICTORS", "Prediction", "gather_negatives", "score_layer"]
