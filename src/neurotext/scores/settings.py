"""The ``scores`` config block (defaults: the config schema's; the dataclass defaults mirror them for code that builds
settings directly)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from neurotext.config import ConfigError

_KNOWN = frozenset({"explain_fraction", "seed", "negatives", "negatives_seed", "patterns", "top_n",
                    "derangement_seed", "length_matched", "bow", "keep_predictions"})  # fmt: skip
_KNOWN_BOW = frozenset({"c", "max_iter"})


def _get(block: Mapping[str, Any], key: str, prefix: str = "scores") -> Any:
    """``block[key]``; a missing key is an error naming it (the config schema fills every default: build partial
    blocks with ``neurotext.validate.with_defaults("scores", ...)``)."""
    if key not in block:
        raise ConfigError(f"config key `{prefix}.{key}` is missing: the config schema fills its default, so this block "
                          "was not validated (use neurotext.validate.check_config or with_defaults)")  # fmt: skip
    return block[key]


def _int(block: Mapping[str, Any], key: str, minimum: int, prefix: str = "scores") -> int:
    value = _get(block, key, prefix)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{prefix}.{key} = {value!r}: give an integer >= {minimum}")
    return int(value)


def _bool(block: Mapping[str, Any], key: str) -> bool:
    value = _get(block, key)
    if not isinstance(value, bool):
        raise ConfigError(f"scores.{key} = {value!r}: give true or false")
    return value


def _block(value: Any, prefix: str, known: frozenset[str]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{prefix} = {value!r}: give a mapping")
    unknown = sorted(set(value) - known)
    if unknown:
        raise ConfigError(f"{prefix}: unknown key(s) {unknown}; known keys are {sorted(known)}")
    return dict(value)


@dataclass(frozen=True)
class ScoreSettings:
    """How explanations are scored (the README's "Explanation scores" section).

    explain_fraction: share of each neuron's top K the patterns are re-mined on (the rest is the test part);
    seed: of the explain/test split (splitmix64(sentence_id ^ seed)); negatives / negatives_seed: size and seed of
    the second random sample; patterns: which explain-part patterns enter a prediction (``top``: the `top_n` with
    the largest z; ``significant``: those with q < patterns.q_max, at most `top_n`); derangement_seed: of the
    derangement control; length_matched: draw each neuron's negatives to match its positives' lengths;
    bow_c / bow_max_iter: the bag-of-words logistic regression's inverse L2 strength and iteration cap;
    keep_predictions: also write every evaluated sentence's predictions.
    """

    explain_fraction: float = 0.8
    seed: int = 0
    negatives: int = 1000
    negatives_seed: int = 20261207
    patterns: str = "top"
    top_n: int = 20
    derangement_seed: int = 0
    length_matched: bool = False
    bow_c: float = 1.0
    bow_max_iter: int = 100
    keep_predictions: bool = False

    @classmethod
    def from_config(cls, block: Mapping[str, Any] | None) -> ScoreSettings:
        """The validated, defaults-filled ``scores`` block as settings; a wrong, unknown or missing key raises
        `ConfigError` naming it."""
        top = _block(block, "scores", _KNOWN)
        bow = _block(_get(top, "bow"), "scores.bow", _KNOWN_BOW)
        fraction = _get(top, "explain_fraction")
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
            raise ConfigError(f"scores.explain_fraction = {fraction!r}: give a number strictly between 0 and 1")
        patterns = _get(top, "patterns")
        if patterns not in ("top", "significant"):
            raise ConfigError(f"scores.patterns = {patterns!r}: choose top or significant")
        c = _get(bow, "c", "scores.bow")
        if isinstance(c, bool) or not isinstance(c, (int, float)) or not math.isfinite(c) or c <= 0:
            raise ConfigError(f"scores.bow.c = {c!r}: give a number > 0")
        return cls(
            explain_fraction=float(fraction),
            seed=_int(top, "seed", 0),
            negatives=_int(top, "negatives", 1),
            negatives_seed=_int(top, "negatives_seed", 0),
            patterns=str(patterns),
            top_n=_int(top, "top_n", 1),
            derangement_seed=_int(top, "derangement_seed", 0),
            length_matched=_bool(top, "length_matched"),
            bow_c=float(c),
            bow_max_iter=_int(bow, "max_iter", 1, "scores.bow"),
            keep_predictions=_bool(top, "keep_predictions"),
        )
