"""Training: fine-tune the encoder with a sequence-classification head (`finetune_model` ->
``finetune/model/`` and ``finetune/metrics.json``)."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neurotext.artifacts.finetune import LabelledRows, PathLike, read_labelled
from neurotext.config import ConfigError
from neurotext.encoder import (
    ModelSettings,
    ScanSettings,
    Tokens,
    load_tokenizer,
    make_batch,
    plan_batches,
    select_device,
    tokenize,
)
from neurotext.finetune.settings import FinetuneSettings
from neurotext.io import atomic_directory, write_json
from neurotext.logs import progress

log = logging.getLogger("neurotext.finetune")


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
    if model.config.pad_token_id is None:  # decoders (GPT-2): pad with EOS, as their classification heads expect
        model.config.pad_token_id = model.config.eos_token_id
    return model


def pad_id(model) -> int:
    """The id batches of `model` are padded with: its config's `pad_token_id` (0 when it has none)."""
    value = getattr(model.config, "pad_token_id", None)
    return 0 if value is None else int(value)


def _make_optimizer(model, settings: FinetuneSettings):
    import torch

    parameters = [p for p in model.parameters() if p.requires_grad]
    if settings.optimizer == "adam":
        return torch.optim.Adam(parameters, lr=settings.lr, weight_decay=settings.weight_decay, foreach=True)
    return torch.optim.AdamW(parameters, lr=settings.lr, weight_decay=settings.weight_decay, foreach=True)


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
            batch = make_batch(tokens, rows, exclude_special=False, device=device, pad_id=pad_id(model))
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
    padding = pad_id(model)
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
                batch = make_batch(train_tokens, rows, exclude_special=False, device=device, pad_id=padding)
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
