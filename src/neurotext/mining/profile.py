"""One neuron explained: its kept patterns per kind, its metadata rows and its profile row with a one-line summary.

`profile_neuron` works on rows of an `EncodedSentences`; `mine_neuron` takes sentence ids, so a caller can mine any
subset of a neuron's top sentences against any background (`Background.build` / `Background.of_ids`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from neurotext.artifacts.patterns import FieldCounts
from neurotext.mining.candidates import PATTERN_KINDS, TopRows, neuron_candidates
from neurotext.mining.encode import Background, EncodedSentences
from neurotext.mining.metadata import dominant_domain, metadata_rows
from neurotext.mining.rank import PatternRows, score_candidates
from neurotext.mining.settings import PatternSettings

STATUS_OK = "ok"
STATUS_TOO_FEW = "too_few_top_sentences"


@dataclass
class NeuronProfile:
    """Everything the stage writes for one neuron: kept patterns per kind, metadata rows, the profile row."""

    neuron: int
    patterns: dict[str, PatternRows]
    metadata: list[dict[str, Any]]
    row: dict[str, Any]


def _share(part: int, whole: int) -> float:
    return part / whole if whole else math.nan


def _best_significant(rows: PatternRows, q_max: float) -> tuple[str, float] | None:
    """The first kept pattern (best z) with q < q_max, as (pattern, z)."""
    for pattern, z, q in zip(rows.pattern, rows.z, rows.q, strict=True):
        if q < q_max:
            return pattern, z
    return None


def summarize(
    patterns: Mapping[str, PatternRows], dominant_domain: str | None, domain_share: float, q_max: float
) -> str:
    """One line from the strongest patterns: ``wiki 89% · "competed Olympics" · (VBD (NN)) · Olympics``.

    Parts: the dominant domain and its share of the top K; the best significant (q < `q_max`) skip-n-gram (quoted);
    the better (by z) of the best significant subtree and POS n-gram (``[IN DT CD]``); the best significant word.
    """
    parts = []
    if dominant_domain is not None:
        parts.append(f"{dominant_domain} {round(100 * domain_share)}%")
    skip = _best_significant(patterns["skipgrams"], q_max)
    if skip:
        parts.append(f'"{skip[0]}"')
    tree = _best_significant(patterns["subtrees"], q_max)
    posgram = _best_significant(patterns["posgrams"], q_max)
    if posgram:
        posgram = (f"[{posgram[0]}]", posgram[1])
    syntax = max((x for x in (tree, posgram) if x), key=lambda x: x[1], default=None)
    if syntax:
        parts.append(syntax[0])
    word = _best_significant(patterns["words"], q_max)
    if word:
        parts.append(word[0].split(":", 1)[1])
    if not (skip or syntax or word):
        parts.append("no significant pattern")
    return " · ".join(parts)


def profile_neuron(
    enc: EncodedSentences, bg: Background, neuron: int, top_rows: np.ndarray,
    corpus_counts: Mapping[str, FieldCounts], settings: PatternSettings,
) -> NeuronProfile:  # fmt: skip
    """Patterns, metadata and profile row of one neuron whose top sentences are the rows `top_rows` of `enc`.

    A neuron with fewer than ``settings.min_support`` top sentences gets an empty profile (status
    ``too_few_top_sentences``), not an error.
    """
    top = TopRows.split(enc, bg, top_rows)
    n_top = int(top.all.size)
    enough = n_top >= settings.min_support
    if enough:
        kept, n_significant = score_candidates(neuron_candidates(enc, bg, top, settings), settings)
        metadata = metadata_rows(enc, top.all, corpus_counts, neuron, settings)
    else:
        kept, n_significant, metadata = {kind: PatternRows() for kind in PATTERN_KINDS}, 0, []
    domain, domain_share, domain_corpus_share = dominant_domain(metadata)
    if enough:
        summary = summarize(kept, domain, domain_share, settings.q_max)
    else:
        summary = f"too few top sentences ({n_top} < {settings.min_support})"
    n_tokens = int(enc.token_counts[top.parsed].sum())
    n_tokens_bg = int(enc.token_counts[bg.parsed_rows].sum())
    n_sample = int(bg.member.sum()) - int(bg.member[top.all].sum())
    row: dict[str, Any] = {
        "neuron": neuron, "summary": summary, "status": STATUS_OK if enough else STATUS_TOO_FEW,
        "n_top": n_top, "n_top_tokenized": int(top.tokenized.size), "n_top_parsed": int(top.parsed.size),
        "n_top_unparsed": n_top - int(top.parsed.size), "n_background": top.n_bg_tokenized,
        "n_background_parsed": top.n_bg_parsed, "n_background_unparsed": n_sample - top.n_bg_parsed,
        "min_support": settings.min_support_for(n_top),
        "n_patterns": sum(len(rows) for rows in kept.values()), "n_significant": n_significant,
        "dominant_domain": domain, "dominant_domain_share": domain_share,
        "dominant_domain_corpus_share": domain_corpus_share,
    }  # fmt: skip
    for name in settings.class_names:
        counts = enc.class_counts[name]
        row[f"{name}_share"] = _share(int(counts[top.parsed].sum()), n_tokens)
        row[f"{name}_share_background"] = _share(int(counts[bg.parsed_rows].sum()), n_tokens_bg)
    return NeuronProfile(neuron, kept, metadata, row)


def mine_neuron(
    enc: EncodedSentences, bg: Background, top_ids: np.ndarray, corpus_counts: Mapping[str, FieldCounts],
    settings: PatternSettings, neuron: int = 0,
) -> NeuronProfile:  # fmt: skip
    """`profile_neuron` for the top sentence ids `top_ids` (uint32; each must be a row of `enc`, e.g. any subset of
    the neuron's top K), against the background `bg`. `neuron` only labels the rows."""
    return profile_neuron(enc, bg, neuron, enc.rows_of(top_ids), corpus_counts, settings)
