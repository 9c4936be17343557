"""Table 3 (`write_table3` -> ``tables/table3.md`` and ``tables/table3.csv``): our distances beside the paper's,
the fine-tuning run, distances per layer and at equal sentence length, and the neurons that moved most."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from neurotext.artifacts.finetune import EVAL_SETS
from neurotext.encoder import ModelSettings
from neurotext.finetune.settings import FinetuneSettings
from neurotext.io import write_text
from neurotext.markdown import escape_markdown

#: Table 3 of the paper (BERT-base, Reuters fine-tuning, 10,000 sentences a set): (Manhattan, Euclidean).
PAPER_TABLE3: dict[str, tuple[str, float, float]] = {
    "train": ("Reuters train", 2161.4, 34.8),
    "holdout": ("Reuters test", 1947.9, 31.2),
    "out_of_domain": ("Sentiment140", 1553.4, 24.5),
}

#: Sentence-length bins (words, lower bounds) of Table 3's length-matched comparison.
LENGTH_BINS = (1, 9, 16, 26, 41)


def _fmt(value: float, digits: int = 2) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:,.{digits}f}"


def _clip(text: str, width: int = 90) -> str:
    text = " ".join(text.split())
    return escape_markdown(text if len(text) <= width else text[: width - 1] + "…")


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
