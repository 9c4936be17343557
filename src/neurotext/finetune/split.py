"""Labelled data and the held-out split (`split_labelled` -> ``finetune/labelled.parquet``), and the evaluation
sentences of Table 3 (`eval_sentences` -> ``finetune/eval/sentences.parquet``)."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from neurotext.artifacts.finetune import (
    EVAL_SCHEMA,
    EVAL_SETS,
    LABEL_SEPARATOR,
    PARTS,
    LabelledRows,
    PathLike,
    read_labelled,
)
from neurotext.config import ConfigError
from neurotext.finetune.settings import FinetuneSettings
from neurotext.ids import sample_order, splitmix64, text_hash64
from neurotext.io import write_parquet

log = logging.getLogger("neurotext.finetune")


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
