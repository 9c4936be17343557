"""Sentence cleaning (the paper's preprocessing) and NLTK Punkt helpers shared by the corpus stage.

Cleaning, in this order (each step keeps the result of the previous one clean, so cleaning is idempotent):

1. `sanitize` (the one rule for invisible characters, applied to text AND to every metadata value): control
   characters and line/paragraph separators (categories Cc, Zl, Zp: NUL, TAB, CR, LF, U+0085, U+2028 ...) become
   spaces; format characters (Cf: soft hyphen, zero-width space, byte-order mark and the bidirectional controls
   U+200E/F, U+202A-202E, U+2066-2069 ...) are removed. Then (text only) Unicode NFC.
2. Every run of whitespace becomes one space; leading and trailing whitespace is removed.
3. Symbol runs (symbols of ``COLLAPSE_SYMBOLS``), by `corpus.clean.symbol_collapse`:

   - ``same`` (default): a run of one repeated symbol becomes that symbol, except an ellipsis of exactly three dots,
     which stays; distinct neighbouring symbols stay: ``"Wow!!!"`` -> ``"Wow!"``, ``"a -- b"`` -> ``"a - b"``,
     ``"....."`` -> ``"."``, ``"it... and"`` and ``"(MRI), and"`` and ``"what?!"`` unchanged.
   - ``any`` (the rule of earlier releases): every run of symbols, mixed or not, becomes its first symbol:
     ``"what?!"`` -> ``"what?"``, ``"(MRI), and"`` -> ``"(MRI) and"``, ``"it... and"`` -> ``"it. and"``.
   - ``none``: symbols are left as they are.

A cleaned sentence is then dropped when it is too short (``min_chars`` characters or ``min_words`` words), too long
(``max_chars``) or symbol-heavy (``max_symbol_ratio``). Punkt parameters are stored as JSON, never pickled.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # nltk takes seconds to import: only the jobs that split sentences load it
    from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer

#: The symbols whose runs collapse to one (docs/ARCHITECTURE.md, "Corpus").
COLLAPSE_SYMBOLS = "!@#$%&*()+-=[]{};:?,.`"
_COLLAPSE_ANY = re.compile("([" + re.escape(COLLAPSE_SYMBOLS) + "])[" + re.escape(COLLAPSE_SYMBOLS) + "]+")
_COLLAPSE_SAME = re.compile("([" + re.escape(COLLAPSE_SYMBOLS) + r"])\1+")
#: The one run of a repeated symbol that `same` keeps as it is.
ELLIPSIS = "..."
#: Values of `corpus.clean.symbol_collapse` (see the module docstring).
SYMBOL_COLLAPSE_CHOICES = ("same", "any", "none")
_WHITESPACE_RUN = re.compile(r"\s+")
_SPACE_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})
_REMOVED_CATEGORY = "Cf"
_PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n\s*")

#: Reasons a sentence is dropped, as counted in the corpus stage's logs and file metadata.
DROP_REASONS = ("empty", "short_chars", "short_words", "long_chars", "symbols")

PUNKT_FORMAT = "neurotext-punkt-1"


@dataclass(frozen=True)
class CleanConfig:
    """Thresholds of `corpus.clean`: lengths in characters (after cleaning), words are whitespace tokens holding a
    letter or digit, the symbol ratio is the share of non-space characters that are neither letters nor digits.
    """

    symbol_collapse: str = "same"
    min_chars: int = 10
    min_words: int = 3
    max_chars: int = 1000
    max_symbol_ratio: float = 0.3

    @classmethod
    def from_config(cls, clean: dict[str, Any] | None) -> CleanConfig:
        """Build from the `corpus.clean` block; a wrong value raises ValueError naming its key."""
        clean = dict(clean or {})
        if "collapse_symbols" in clean:  # the boolean of earlier releases: true = any, false = none
            legacy = clean.pop("collapse_symbols")
            if legacy is not None and clean.get("symbol_collapse") is None:
                clean["symbol_collapse"] = "any" if legacy else "none"
        unknown = sorted(set(clean) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(
                f"corpus.clean: unknown key(s) {', '.join(unknown)}; known: " f"{', '.join(cls.__dataclass_fields__)}"
            )
        values: dict[str, Any] = {}
        for name, spec in cls.__dataclass_fields__.items():
            if name not in clean or clean[name] is None:
                continue
            value = clean[name]
            try:
                values[name] = type(spec.default)(value)
            except (TypeError, ValueError):
                raise ValueError(f"corpus.clean.{name} = {value!r}: expected a {spec.type}") from None
            if name == "symbol_collapse":
                if value not in SYMBOL_COLLAPSE_CHOICES:
                    raise ValueError(
                        f"corpus.clean.symbol_collapse = {value!r}: use one of {', '.join(SYMBOL_COLLAPSE_CHOICES)}"
                    )
            elif values[name] < 0:
                raise ValueError(f"corpus.clean.{name} = {value!r}: must not be negative")
        return cls(**values)


def sanitize(text: str) -> str:
    """Step 1 of the module docstring, the rule shared by sentence text and metadata: control characters and
    line/paragraph separators become spaces, format characters (bidirectional controls included) are removed.
    """
    if text.isprintable():  # fast path: printable text holds none of them (every Cc/Cf/Zl/Zp is unprintable)
        return text
    return "".join(_replace_invisible(char) for char in text)


def collapse_symbol_runs(text: str, rule: str = "same") -> str:
    """Step 3 of the module docstring for `rule` (one of SYMBOL_COLLAPSE_CHOICES)."""
    if rule == "same":
        return _COLLAPSE_SAME.sub(_collapse_same_run, text)
    if rule == "any":
        return _COLLAPSE_ANY.sub(r"\1", text)
    if rule == "none":
        return text
    raise ValueError(f"corpus.clean.symbol_collapse = {rule!r}: use one of {', '.join(SYMBOL_COLLAPSE_CHOICES)}")


def _replace_invisible(char: str) -> str:
    category = unicodedata.category(char)
    if category in _SPACE_CATEGORIES:
        return " "
    return "" if category == _REMOVED_CATEGORY else char


def _collapse_same_run(match: re.Match[str]) -> str:
    run = match.group(0)
    return run if run == ELLIPSIS else match.group(1)


def normalize_text(text: str, symbol_collapse: str = "same") -> str:
    """Steps 1-3 of the module docstring: `sanitize`, NFC, whitespace runs to one space, symbol runs collapsed by
    `symbol_collapse`. Idempotent."""
    text = unicodedata.normalize("NFC", sanitize(text))
    text = _WHITESPACE_RUN.sub(" ", text).strip()
    return collapse_symbol_runs(text, symbol_collapse)


def count_words(text: str) -> int:
    """Whitespace-separated tokens that contain at least one letter or digit."""
    return sum(1 for token in text.split() if any(char.isalnum() for char in token))


def symbol_ratio(text: str) -> float:
    """Share of non-whitespace characters that are neither letters nor digits (0.0 for an empty text)."""
    visible = [char for char in text if not char.isspace()]
    if not visible:
        return 0.0
    return sum(1 for char in visible if not char.isalnum()) / len(visible)


def drop_reason(text: str, config: CleanConfig) -> str | None:
    """Why the cleaned `text` is dropped (one of DROP_REASONS), or None when it is kept."""
    if not text:
        return "empty"
    if len(text) < config.min_chars:
        return "short_chars"
    if len(text) > config.max_chars:
        return "long_chars"
    if count_words(text) < config.min_words:
        return "short_words"
    if symbol_ratio(text) > config.max_symbol_ratio:
        return "symbols"
    return None


def clean_sentence(text: str, config: CleanConfig) -> tuple[str, str | None]:
    """Clean one sentence; return (cleaned text, drop reason or None when kept)."""
    cleaned = normalize_text(text, config.symbol_collapse)
    return cleaned, drop_reason(cleaned, config)


# --- Punkt -----------------------------------------------------------------------------------------------------


def train_punkt_parameters(texts: Iterable[str]) -> PunktParameters:
    """Train Punkt parameters unsupervised on `texts` (each a document; order matters for determinism)."""
    from nltk.tokenize.punkt import PunktTrainer

    trainer = PunktTrainer()
    for text in texts:
        if text.strip():
            trainer.train(text, finalize=False)
    trainer.finalize_training()
    return trainer.get_params()


def pretrained_punkt_parameters(language: str = "english") -> PunktParameters | None:
    """The pretrained Punkt parameters of NLTK's `punkt_tab` data for `language`, or None when not installed."""
    from nltk.tokenize.punkt import PunktTokenizer

    try:
        return PunktTokenizer(language)._params
    except (LookupError, OSError, ValueError):
        return None


def punkt_parameters_to_json(params: PunktParameters, origin: str, **info: Any) -> dict[str, Any]:
    """A JSON-ready dict of `params` with sorted lists (same parameters, same bytes); `info` is stored as is."""
    return {
        "format": PUNKT_FORMAT,
        "origin": origin,
        "info": info,
        "abbrev_types": sorted(params.abbrev_types),
        "collocations": sorted([list(pair) for pair in params.collocations]),
        "sent_starters": sorted(params.sent_starters),
        "ortho_context": {word: int(flags) for word, flags in sorted(params.ortho_context.items()) if flags},
    }


def punkt_parameters_from_json(data: dict[str, Any], where: str = "<punkt json>") -> PunktParameters:
    """Inverse of `punkt_parameters_to_json`; a wrong file raises ValueError naming `where`."""
    if not isinstance(data, dict) or data.get("format") != PUNKT_FORMAT:
        raise ValueError(
            f"{where}: not a neurotext Punkt parameter file (format {PUNKT_FORMAT}); delete it and "
            "rerun the train_punkt rule"
        )
    from nltk.tokenize.punkt import PunktParameters

    params = PunktParameters()
    params.abbrev_types = set(data["abbrev_types"])
    params.collocations = {tuple(pair) for pair in data["collocations"]}
    params.sent_starters = set(data["sent_starters"])
    for word, flags in data["ortho_context"].items():
        params.ortho_context[word] = int(flags)
    return params


def load_punkt(path: str | os.PathLike[str]) -> PunktSentenceTokenizer:
    """A sentence tokenizer from a Punkt JSON file written by the corpus stage."""
    from nltk.tokenize.punkt import PunktSentenceTokenizer

    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(
            f"{path}: cannot read the Punkt parameters ({error}); delete it and rerun train_punkt"
        ) from None
    return PunktSentenceTokenizer(punkt_parameters_from_json(data, str(path)))


def split_sentences(tokenizer: PunktSentenceTokenizer, text: str) -> list[str]:
    """Split raw `text` into sentences: paragraphs (blank-line separated) first, then Punkt within each."""
    sentences: list[str] = []
    for paragraph in _PARAGRAPH_BREAK.split(text):
        if paragraph.strip():
            sentences.extend(tokenizer.tokenize(paragraph))
    return sentences
