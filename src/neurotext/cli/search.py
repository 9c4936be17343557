"""`neurotext search WORD`: the neurons whose kept patterns contain a word, or whose top sentences peak on it."""

from __future__ import annotations

import argparse
import math
import re
from dataclasses import dataclass
from typing import Any, TextIO

from neurotext.cli.runs import MODEL, UserError, choose_run, every_layer, results_dir, run_features, run_paths
from neurotext.cli.show import sentences_of
from neurotext.cli.text import clean_text, number, print_json, span_text, table


def word_pattern(word: str) -> re.Pattern[str]:
    """A case-insensitive regex matching `word` (a word or phrase) as whole words."""
    return re.compile(r"(?<!\w)" + re.escape(" ".join(word.split())) + r"(?!\w)", re.IGNORECASE)


def pattern_items(kind: str, pattern: str) -> str:
    """The searchable text of a pattern: a word pattern without its class prefix (``noun:Olympics`` -> Olympics)."""
    return pattern.split(":", 1)[1] if kind == "words" and ":" in pattern else pattern


def enclosing_word(text: str, start: int, end: int) -> str:
    """The word around characters [start, end) of `text` (the span grown over word characters on both sides), so
    a subword token (``Olymp`` of ``Olympics``) is found by its word; '' for an empty or out-of-range span."""
    if not 0 <= start < end <= len(text):
        return ""
    while start > 0 and text[start - 1].isalnum():
        start -= 1
    while end < len(text) and text[end].isalnum():
        end += 1
    return text[start:end].strip()


@dataclass
class SearchHit:
    """One neuron matching a search word."""

    neuron: str
    layer: int
    index: int
    token_hits: int  # of its first `top` top sentences, those whose max token (or the word holding it) is the word
    n_top: int  # top sentences considered
    patterns: list[dict[str, Any]]  # matching kept patterns: kind, pattern, z, q, support_top
    summary: str | None

    def key(self) -> tuple[float, float, int, int]:
        best = max((p["z"] for p in self.patterns), default=-math.inf)
        return (-self.token_hits, -best, self.layer, self.index)


def search_layer(paths: Any, layer: int, matcher: re.Pattern[str], word: str, top: int) -> list[SearchHit]:
    """The neurons of one layer whose kept patterns or max tokens (first `top` top sentences) match."""
    from neurotext.artifacts.patterns import read_patterns, read_profiles
    from neurotext.artifacts.topk import read_topk
    from neurotext.ids import unit_name

    by_neuron: dict[int, list[dict[str, Any]]] = {}
    if paths.patterns(layer).is_file():
        columns = ["kind", "neuron", "pattern", "z", "q", "support_top"]
        for row in read_patterns(paths.patterns(layer), columns=columns).to_pylist():
            if matcher.search(pattern_items(row["kind"], row["pattern"])):
                by_neuron.setdefault(row.pop("neuron"), []).append(row)
    columns = ["neuron", "sentence_id", "char_start", "char_end"]
    rows = read_topk(paths.topk(MODEL, layer), max_rank=top, columns=columns).to_pylist()
    texts = sentences_of(paths, [r["sentence_id"] for r in rows])
    target = " ".join(word.split()).casefold()
    hits: dict[int, int] = {}
    considered: dict[int, int] = {}
    for row in rows:
        considered[row["neuron"]] = considered.get(row["neuron"], 0) + 1
        text = texts.get(row["sentence_id"], ("", ""))[1]
        token = text[row["char_start"] : row["char_end"]].strip().casefold()
        if token and target in (token, enclosing_word(text, row["char_start"], row["char_end"]).casefold()):
            hits[row["neuron"]] = hits.get(row["neuron"], 0) + 1
    summaries = {}
    if paths.profiles(layer).is_file():
        profile = read_profiles(paths.profiles(layer), columns=["neuron", "summary"])
        summaries = dict(zip(profile["neuron"].to_pylist(), profile["summary"].to_pylist(), strict=True))
    features = run_features(paths.root)
    return [SearchHit(unit_name(layer, n, features), layer, n, hits.get(n, 0), considered.get(n, 0),
                      by_neuron.get(n, []), summaries.get(n))
            for n in sorted(set(hits) | set(by_neuron))]  # fmt: skip


def cmd_search(args: argparse.Namespace, out: TextIO) -> int:
    """`neurotext search WORD`."""
    run, root = choose_run(results_dir(args), args.run)
    if not args.word.strip():
        raise UserError("WORD is empty; give a word or phrase, e.g. neurotext search Olympics")
    paths = run_paths(root)
    topk_files = paths.layers("topk", model=MODEL)
    with_patterns = paths.layers("patterns")
    if not with_patterns:
        raise UserError(f"run {run!r} has no patterns yet ({every_layer('patterns')}); run the workflow first "
                        "(snakemake --cores 2), then search again")  # fmt: skip
    layers = sorted(set(args.layer or topk_files))
    unknown = [layer for layer in layers if layer not in topk_files]
    if unknown:
        raise UserError(f"run {run!r} has no layer {unknown[0]} (layers {span_text(list(topk_files))})")
    matcher = word_pattern(args.word)
    hits: list[SearchHit] = []
    for layer in layers:
        hits += search_layer(paths, layer, matcher, args.word, args.top)
    hits.sort(key=SearchHit.key)
    without = [layer for layer in layers if layer not in with_patterns]
    if args.json:
        print_json({"run": run, "word": args.word, "layers": layers, "layers_without_patterns": without,
                    "top_sentences": args.top, "n_matches": len(hits), "matches": [vars(h) for h in hits[: args.n]]},
                   out)  # fmt: skip
        return 0
    lines = [f"{len(hits)} neuron(s) of run {run} match {args.word!r} (layers {span_text(layers)}; "
             f"max tokens of the first {args.top} top sentences, kept patterns)"]  # fmt: skip
    if without:
        layers_word = "layers" if len(without) > 1 else "layer"
        lines.append(f"(patterns not computed yet for {layers_word} {span_text(without)}: top tokens only there)")
    rows = []
    for hit in hits[: args.n]:
        best = max(hit.patterns, key=lambda p: p["z"], default=None)
        shown = f"{best['kind']}: {clean_text(best['pattern'])} (z {number(best['z'])})" if best else "-"
        more = f" +{len(hit.patterns) - 1}" if len(hit.patterns) > 1 else ""
        rows.append([hit.neuron, f"{hit.token_hits}/{hit.n_top}", shown + more, clean_text(hit.summary or "-")])
    if rows:
        lines += ["", *table(rows, ["neuron", "tokens", "best pattern", "summary"], indent="")]
    if len(hits) > args.n:
        lines.append(f"... {len(hits) - args.n} more (-n {len(hits)} lists all)")
    out.write("\n".join(lines) + "\n")
    return 0
