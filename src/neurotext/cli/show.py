"""`neurotext show NEURON`: one neuron's summary, top sentences (max token marked), patterns by kind, metadata
shares and explanation scores, read through `neurotext.artifacts`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from neurotext.cli.runs import (
    MODEL,
    UserError,
    choose_run,
    every_layer,
    read_provenance,
    rebuild_hint,
    results_dir,
    run_features,
    run_paths,
)
from neurotext.cli.text import Marker, clean_text, mark_sentence, number, percent, print_json, span_text, table


@dataclass
class NeuronView:
    """Everything `neurotext show` prints about one neuron; None where the stage has not run yet."""

    run: str
    neuron: str
    layer: int
    index: int
    config_hash: str  # the run's (provenance.json), else the one stamped in the layer's top-K file
    summary: str | None
    profile: dict[str, Any] | None
    n_top: int  # rows in the top-K file
    top: list[dict[str, Any]]  # rank, sentence_id, dataset, activation, token, char_start, char_end, text
    patterns: dict[str, list[dict[str, Any]]] | None  # kind -> rows, best first
    metadata: dict[str, list[dict[str, Any]]] | None  # field -> rows, most frequent first
    scores: list[dict[str, Any]] | None
    missing: list[str]  # files of the stages not run yet, relative to the run
    explained: str | None = None  # the scores' one-line summary (parts picked by their contribution to the score)


def sentences_of(paths: Any, sentence_ids: Sequence[int]) -> dict[int, tuple[str, str]]:
    """{sentence_id: (dataset, text)} from the run's corpus files (ids in no corpus file are left out)."""
    import numpy as np

    from neurotext.artifacts.corpus import read_corpus_rows

    if not sentence_ids:
        return {}
    rows = read_corpus_rows(paths.corpus_files(), np.asarray(sentence_ids, np.uint32), ("dataset", "text"), "skip")
    return {i: (d, t) for i, d, t in zip(*(rows[c].to_pylist() for c in ("sentence_id", "dataset", "text")),
                                         strict=True)}  # fmt: skip


def top_sentences(paths: Any, topk: Path, neuron: int, n: int) -> tuple[int, list[dict[str, Any]]]:
    """(rows of the neuron in the top-K file, its first `n` as dicts with dataset, text and the max token)."""
    from neurotext.artifacts.topk import read_topk

    rows = read_topk(topk, neurons=[neuron]).to_pylist()
    texts = sentences_of(paths, [r["sentence_id"] for r in rows[:n]])
    shown = []
    for row in rows[:n]:
        dataset, text = texts.get(row["sentence_id"], ("?", ""))
        start, end = row["char_start"], row["char_end"]
        token = text[start:end] if 0 <= start < end <= len(text) else ""
        shown.append({"rank": row["rank"], "sentence_id": row["sentence_id"], "dataset": dataset,
                      "activation": row["activation"], "token": token, "char_start": start, "char_end": end,
                      "text": text})  # fmt: skip
    return len(rows), shown


def grouped(rows: Sequence[dict[str, Any]], key: str, keys: Sequence[str], per_key: int) -> dict[str, list]:
    """Rows by their `key` column (the groups `keys` first, even when empty), the first `per_key` of each."""
    groups: dict[str, list[dict[str, Any]]] = {k: [] for k in keys}
    for row in rows:
        kept = groups.setdefault(row.pop(key), [])
        if len(kept) < per_key:
            kept.append(row)
    return groups


def neuron_count(topk: Path, profiles: Path) -> int:
    """Neurons of a layer: 1 + the largest index in its top-K file and, when present, its profiles (a neuron
    without top sentences still has a profile)."""
    import pyarrow.compute as pc

    from neurotext.artifacts.patterns import read_profiles
    from neurotext.artifacts.topk import read_topk

    columns = [read_topk(topk, columns=["neuron"])["neuron"]]
    if profiles.is_file():
        columns.append(read_profiles(profiles, columns=["neuron"])["neuron"])
    return 1 + max((pc.max(c).as_py() for c in columns if len(c)), default=-1)


def load_neuron(run: str, root: Path, name: str, n_top: int, per_kind: int, per_field: int) -> NeuronView:
    """Read one neuron of the run at `root`; a `UserError` for a bad name, a missing layer or neuron."""
    import pyarrow.compute as pc

    from neurotext.artifacts.patterns import read_patterns, read_profile_metadata, read_profiles
    from neurotext.artifacts.scores import read_scores, read_summary
    from neurotext.ids import parse_neuron_name, unit_name
    from neurotext.io import read_config_hash

    try:
        layer, index = parse_neuron_name(name)
    except ValueError as error:
        raise UserError(str(error)) from None
    paths = run_paths(root)
    topk_files = paths.layers("topk", model=MODEL)
    if not topk_files:
        raise UserError(f"run {run!r} has no top-K files yet ({every_layer('topk', model=MODEL)}); run the workflow "
                        "first (snakemake --cores 2)")  # fmt: skip
    if layer not in topk_files:
        raise UserError(f"run {run!r} has no layer {layer} (layers {span_text(list(topk_files))})")
    profiles, metadata_path = paths.profiles(layer), paths.profile_metadata(layer)
    n_neurons = neuron_count(topk_files[layer], profiles)
    if not 0 <= index < n_neurons:
        raise UserError(f"{name}: layer {layer} of run {run!r} has neurons 0..{n_neurons - 1}")
    n_rows, top = top_sentences(paths, topk_files[layer], index, n_top)
    profile = read_profiles(profiles, neurons=[index]).to_pylist() if profiles.is_file() else []
    patterns = metadata = scores = None
    if paths.patterns(layer).is_file():
        kinds = pc.unique(read_patterns(paths.patterns(layer), columns=["kind"])["kind"]).to_pylist()
        patterns = grouped(read_patterns(paths.patterns(layer), neurons=[index]).to_pylist(), "kind", kinds, per_kind)
    if metadata_path.is_file():
        metadata = grouped(read_profile_metadata(metadata_path, neurons=[index]).to_pylist(), "field", (), per_field)
    explained = None
    if paths.scores(layer).is_file():
        scores = read_scores(paths.scores(layer), neurons=[index]).to_pylist()
    summary_path = paths.path("score_summary", layer=layer)
    if summary_path.is_file():
        rows = [row for row in read_summary(summary_path).to_pylist() if row["neuron"] == index]
        explained = rows[0]["summary"] if rows else None
    missing = [p.relative_to(root).as_posix() for p in (paths.patterns(layer), paths.scores(layer)) if not p.is_file()]
    config = str(read_provenance(root).get("config_hash") or read_config_hash(topk_files[layer]))
    return NeuronView(
        run=run, neuron=unit_name(layer, index, run_features(root)), layer=layer, index=index, config_hash=config,
        summary=profile[0]["summary"] if profile else None, profile=profile[0] if profile else None, n_top=n_rows,
        top=top, patterns=patterns, metadata=metadata, scores=scores, missing=missing, explained=explained,
    )  # fmt: skip


def render_scores(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Explanation scores as a table: one line per kind (and control), one column per metric, file order."""
    kinds: dict[str, dict[str, Any]] = {}
    metrics: list[str] = []
    counts: dict[str, tuple[int, int]] = {}
    for row in rows:
        kinds.setdefault(row["kind"], {})[row["metric"]] = row["value"]
        counts.setdefault(row["kind"], (row["n_pos"], row["n_neg"]))
        if row["metric"] not in metrics:
            metrics.append(row["metric"])
    if not kinds:
        return ["explanation scores: none for this neuron"]
    pos_neg = sorted(set(counts.values()))
    head = "explanation scores (predicting held-out top sentences against negatives"
    head += f"; {pos_neg[0][0]} positives, {pos_neg[0][1]} negatives)" if len(pos_neg) == 1 else ")"
    table_rows = [[kind, *(number(values.get(m), 2) for m in metrics)] for kind, values in kinds.items()]
    return [head, *table(table_rows, ["kind", *metrics])]


def render_neuron(view: NeuronView, marker: Marker, width: int) -> list[str]:
    """The text of `neurotext show`."""
    lines = [f"{view.neuron}  (run {view.run}, config {view.config_hash or '-'})"]
    if view.profile is None:
        lines.append("summary: - (patterns not computed yet)")
    else:
        status = view.profile.get("status", "ok")
        lines.append(f"summary: {clean_text(view.summary or '-')}" + ("" if status == "ok" else f" (status {status})"))
    if view.explained is not None:
        lines.append(f"explained by: {clean_text(view.explained)}")
    lines += ["", f"top sentences ({len(view.top)} of {view.n_top}; activation, dataset, max token marked)"]
    if not view.top:
        lines.append("  (none: no sentence in this neuron's top K)")
    rows = [[str(t["rank"] + 1), f"{t['activation']:.3f}", t["dataset"],
             mark_sentence(t["text"], t["char_start"], t["char_end"], marker, width)] for t in view.top]  # fmt: skip
    lines += table(rows, ["#", "act", "dataset", "sentence"])[1:] if rows else []
    if view.patterns is not None:
        lines += ["", "patterns (best first; z = log-odds against the background, top/bg = support, q = BH)"]
        for kind, kept in view.patterns.items():
            lines.append(f"  {kind}:" + ("" if kept else " -"))
            rows = [[number(r["z"]), str(r["support_top"]), str(r["support_bg"]), number(r["q"], 2),
                     clean_text(r["pattern"])] for r in kept]  # fmt: skip
            lines += table(rows, ["z", "top", "bg", "q", "pattern"], indent="    ") if rows else []
    if view.metadata:
        lines += ["", "metadata (share of the top sentences, corpus share in parentheses)"]
        width_field = max(len(f) for f in view.metadata)
        for field, kept in view.metadata.items():
            shares = " · ".join(f"{clean_text(r['value'])} {percent(r['share_top'])} ({percent(r['share_corpus'])})"
                                for r in kept)  # fmt: skip
            lines.append(f"  {field.ljust(width_field)}  {shares}")
    if view.scores is not None:
        lines += ["", *render_scores(view.scores)]
    for rel in view.missing:
        lines.append(f"\n(not yet: {rel}; {rebuild_hint(view.run, rel)})")
    return lines


def cmd_show(args: argparse.Namespace, out: TextIO) -> int:
    """`neurotext show NEURON`."""
    run, root = choose_run(results_dir(args), args.run)
    view = load_neuron(run, root, args.neuron, args.n, args.patterns, args.metadata)
    if args.json:
        print_json(vars(view), out)
    else:
        out.write("\n".join(render_neuron(view, Marker.for_stream(out), args.width)) + "\n")
    return 0
