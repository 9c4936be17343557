"""The ``browser`` config block validated into `BrowserSettings` (display limits only: what the browser shows of
each neuron's sentences, histogram and quantile samples is what the records stage computed, under ``records``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from neurotext.config import ConfigError


@dataclass(frozen=True)
class BrowserSettings:
    """The ``browser`` config block (the defaults are the config schema's only; a config that went through
    `neurotext.validate` holds every key, a partial block is built with ``neurotext.validate.with_defaults``).

    top_sentences: top sentences shown per neuron (capped by what the records, ``records.top_n``, or the top K hold).
    patterns_per_kind: rows per pattern kind on a neuron page (words: per word class).
    index_patterns: patterns per kind kept in the index (searchable; the first few are shown).
    metadata_values: values per metadata field on a neuron page.
    cluster_mates: cluster mates linked per neuron (nearest to the cluster centre first).
    overlap_partners: most-overlapping neurons linked per neuron and partner layer.
    top_tokens: most frequent max-activating tokens listed per neuron.
    """

    top_sentences: int
    patterns_per_kind: int
    index_patterns: int
    metadata_values: int
    cluster_mates: int
    overlap_partners: int
    top_tokens: int

    @classmethod
    def from_config(cls, block: Mapping[str, Any] | None) -> BrowserSettings:
        """Validate the ``browser`` config block; a wrong or unknown key raises `ConfigError` naming it."""
        if block is not None and not isinstance(block, Mapping):
            raise ConfigError(f"browser = {block!r}: give a mapping of browser settings")
        block = dict(block or {})
        known = {f.name for f in cls.__dataclass_fields__.values()}  # type: ignore[attr-defined]
        unknown = sorted(set(block) - known)
        if unknown:
            moved = {"quantiles": "records.bands", "quantile_samples": "records.per_band",
                     "histogram_bins": "records.histogram.bins"}  # fmt: skip
            hint = f" (the browser shows the records stage's: set {moved[unknown[0]]})" if unknown[0] in moved else ""
            raise ConfigError(
                f"browser.{unknown[0]}: unknown key{hint}; known keys are {', '.join(sorted(known))}"
            )
        values: dict[str, Any] = {}
        for name in sorted(known):
            if name not in block:
                raise ConfigError(
                    f"config key `browser.{name}` is missing: the config schema fills its default, so this block "
                    "was not validated (use neurotext.validate.check_config, or with_defaults for a partial block)"
                )
            value = block[name]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"browser.{name} = {value!r}: give an integer >= 0")
            values[name] = value
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))
