"""Settings of pattern mining: the ``patterns`` config block as a typed, checked `PatternSettings`.

The defaults live in the config schema (workflow/schemas/config.schema.yaml) only: `neurotext.validate` fills them
into the config before any job, so ``from_config`` reads every key without a fallback (code and tests starting from
a partial block use ``neurotext.validate.with_defaults("patterns", partial)``). docs/ARCHITECTURE.md, "Pattern
mining", says what each setting does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from neurotext.config import ConfigError
from neurotext.miners import default_min_support
from neurotext.scoring import P_VALUE_KINDS

#: Word classes: (class name, its PTB tags), in the order of the profile and of Table 2.
WordClasses = tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True)
class NgramSettings:
    """Length range (items) and gap bound (tokens skipped between consecutive items; 0 = contiguous)."""

    min_len: int
    max_len: int
    max_gap: int


@dataclass(frozen=True)
class PatternSettings:
    """The ``patterns`` config block, checked (no defaults here: they are the config schema's; docs/ARCHITECTURE.md,
    "Pattern mining", explains each)."""

    neurons_per_job: int
    top_n: int
    metadata_top_n: int
    prior_weight: float
    p_value: str
    q_max: float
    min_support: int
    min_support_frac: float
    skipgrams: NgramSettings
    posgrams: NgramSettings
    subtree_min_nodes: int
    subtree_max_nodes: int
    word_classes: WordClasses

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.word_classes)

    def min_support_for(self, k: int) -> int:
        """The top-K support threshold for `k` eligible top sentences."""
        return default_min_support(k, self.min_support_frac, self.min_support)

    @classmethod
    def from_config(cls, block: Mapping[str, Any] | None) -> PatternSettings:
        """The validated, defaults-filled ``patterns`` block as settings; a wrong, unknown or missing key raises
        `ConfigError` naming it."""
        top = check_block(block, "patterns")
        skip = check_block(require(top, "skipgrams", "patterns"), "patterns.skipgrams")
        pos = check_block(require(top, "posgrams", "patterns"), "patterns.posgrams")
        sub = check_block(require(top, "subtrees", "patterns"), "patterns.subtrees")
        words = check_block(require(top, "words", "patterns"), "patterns.words")
        meta = check_block(require(top, "metadata", "patterns"), "patterns.metadata")
        settings = cls(
            neurons_per_job=check_int(top, "neurons_per_job", 1),
            top_n=check_int(top, "top_n", 1),
            metadata_top_n=check_int(meta, "top_n", 1, "patterns.metadata"),
            prior_weight=check_number(top, "prior_weight", exclusive_min=0.0),
            p_value=_choice(top, "p_value", P_VALUE_KINDS),
            q_max=check_number(top, "q_max", exclusive_min=0.0, maximum=1.0),
            min_support=check_int(top, "min_support", 1),
            min_support_frac=check_number(top, "min_support_frac", minimum=0.0, maximum=1.0),
            skipgrams=_ngrams(skip, "patterns.skipgrams", gaps=True),
            posgrams=_ngrams(pos, "patterns.posgrams", gaps=False),
            subtree_min_nodes=check_int(sub, "min_nodes", 1, "patterns.subtrees"),
            subtree_max_nodes=check_int(sub, "max_nodes", 1, "patterns.subtrees"),
            word_classes=_word_classes(require(words, "classes", "patterns.words")),
        )
        if settings.subtree_max_nodes < settings.subtree_min_nodes:
            raise ConfigError("patterns.subtrees.max_nodes must be >= patterns.subtrees.min_nodes")
        return settings


#: Keys of each config block (an unknown key is an error, so a typo never silently falls back to a default).
_KNOWN_KEYS: dict[str, frozenset[str]] = {
    "patterns": frozenset({"neurons_per_job", "top_n", "prior_weight", "p_value", "q_max", "min_support",
                           "min_support_frac", "skipgrams", "posgrams", "subtrees", "words", "metadata"}),
    "patterns.skipgrams": frozenset({"min_len", "max_len", "max_gap"}),
    "patterns.posgrams": frozenset({"min_len", "max_len"}),  # contiguous: no max_gap
    "patterns.subtrees": frozenset({"min_nodes", "max_nodes"}),
    "patterns.words": frozenset({"classes"}),
    "patterns.metadata": frozenset({"top_n"}),
}  # fmt: skip


def check_block(value: Any, prefix: str, known: frozenset[str] | None = None) -> dict[str, Any]:
    """A config block as a dict (None = empty), checked against `known` (default: `_KNOWN_KEYS[prefix]`)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{prefix} = {value!r}: give a mapping")
    known = _KNOWN_KEYS[prefix] if known is None else known
    unknown = sorted(set(value) - known)
    if unknown:
        raise ConfigError(f"{prefix}: unknown key(s) {unknown}; known keys are {sorted(known)}")
    return dict(value)


def require(block: Mapping[str, Any], key: str, prefix: str) -> Any:
    """``block[key]``; a missing key raises `ConfigError` naming it (the schema fills every default, so a missing key
    means the block did not go through `neurotext.validate`: build partial blocks with
    ``neurotext.validate.with_defaults``)."""
    if key not in block:
        raise ConfigError(
            f"config key `{prefix}.{key}` is missing: the config schema fills its default, so this block was not "
            f"validated (pass the config through neurotext.validate.check_config, or build a partial block with "
            f"neurotext.validate.with_defaults)"
        )
    return block[key]


def check_int(block: Mapping[str, Any], key: str, minimum: int, prefix: str = "patterns") -> int:
    """The integer ``block[key]`` (>= `minimum`); `prefix` names the block in errors."""
    value = require(block, key, prefix)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{prefix}.{key} = {value!r}: give an integer >= {minimum}")
    return int(value)


def check_number(
    block: Mapping[str, Any],
    key: str,
    *,
    minimum: float | None = None,
    exclusive_min: float | None = None,
    maximum: float | None = None,
) -> float:
    """A finite number of the ``patterns`` block within the given bounds."""
    value = require(block, key, "patterns")
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    ok = ok and (minimum is None or value >= minimum) and (exclusive_min is None or value > exclusive_min)
    ok = ok and (maximum is None or value <= maximum)
    if not ok:
        bounds = [f"{op} {bound}" for op, bound in ((">=", minimum), (">", exclusive_min), ("<=", maximum))
                  if bound is not None]  # fmt: skip
        raise ConfigError(f"patterns.{key} = {value!r}: give a number {' and '.join(bounds)}")
    return float(value)


def _choice(block: Mapping[str, Any], key: str, choices: Sequence[str]) -> str:
    value = require(block, key, "patterns")
    if value not in choices:
        raise ConfigError(f"patterns.{key} = {value!r}: choose one of {', '.join(choices)}")
    return str(value)


def _ngrams(block: Mapping[str, Any], prefix: str, *, gaps: bool) -> NgramSettings:
    """Skip-grams (`gaps`: ``max_gap`` read) or contiguous n-grams (max_gap 0: the block has no such key)."""
    min_len = check_int(block, "min_len", 1, prefix)
    max_len = check_int(block, "max_len", 1, prefix)
    if max_len < min_len:
        raise ConfigError(f"{prefix}.max_len ({max_len}) must be >= {prefix}.min_len ({min_len})")
    return NgramSettings(min_len, max_len, check_int(block, "max_gap", 0, prefix) if gaps else 0)


def _word_classes(value: Any) -> WordClasses:
    if not isinstance(value, Mapping) or not value:
        raise ConfigError("patterns.words.classes: give a mapping of class name to a list of PTB tags")
    classes = []
    for name, tags in value.items():
        if not isinstance(name, str) or not name or ":" in name:
            raise ConfigError(f"patterns.words.classes: class name {name!r} must be a non-empty string without ':'")
        if not isinstance(tags, list) or not tags or not all(isinstance(t, str) and t for t in tags):
            raise ConfigError(f"patterns.words.classes.{name} = {tags!r}: give a non-empty list of PTB tags")
        classes.append((name, tuple(tags)))
    return tuple(classes)
