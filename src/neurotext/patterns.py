"""Patterns stage (the paper's step 3): each neuron's top sentences abstracted into frequent words by POS class,
skip-n-grams, POS n-grams, parse subtrees and metadata, each contrasted with the background, plus a one-line summary;
Table 2 and Figure 1.

Files (all under ``results/{run}/``; DESIGN.md section 2):

* ``patterns/corpus_metadata.parquet`` (`CORPUS_METADATA_SCHEMA`, `count_corpus_metadata`): the exact count of every
  metadata value over the whole corpus (the corpus share of Figure 1 and of the metadata scores).
* ``patterns/sentences/layer{L}.parquet`` (`SENTENCES_SCHEMA`, `gather_sentences`): tokens, tags, tree and metadata of
  every sentence in the layer's top K or in the sample, gathered once per layer from the parse shards and the corpus,
  so the range jobs never scan every parse file.
* ``patterns/{kind}/layer{L}/n{start:05d}-{end:05d}.parquet`` (`profile_range`): neurons ``start <= n < end`` (end
  exclusive); kinds ``words``, ``skipgrams``, ``posgrams``, ``subtrees`` in `formats.PATTERNS_SCHEMA`, ``metadata``
  in `METADATA_SCHEMA`, and ``profile`` (one row per neuron, `profile_schema`).
* ``patterns/layer{L}.parquet`` (`merge_layer`): the four pattern kinds of the layer with a ``kind`` column first;
  ``profiles/layer{L}.parquet``: the profiles; ``profiles/metadata/layer{L}.parquet``: the metadata rows.
* ``tables/table2.{md,csv}`` (`write_table2`), ``figures/fig1.{png,pdf}`` (`write_figure1`).

What is counted (``a`` of ``K`` top sentences against ``b`` of ``N`` background sentences, `neurotext.scoring`):

* Top K: the neuron's rows in ``topk/base/layer{L}.parquet``. Background: the sample (``sample/sentences.parquet``,
  DESIGN.md section 2) *minus the neuron's own top sentences*: a top sentence that is also in the sample counts once,
  in the top group, so the two groups are disjoint and Fisher's test applies (background support = support in the
  sample - support in the overlap, both from the miners' background counter).
* Eligibility: skip-n-grams use every sentence with tokens; words (they need tags), POS n-grams and subtrees only
  parsed sentences (``parsed`` true in the parse files). ``K`` and ``N`` are the eligible counts of each kind; the
  profile records how many top and background sentences were left out as unparsed.
* Words: a word (case-sensitive, as the parser split it) counts in a sentence when it occurs there with a tag of
  its class (`PatternSettings.word_classes`, PTB tags); pattern string ``class:word``, e.g. ``noun:Olympics``.
  Skip-n-grams: ``is going be`` (items joined by a space, at most ``max_gap`` tokens skipped between two, DESIGN.md
  section 4); POS n-grams: ``IN DT CD`` (contiguous); subtrees: ``(VBD (PRP) (NN))`` (labels-only, FREQT).
* Minimum support in the top K: ``max(min_support, ceil(min_support_frac * K))`` per kind. A neuron with fewer top
  sentences than ``min_support`` gets an empty profile (status ``too_few_top_sentences``), never an error.
* Closed: a skip-n-gram or POS n-gram is dropped when a one-item extension has the same top-K support (the miners'
  ``closed=True``); a subtree when a one-node extension (a new leaf, or a new root above it) has the same top-K
  support (`closed_subtree_mask`). Patterns of the maximum size are kept (their extensions are not mined).
* Scores (`neurotext.scoring`): z (log-odds, informative Dirichlet prior), lift, one-sided Fisher p (selective by
  default), Benjamini-Hochberg q over one family per neuron: all its word, skip-n-gram, POS n-gram and subtree
  candidates together. Kept: candidates with z > 0, the significant ones (q < ``q_max``) first, each group ranked
  by z (ties: more top support, then the pattern string), the first ``top_n`` per kind (per word class for words).
  Significance first because the z of `neurotext.scoring` (a prior as large as the data, which keeps z monotone)
  ranks a pattern in 3 of 100 top sentences and none of the sample (z = 1.9, selective p = 1) above one in 20 of 100
  against 150 of 2,000 (z = 1.2, p = 9e-5); the first is chance, the second is what the neuron responds to.
* Metadata: per field of `formats.METADATA_FIELDS`, each value's count among the top sentences where the field is set
  against its count in the rest of the corpus (corpus count - top count) with the same z and p (min support 1), BH
  over the neuron's values; per field the ``metadata_top_n`` most frequent values are kept and the most frequent one
  (ties: smaller value) is flagged ``dominant``.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from neurotext.config import ConfigError
from neurotext.formats import METADATA_FIELDS, PATTERNS_SCHEMA, neuron_name, parse_neuron_name
from neurotext.io import atomic_output, write_parquet, write_text
from neurotext.logs import progress
from neurotext.miners import (
    SequenceDB,
    SequenceIndex,
    TreeDB,
    TreeIndex,
    Vocab,
    count_skipgrams,
    count_subtrees,
    default_min_support,
    frequent_items,
    mine_skipgrams,
    mine_subtrees,
)
from neurotext.scoring import DEFAULT_PRIOR_WEIGHT, P_VALUE_KINDS, closed_subtree_mask, score_counts

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]

#: The pattern kinds in `formats.PATTERNS_SCHEMA`, in the order of the profile and of Table 2.
PATTERN_KINDS: tuple[str, ...] = ("words", "skipgrams", "posgrams", "subtrees")
#: Every per-range output: the pattern kinds, the metadata and the profile.
RANGE_OUTPUTS: tuple[str, ...] = (*PATTERN_KINDS, "metadata", "profile")

STATUS_OK = "ok"
STATUS_TOO_FEW = "too_few_top_sentences"

CORPUS_METADATA_SCHEMA = pa.schema(
    [
        pa.field("field", pa.string(), nullable=False),
        pa.field("value", pa.string(), nullable=False),
        pa.field("count", pa.int64(), nullable=False),  # corpus sentences with this value
    ]
)

#: `patterns/sentences/layer{L}.parquet`: one row per sentence in the layer's top K or in the sample.
SENTENCES_SCHEMA = pa.schema(
    [
        pa.field("sentence_id", pa.uint32(), nullable=False),
        pa.field("in_sample", pa.bool_(), nullable=False),
        pa.field("tokens", pa.list_(pa.string()), nullable=False),
        pa.field("tags", pa.list_(pa.string()), nullable=False),
        pa.field("tree", pa.string()),
        pa.field("parsed", pa.bool_(), nullable=False),
        pa.field("reason", pa.string()),
        *[pa.field(name, pa.string()) for name in METADATA_FIELDS],  # year as its decimal string
    ]
)

#: `patterns/metadata/layer{L}/n*.parquet` and `profiles/metadata/layer{L}.parquet`.
METADATA_SCHEMA = pa.schema(
    [
        pa.field("neuron", pa.int32(), nullable=False),
        pa.field("field", pa.string(), nullable=False),
        pa.field("value", pa.string(), nullable=False),
        pa.field("count_top", pa.int32(), nullable=False),  # top sentences with this value
        pa.field("n_top", pa.int32(), nullable=False),  # top sentences where the field is set
        pa.field("share_top", pa.float64(), nullable=False),  # count_top / n_top
        pa.field("count_corpus", pa.int64(), nullable=False),  # corpus sentences with this value (top included)
        pa.field("n_corpus", pa.int64(), nullable=False),  # corpus sentences where the field is set
        pa.field("share_corpus", pa.float64(), nullable=False),  # count_corpus / n_corpus
        pa.field("z", pa.float64(), nullable=False),
        pa.field("lift", pa.float64(), nullable=False),
        pa.field("p", pa.float64(), nullable=False),
        pa.field("q", pa.float64(), nullable=False),
        pa.field("dominant", pa.bool_(), nullable=False),  # the field's most frequent value in the top K
    ]
)

#: Word classes: (class name, its PTB tags), in the order of the profile and of Table 2.
WordClasses = tuple[tuple[str, tuple[str, ...]], ...]

DEFAULT_WORD_CLASSES: WordClasses = (
    ("noun", ("NN", "NNS", "NNP", "NNPS")),
    ("verb", ("VB", "VBD", "VBG", "VBN", "VBP", "VBZ")),
    ("adjective", ("JJ", "JJR", "JJS")),
)


# --- settings ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NgramSettings:
    """Length range (items) and gap bound (tokens skipped between consecutive items; 0 = contiguous)."""

    min_len: int
    max_len: int
    max_gap: int


@dataclass(frozen=True)
class PatternSettings:
    """The ``patterns`` config block (defaults = the embedded default; see the module docstring)."""

    neurons_per_job: int = 128
    top_n: int = 20
    metadata_top_n: int = 20
    prior_weight: float = DEFAULT_PRIOR_WEIGHT
    p_value: str = "selective"
    q_max: float = 0.05
    min_support: int = 3
    min_support_frac: float = 0.01
    skipgrams: NgramSettings = NgramSettings(2, 4, 2)
    posgrams: NgramSettings = NgramSettings(2, 4, 0)
    subtree_min_nodes: int = 2
    subtree_max_nodes: int = 5
    word_classes: WordClasses = DEFAULT_WORD_CLASSES

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.word_classes)

    def min_support_for(self, k: int) -> int:
        """The top-K support threshold for `k` eligible top sentences."""
        return default_min_support(k, self.min_support_frac, self.min_support)

    @classmethod
    def from_config(cls, block: Mapping[str, Any] | None) -> PatternSettings:
        """Validate the ``patterns`` config block; a wrong or unknown key raises `ConfigError` naming it."""
        top = _block(block, "patterns")
        d = cls()
        skip = _block(top.get("skipgrams"), "patterns.skipgrams")
        pos = _block(top.get("posgrams"), "patterns.posgrams")
        sub = _block(top.get("subtrees"), "patterns.subtrees")
        words = _block(top.get("words"), "patterns.words")
        meta = _block(top.get("metadata"), "patterns.metadata")
        settings = cls(
            neurons_per_job=_int(top, "neurons_per_job", d.neurons_per_job, 1),
            top_n=_int(top, "top_n", d.top_n, 1),
            metadata_top_n=_int(meta, "top_n", d.metadata_top_n, 1, "patterns.metadata"),
            prior_weight=_number(top, "prior_weight", d.prior_weight, exclusive_min=0.0),
            p_value=_choice(top, "p_value", d.p_value, P_VALUE_KINDS),
            q_max=_number(top, "q_max", d.q_max, exclusive_min=0.0, maximum=1.0),
            min_support=_int(top, "min_support", d.min_support, 1),
            min_support_frac=_number(top, "min_support_frac", d.min_support_frac, minimum=0.0, maximum=1.0),
            skipgrams=_ngrams(skip, "patterns.skipgrams", d.skipgrams),
            posgrams=_ngrams(pos, "patterns.posgrams", d.posgrams),
            subtree_min_nodes=_int(sub, "min_nodes", d.subtree_min_nodes, 1, "patterns.subtrees"),
            subtree_max_nodes=_int(sub, "max_nodes", d.subtree_max_nodes, 1, "patterns.subtrees"),
            word_classes=_word_classes(words.get("classes"), d.word_classes),
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
    "table2": frozenset({"neurons", "seed", "count", "per_cell"}),
}  # fmt: skip


def _block(value: Any, prefix: str) -> dict[str, Any]:
    """A config block as a dict (None = empty), checked against `_KNOWN_KEYS`."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{prefix} = {value!r}: give a mapping")
    unknown = sorted(set(value) - _KNOWN_KEYS[prefix])
    if unknown:
        raise ConfigError(f"{prefix}: unknown key(s) {unknown}; known keys are {sorted(_KNOWN_KEYS[prefix])}")
    return dict(value)


def _int(block: Mapping[str, Any], key: str, default: int, minimum: int, prefix: str = "patterns") -> int:
    value = block.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{prefix}.{key} = {value!r}: give an integer >= {minimum}")
    return int(value)


def _number(
    block: Mapping[str, Any],
    key: str,
    default: float,
    *,
    minimum: float | None = None,
    exclusive_min: float | None = None,
    maximum: float | None = None,
) -> float:
    """A finite number of the ``patterns`` block within the given bounds."""
    value = block.get(key, default)
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    ok = ok and (minimum is None or value >= minimum) and (exclusive_min is None or value > exclusive_min)
    ok = ok and (maximum is None or value <= maximum)
    if not ok:
        bounds = [f"{op} {bound}" for op, bound in ((">=", minimum), (">", exclusive_min), ("<=", maximum))
                  if bound is not None]  # fmt: skip
        raise ConfigError(f"patterns.{key} = {value!r}: give a number {' and '.join(bounds)}")
    return float(value)


def _choice(block: Mapping[str, Any], key: str, default: str, choices: Sequence[str]) -> str:
    value = block.get(key, default)
    if value not in choices:
        raise ConfigError(f"patterns.{key} = {value!r}: choose one of {', '.join(choices)}")
    return str(value)


def _ngrams(block: Mapping[str, Any], prefix: str, default: NgramSettings) -> NgramSettings:
    min_len = _int(block, "min_len", default.min_len, 1, prefix)
    max_len = _int(block, "max_len", default.max_len, 1, prefix)
    if max_len < min_len:
        raise ConfigError(f"{prefix}.max_len ({max_len}) must be >= {prefix}.min_len ({min_len})")
    return NgramSettings(min_len, max_len, _int(block, "max_gap", default.max_gap, 0, prefix))


def _word_classes(value: Any, default: WordClasses) -> WordClasses:
    if value is None:
        return default
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


def neuron_ranges(n_neurons: int, neurons_per_job: int) -> list[tuple[int, int]]:
    """Half-open neuron ranges ``[start, end)`` of at most `neurons_per_job` neurons covering ``0..n_neurons-1``."""
    if n_neurons < 0 or neurons_per_job < 1:
        raise ValueError("need n_neurons >= 0 and neurons_per_job >= 1")
    return [(s, min(s + neurons_per_job, n_neurons)) for s in range(0, n_neurons, neurons_per_job)]


def range_name(start: int, end: int) -> str:
    """File stem of a neuron range: ``n00000-00128`` (end exclusive)."""
    return f"n{start:05d}-{end:05d}"


# --- corpus metadata counts -------------------------------------------------------------------------------------


def _string_column(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """A metadata column as strings (``year`` is int32 in the corpus)."""
    return column if pa.types.is_string(column.type) else pc.cast(column, pa.string())


def count_corpus_metadata(corpus_files: Sequence[PathLike], out: PathLike, config_hash: str = "") -> pa.Table:
    """Write `CORPUS_METADATA_SCHEMA`: the exact sentence count of every (field, value) over all corpus files.

    Streams each file in batches of 2**20 rows, metadata columns only; rows sorted by field (in
    `formats.METADATA_FIELDS` order) then value. Nulls are not values (they are not counted).
    """
    pieces: list[pa.Table] = []
    for path in corpus_files:
        parquet = pq.ParquetFile(path)
        missing = [name for name in METADATA_FIELDS if name not in parquet.schema_arrow.names]
        if missing:
            raise ValueError(f"{path}: not a corpus file (no metadata columns {', '.join(missing)})")
        for batch in parquet.iter_batches(batch_size=1 << 20, columns=list(METADATA_FIELDS)):
            for order, name in enumerate(METADATA_FIELDS):
                counts = pc.value_counts(_string_column(batch.column(name)))
                values, numbers = counts.field("values"), counts.field("counts")
                keep = pc.is_valid(values)
                n = int(pc.sum(keep).as_py() or 0)
                pieces.append(pa.table({"order": pa.array(np.full(n, order, np.int32)), "value": values.filter(keep),
                                        "count": pc.cast(numbers.filter(keep), pa.int64())}))  # fmt: skip
    if pieces:
        table = pa.concat_tables(pieces).group_by(["order", "value"]).aggregate([("count", "sum")])
        table = table.sort_by([("order", "ascending"), ("value", "ascending")])
        fields = pa.array([METADATA_FIELDS[i] for i in table["order"].to_pylist()], pa.string())
        result = pa.table([fields, table["value"], table["count_sum"]], schema=CORPUS_METADATA_SCHEMA)
    else:
        result = CORPUS_METADATA_SCHEMA.empty_table()
    write_parquet(result, out, config_hash)
    log.info("corpus metadata: %d (field, value) counts from %d files", result.num_rows, len(corpus_files))
    return result


@dataclass(frozen=True)
class FieldCounts:
    """Corpus counts of one metadata field: `values` (sorted), int64 `counts` ``[n_values]``, `total` (set)."""

    values: tuple[str, ...]
    counts: np.ndarray
    index: Mapping[str, int]

    @property
    def total(self) -> int:
        return int(self.counts.sum())


def read_corpus_metadata(path: PathLike) -> dict[str, FieldCounts]:
    """`count_corpus_metadata`'s file as {field: FieldCounts} for every field of `formats.METADATA_FIELDS`."""
    table = pq.read_table(path)
    missing = {f.name for f in CORPUS_METADATA_SCHEMA} - set(table.column_names)
    if missing:
        raise ValueError(f"{path}: not a corpus metadata file (missing columns {sorted(missing)})")
    fields = np.asarray(table["field"].to_pylist(), dtype=object)
    values = np.asarray(table["value"].to_pylist(), dtype=object)
    counts = table["count"].to_numpy()
    result = {}
    for name in METADATA_FIELDS:
        mask = fields == name
        vals = tuple(values[mask].tolist())
        result[name] = FieldCounts(vals, counts[mask].astype(np.int64), {v: i for i, v in enumerate(vals)})
    return result


# --- gathering each layer's sentences ---------------------------------------------------------------------------


def _isin(column: str, ids: np.ndarray) -> pc.Expression:
    return pc.field(column).isin(pa.array(ids, pa.uint32()))


def _read_parses(parse_files: Sequence[PathLike], wanted: np.ndarray) -> pa.Table:
    """Rows of the parse files for the sentence ids `wanted` (sorted uint32), sorted by id; every id exactly once."""
    columns = ["sentence_id", "tokens", "tags", "tree", "parsed", "reason"]
    pieces = []
    for path in parse_files:
        names = pq.read_schema(path).names
        missing = [c for c in columns if c not in names]
        if missing:
            raise ValueError(f"{path}: not a parse file (no columns {', '.join(missing)}); rerun the parse stage")
        pieces.append(pq.read_table(path, columns=columns, filters=_isin("sentence_id", wanted)))
    table = pa.concat_tables(pieces).sort_by("sentence_id") if pieces else None
    found = table["sentence_id"].to_numpy() if table is not None else np.zeros(0, np.uint32)
    if found.size > 1 and np.any(found[1:] == found[:-1]):
        dup = int(found[1:][found[1:] == found[:-1]][0])
        raise ValueError(f"sentence {dup} has more than one row in the parse files {list(map(str, parse_files))}")
    _check_all_found(wanted, found, "the parse files", "rerun the parse stage (parse_targets, parse_shard)")
    return table


def _check_all_found(wanted: np.ndarray, found: np.ndarray, where: str, fix: str) -> None:
    missing = np.setdiff1d(wanted, found)
    if missing.size:
        shown = ", ".join(str(int(x)) for x in missing[:5])
        raise ValueError(f"{missing.size} of {wanted.size} needed sentences have no row in {where} "
                         f"(sentence ids {shown}{' ...' if missing.size > 5 else ''}); {fix}")  # fmt: skip


def _read_metadata(corpus_files: Sequence[PathLike], wanted: np.ndarray) -> pa.Table:
    """sentence_id and the metadata fields (as strings) of the ids `wanted`, sorted by id."""
    pieces = []
    for path in corpus_files:
        table = pq.read_table(path, columns=["sentence_id", *METADATA_FIELDS], filters=_isin("sentence_id", wanted))
        columns = {"sentence_id": table["sentence_id"]}
        columns.update({name: _string_column(table[name]) for name in METADATA_FIELDS})
        pieces.append(pa.table(columns))
    table = pa.concat_tables(pieces).sort_by("sentence_id")
    _check_all_found(wanted, table["sentence_id"].to_numpy(), "the corpus files",
                     "the top K, sample and corpus must come from the same run")  # fmt: skip
    return table


def gather_sentences(
    topk: PathLike,
    parse_files: Sequence[PathLike],
    corpus_files: Sequence[PathLike],
    sample: PathLike,
    out: PathLike,
    config_hash: str = "",
) -> pa.Table:
    """Write `SENTENCES_SCHEMA` for every sentence in the layer's top K (`topk`) or in the sample, sorted by id.

    Tokens, tags, tree and parse status come from the parse files, the metadata from the corpus files. A needed
    sentence missing from the parse files is an error (the parse stage covers every top-K and sample sentence).
    """
    top_ids = pc.unique(pq.read_table(topk, columns=["sentence_id"])["sentence_id"]).to_numpy()
    sample_ids = pq.read_table(sample, columns=["sentence_id"])["sentence_id"].to_numpy()
    wanted = np.union1d(top_ids, sample_ids).astype(np.uint32)
    parses = _read_parses(parse_files, wanted)
    metadata = _read_metadata(corpus_files, wanted)
    in_sample = np.isin(wanted, sample_ids)
    columns = {
        "sentence_id": pa.array(wanted, pa.uint32()),
        "in_sample": pa.array(in_sample),
        **{name: parses[name] for name in ("tokens", "tags", "tree", "parsed", "reason")},
        **{name: metadata[name] for name in METADATA_FIELDS},
    }
    table = pa.table([columns[f.name] for f in SENTENCES_SCHEMA], schema=SENTENCES_SCHEMA)
    write_parquet(table, out, config_hash)
    n_parsed = int(pc.sum(table["parsed"]).as_py() or 0)
    log.info("%s: %d sentences (%d in the top K, %d in the sample), %d parsed",
             out, len(wanted), len(top_ids), int(in_sample.sum()), n_parsed)  # fmt: skip
    return table


# --- encoding ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class EncodedSentences:
    """The sentences one range job needs (its neurons' top sentences and the sample), encoded once for the miners.

    Row ``i`` is sentence ``sentence_ids[i]`` (sorted). Every database has one sequence / tree per row; rows that are
    not eligible for a kind are empty there (see the module docstring).

    Attributes:
        sentence_ids: uint32 ``[n]``; in_sample, tokenized, parsed: bool ``[n]``.
        words: every row's tokens (skip-n-grams); tags: parsed rows' PTB tags (POS n-grams);
        class_words: per word class, the parsed rows' tokens tagged in the class (same vocabulary as `words`);
        trees: parsed rows' labels-only trees.
        token_counts: int64 ``[n]`` tokens of each parsed row (0 otherwise); class_counts: per class, int64 ``[n]``.
        metadata_codes: per field, int32 ``[n]`` index into the corpus counts' values (-1 = not set).
    """

    sentence_ids: np.ndarray
    in_sample: np.ndarray
    tokenized: np.ndarray
    parsed: np.ndarray
    words: SequenceDB
    tags: SequenceDB
    class_words: dict[str, SequenceDB]
    trees: TreeDB
    token_counts: np.ndarray
    class_counts: dict[str, np.ndarray]
    metadata_codes: dict[str, np.ndarray]

    def __len__(self) -> int:
        return int(self.sentence_ids.size)

    def rows_of(self, sentence_ids: np.ndarray) -> np.ndarray:
        """Row indices (int64) of `sentence_ids`; every id must be present."""
        ids = np.asarray(sentence_ids, dtype=np.uint32)
        rows = np.searchsorted(self.sentence_ids, ids)
        if ids.size:
            bad = rows >= len(self)
            bad[~bad] = self.sentence_ids[rows[~bad]] != ids[~bad]
            if np.any(bad):
                first = int(ids[np.flatnonzero(bad)[0]])
                raise ValueError(f"sentence {first} is not among the gathered sentences; rerun gather_sentences")
        return rows.astype(np.int64)


def _list_lengths(column: pa.ChunkedArray) -> np.ndarray:
    return pc.fill_null(pc.list_value_length(column), 0).to_numpy().astype(np.int64)


def _encode_lists(column: pa.ChunkedArray, keep: np.ndarray, vocab: Vocab) -> SequenceDB:
    """A list<string> column as a `SequenceDB` over `vocab`; rows where `keep` is false become empty."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    lengths = _list_lengths(array)
    flat = array.flatten().filter(pa.array(np.repeat(keep, lengths)))
    if flat.null_count:
        raise ValueError("a token or tag list holds a null; the parse files must hold strings only")
    lengths = np.where(keep, lengths, 0)
    offsets = np.zeros(lengths.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    encoded = pc.dictionary_encode(flat)
    lookup = vocab.intern_many(encoded.dictionary.to_pylist())
    tokens = lookup[encoded.indices.to_numpy(zero_copy_only=False)] if len(flat) else np.zeros(0, np.int32)
    return SequenceDB(tokens.astype(np.int32), offsets, vocab, len(vocab))


def encode_sentences(
    table: pa.Table, corpus_counts: Mapping[str, FieldCounts], word_classes: Sequence[tuple[str, Sequence[str]]]
) -> EncodedSentences:
    """Encode a `SENTENCES_SCHEMA` table (sorted by sentence_id) for the miners and the metadata counts."""
    ids = table["sentence_id"].to_numpy().astype(np.uint32)
    if ids.size > 1 and np.any(ids[1:] <= ids[:-1]):
        raise ValueError("gathered sentences must be sorted by sentence_id without repeats")
    parsed = table["parsed"].to_numpy(zero_copy_only=False).astype(bool)
    n_tokens = _list_lengths(table["tokens"])
    n_tags = _list_lengths(table["tags"])
    misaligned = np.flatnonzero(parsed & (n_tokens != n_tags))
    if misaligned.size:
        k = int(misaligned[0])
        raise ValueError(f"sentence {int(ids[k])}: {n_tokens[k]} tokens but {n_tags[k]} tags in the parse files")
    tokenized = n_tokens > 0
    word_vocab, tag_vocab, tree_vocab = Vocab(), Vocab(), Vocab()
    words = _encode_lists(table["tokens"], tokenized, word_vocab)
    tagged_words = _encode_lists(table["tokens"], parsed, word_vocab)
    tags = _encode_lists(table["tags"], parsed, tag_vocab)
    class_words, class_counts = {}, {}
    row_of_token = np.repeat(np.arange(ids.size), np.diff(tags.offsets))
    for name, class_tags in word_classes:
        tag_ids = [tag_vocab.get(t) for t in class_tags]
        mask = np.isin(tags.tokens, [t for t in tag_ids if t >= 0])
        class_words[name] = tagged_words.select_tokens(mask)
        class_counts[name] = np.bincount(row_of_token[mask], minlength=ids.size).astype(np.int64)
    tree_strings = [t if p and t else "" for t, p in zip(table["tree"].to_pylist(), parsed.tolist(), strict=True)]
    try:
        trees = TreeDB.from_brackets(tree_strings, tree_vocab)
    except ValueError as error:
        index = getattr(error, "tree_index", None)
        where = f"sentence {int(ids[index])}" if index is not None else "a tree"
        raise ValueError(f"{where}: malformed tree in the parse files ({error})") from None
    return EncodedSentences(
        sentence_ids=ids,
        in_sample=table["in_sample"].to_numpy(zero_copy_only=False).astype(bool),
        tokenized=tokenized,
        parsed=parsed,
        words=words,
        tags=tags,
        class_words=class_words,
        trees=trees,
        token_counts=np.where(parsed, n_tokens, 0).astype(np.int64),
        class_counts=class_counts,
        metadata_codes=_metadata_codes(table, ids, corpus_counts),
    )


def _metadata_codes(
    table: pa.Table, ids: np.ndarray, corpus_counts: Mapping[str, FieldCounts]
) -> dict[str, np.ndarray]:
    """Per metadata field, int32 ``[n]`` codes of each row's value in the corpus counts (-1 = not set)."""
    codes = {}
    for name in METADATA_FIELDS:
        column = table[name]
        index = pc.index_in(column, value_set=pa.array(corpus_counts[name].values, pa.string()))
        unknown = pc.and_(pc.is_valid(column), pc.is_null(index)).to_numpy(zero_copy_only=False)
        if unknown.any():
            row = int(np.flatnonzero(unknown)[0])
            raise ValueError(f"sentence {int(ids[row])}: {name} = {column[row].as_py()!r} is not in the corpus "
                             "metadata counts; rebuild patterns/corpus_metadata.parquet from the same corpus")  # fmt: skip
        codes[name] = pc.fill_null(index, -1).to_numpy(zero_copy_only=False).astype(np.int32)
    return codes


@dataclass(frozen=True, eq=False)
class Background:
    """The sample's rows eligible for each kind and their posting-list indices, built once per range job."""

    tokenized_rows: np.ndarray  # int64, sample rows with tokens
    parsed_rows: np.ndarray  # int64, sample rows parsed
    words: SequenceIndex
    tags: SequenceIndex
    class_words: dict[str, SequenceIndex]
    trees: TreeIndex

    @classmethod
    def build(cls, enc: EncodedSentences) -> Background:
        tokenized_rows = np.flatnonzero(enc.in_sample & enc.tokenized).astype(np.int64)
        parsed_rows = np.flatnonzero(enc.in_sample & enc.parsed).astype(np.int64)
        return cls(
            tokenized_rows=tokenized_rows,
            parsed_rows=parsed_rows,
            words=SequenceIndex.build(enc.words, tokenized_rows),
            tags=SequenceIndex.build(enc.tags, parsed_rows),
            class_words={name: SequenceIndex.build(db, parsed_rows) for name, db in enc.class_words.items()},
            trees=TreeIndex.build(enc.trees, parsed_rows),
        )


# --- one neuron -------------------------------------------------------------------------------------------------


@dataclass
class Candidates:
    """Mined candidates of one kind (or one word class) for one neuron, with their counts (int64 ``[m]``).

    ``support_top`` of ``n_top`` eligible top sentences, ``support_bg`` of ``n_bg`` background sentences,
    ``occurrences`` in the top K (the miners' definition); ``min_support`` is the threshold they passed.
    """

    kind: str
    group: str  # the word class for words, else the kind
    patterns: list[str]
    support_top: np.ndarray
    occurrences: np.ndarray
    support_bg: np.ndarray
    n_top: int
    n_bg: int
    min_support: int

    def __len__(self) -> int:
        return len(self.patterns)


@dataclass
class PatternRows:
    """Kept patterns of one kind for one neuron, best first (`formats.PATTERNS_SCHEMA` columns but neuron)."""

    pattern: list[str] = field(default_factory=list)
    support_top: list[int] = field(default_factory=list)
    support_bg: list[int] = field(default_factory=list)
    occurrences: list[int] = field(default_factory=list)
    z: list[float] = field(default_factory=list)
    lift: list[float] = field(default_factory=list)
    p: list[float] = field(default_factory=list)
    q: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.pattern)


@dataclass
class NeuronProfile:
    """Everything the stage writes for one neuron: kept patterns per kind, metadata rows, the profile row."""

    neuron: int
    patterns: dict[str, PatternRows]
    metadata: list[dict[str, Any]]
    row: dict[str, Any]


@dataclass(frozen=True)
class TopRows:
    """A neuron's top rows split by eligibility, with their overlap with the sample and the background sizes."""

    all: np.ndarray
    tokenized: np.ndarray
    parsed: np.ndarray
    overlap_tokenized: np.ndarray
    overlap_parsed: np.ndarray
    n_bg_tokenized: int
    n_bg_parsed: int

    @classmethod
    def split(cls, enc: EncodedSentences, bg: Background, rows: np.ndarray) -> TopRows:
        rows = np.unique(np.asarray(rows, dtype=np.int64))
        tokenized = rows[enc.tokenized[rows]]
        parsed = rows[enc.parsed[rows]]
        overlap_tokenized = tokenized[enc.in_sample[tokenized]]
        overlap_parsed = parsed[enc.in_sample[parsed]]
        return cls(rows, tokenized, parsed, overlap_tokenized, overlap_parsed,
                   int(bg.tokenized_rows.size - overlap_tokenized.size),
                   int(bg.parsed_rows.size - overlap_parsed.size))  # fmt: skip


def _background_support(
    count: Callable[..., Any], index: Any, db: Any, patterns: Sequence[Any], overlap: np.ndarray
) -> np.ndarray:
    """Support in the sample minus the support in the sample's rows that are this neuron's top sentences."""
    if not patterns:
        return np.zeros(0, np.int64)
    support = count(index, patterns).support.astype(np.int64)
    if overlap.size:
        support = support - count(db, patterns, rows=overlap).support.astype(np.int64)
    return support


def _sequence_candidates(
    kind: str, group: str, db: SequenceDB, index: SequenceIndex, rows: np.ndarray, overlap: np.ndarray, n_bg: int,
    mine: Callable[[int], list[Any]], max_gap: int | None, label: Callable[[Any], str], settings: PatternSettings,
) -> Candidates:  # fmt: skip
    """Mine sequence patterns from the top `rows` (via `mine(min_support)`) and count them in the background."""
    min_support = settings.min_support_for(rows.size)
    patterns = mine(min_support) if rows.size >= min_support else []

    def count(target, pats, rows=None):
        return count_skipgrams(target, pats, max_gap=max_gap, rows=rows)

    return Candidates(
        kind=kind, group=group, patterns=[label(p) for p in patterns],
        support_top=np.array([p.support for p in patterns], np.int64),
        occurrences=np.array([p.occurrences for p in patterns], np.int64),
        support_bg=_background_support(count, index, db, patterns, overlap),
        n_top=int(rows.size), n_bg=n_bg, min_support=min_support,
    )  # fmt: skip


def _subtree_candidates(enc: EncodedSentences, bg: Background, top: TopRows, settings: PatternSettings) -> Candidates:
    rows = top.parsed
    min_support = settings.min_support_for(rows.size)
    patterns = []
    if rows.size >= min_support:
        patterns = mine_subtrees(enc.trees, rows, min_support=min_support, max_nodes=settings.subtree_max_nodes,
                                 min_nodes=settings.subtree_min_nodes)  # fmt: skip
        keep = closed_subtree_mask([p.labels for p in patterns], [p.depths for p in patterns],
                                   [p.support for p in patterns], settings.subtree_max_nodes)  # fmt: skip
        patterns = [p for p, k in zip(patterns, keep.tolist(), strict=True) if k]
    return Candidates(
        kind="subtrees", group="subtrees", patterns=[p.to_bracket(enc.trees.vocab) for p in patterns],
        support_top=np.array([p.support for p in patterns], np.int64),
        occurrences=np.array([p.occurrences for p in patterns], np.int64),
        support_bg=_background_support(count_subtrees, bg.trees, enc.trees, patterns, top.overlap_parsed),
        n_top=int(rows.size), n_bg=top.n_bg_parsed, min_support=min_support,
    )  # fmt: skip


def neuron_candidates(
    enc: EncodedSentences, bg: Background, top: TopRows, settings: PatternSettings
) -> list[Candidates]:
    """Closed candidates of every kind (words: one entry per class) with top and background counts."""
    result = []
    for name, _ in settings.word_classes:
        db = enc.class_words[name]
        result.append(_sequence_candidates(
            "words", name, db, bg.class_words[name], top.parsed, top.overlap_parsed, top.n_bg_parsed,
            lambda s, db=db: frequent_items(db, top.parsed, min_support=s), None,
            lambda p, db=db, name=name: f"{name}:{db.vocab[p.items[0]]}", settings,
        ))  # fmt: skip
    skip = settings.skipgrams
    result.append(_sequence_candidates(
        "skipgrams", "skipgrams", enc.words, bg.words, top.tokenized, top.overlap_tokenized, top.n_bg_tokenized,
        lambda s: mine_skipgrams(enc.words, top.tokenized, min_support=s, min_len=skip.min_len,
                                 max_len=skip.max_len, max_gap=skip.max_gap, closed=True),
        skip.max_gap, lambda p: " ".join(enc.words.vocab.decode(p.items)), settings,
    ))  # fmt: skip
    pos = settings.posgrams
    result.append(_sequence_candidates(
        "posgrams", "posgrams", enc.tags, bg.tags, top.parsed, top.overlap_parsed, top.n_bg_parsed,
        lambda s: mine_skipgrams(enc.tags, top.parsed, min_support=s, min_len=pos.min_len, max_len=pos.max_len,
                                 max_gap=0, closed=True),
        0, lambda p: " ".join(enc.tags.vocab.decode(p.items)), settings,
    ))  # fmt: skip
    result.append(_subtree_candidates(enc, bg, top, settings))
    return result


def _rank_order(
    patterns: Sequence[str], support_top: np.ndarray, z: np.ndarray, significant: np.ndarray, idx: np.ndarray
) -> list[int]:
    """`idx` sorted by (not significant, -z, -support_top, pattern): significant patterns first, each group by z
    (DESIGN.md section 4: rank by z), ties broken deterministically and independently of the job's neuron range."""
    return sorted(idx.tolist(), key=lambda i: (not significant[i], -z[i], -support_top[i], patterns[i]))


def score_candidates(candidates: Sequence[Candidates], settings: PatternSettings) -> tuple[dict[str, PatternRows], int]:
    """Score all candidates of one neuron as one BH family; keep z > 0, best `top_n` per kind (per class for words).

    Returns the kept rows per kind (`PATTERN_KINDS` order) and the number of candidates with q < `q_max`.
    """
    kept = {kind: PatternRows() for kind in PATTERN_KINDS}
    sizes = [len(c) for c in candidates]
    if sum(sizes) == 0:
        return kept, 0

    def cat(get: Callable[[Candidates], Any]) -> np.ndarray:
        return np.concatenate([np.broadcast_to(np.asarray(get(c)), (len(c),)) for c in candidates]).astype(np.int64)

    scores = score_counts(
        cat(lambda c: c.support_top), cat(lambda c: c.n_top), cat(lambda c: c.support_bg), cat(lambda c: c.n_bg),
        prior_weight=settings.prior_weight, min_support=cat(lambda c: c.min_support), p_value=settings.p_value,
    )  # fmt: skip
    n_significant = int(np.sum(scores.q < settings.q_max))
    start = 0
    for cand, size in zip(candidates, sizes, strict=True):
        part = slice(start, start + size)
        start += size
        z, lift_, p, q = scores.z[part], scores.lift[part], scores.p[part], scores.q[part]
        significant = q < settings.q_max
        order = _rank_order(cand.patterns, cand.support_top, z, significant, np.flatnonzero(z > 0))[: settings.top_n]
        rows = kept[cand.kind]
        for i in order:
            rows.pattern.append(cand.patterns[i])
            rows.support_top.append(int(cand.support_top[i]))
            rows.support_bg.append(int(cand.support_bg[i]))
            rows.occurrences.append(int(cand.occurrences[i]))
            rows.z.append(float(z[i]))
            rows.lift.append(float(lift_[i]))
            rows.p.append(float(p[i]))
            rows.q.append(float(q[i]))
    return kept, n_significant


def metadata_rows(
    enc: EncodedSentences, top_rows: np.ndarray, corpus_counts: Mapping[str, FieldCounts], neuron: int,
    settings: PatternSettings,
) -> list[dict[str, Any]]:  # fmt: skip
    """`METADATA_SCHEMA` rows of one neuron: per field, its values in the top K against the rest of the corpus."""
    found = []  # (field, value codes, counts in top, n_top)
    for name in METADATA_FIELDS:
        codes = enc.metadata_codes[name][top_rows]
        codes = codes[codes >= 0]
        if codes.size:
            counts = np.bincount(codes, minlength=len(corpus_counts[name].values))
            present = np.flatnonzero(counts)
            found.append((name, present, counts[present], int(codes.size)))
    if not found:
        return []
    a = np.concatenate([c for _, _, c, _ in found]).astype(np.int64)
    k = np.concatenate([np.full(p.size, n) for _, p, _, n in found]).astype(np.int64)
    c = np.concatenate([corpus_counts[f].counts[p] for f, p, _, _ in found]).astype(np.int64)
    total = np.concatenate([np.full(p.size, corpus_counts[f].total) for f, p, _, _ in found]).astype(np.int64)
    if np.any(c < a) or np.any(total < k):
        raise ValueError(f"neuron {neuron}: the corpus metadata counts are smaller than the top K's; rebuild "
                         "patterns/corpus_metadata.parquet from the same corpus")  # fmt: skip
    scores = score_counts(a, k, c - a, total - k, prior_weight=settings.prior_weight, min_support=1,
                          p_value=settings.p_value)  # fmt: skip
    rows, start = [], 0
    for name, present, counts, n_top in found:
        part = range(start, start + present.size)
        start += present.size
        values = corpus_counts[name].values
        order = sorted(part, key=lambda i: (-a[i], values[present[i - part.start]]))[: settings.metadata_top_n]
        for rank, i in enumerate(order):
            j = i - part.start
            rows.append({
                "neuron": neuron, "field": name, "value": values[present[j]], "count_top": int(a[i]),
                "n_top": n_top, "share_top": float(a[i] / n_top), "count_corpus": int(c[i]),
                "n_corpus": int(total[i]), "share_corpus": float(c[i] / total[i]), "z": float(scores.z[i]),
                "lift": float(scores.lift[i]), "p": float(scores.p[i]), "q": float(scores.q[i]), "dominant": rank == 0,
            })  # fmt: skip
    return rows


def profile_schema(class_names: Sequence[str]) -> pa.Schema:
    """Schema of `profiles/layer{L}.parquet` (and the per-range profile files) for the configured word classes."""
    shares = []
    for name in class_names:
        shares += [pa.field(f"{name}_share", pa.float64(), nullable=False),  # tokens of the class / parsed tokens
                   pa.field(f"{name}_share_background", pa.float64(), nullable=False)]  # fmt: skip
    return pa.schema(
        [
            pa.field("neuron", pa.int32(), nullable=False),
            pa.field("summary", pa.string(), nullable=False),
            pa.field("status", pa.string(), nullable=False),  # ok | too_few_top_sentences
            pa.field("n_top", pa.int32(), nullable=False),  # top sentences in the top-K file
            pa.field("n_top_tokenized", pa.int32(), nullable=False),  # ... with tokens (skip-n-grams)
            pa.field("n_top_parsed", pa.int32(), nullable=False),  # ... parsed (words, POS n-grams, subtrees)
            pa.field("n_top_unparsed", pa.int32(), nullable=False),  # n_top - n_top_parsed: left out of tag/tree kinds
            pa.field("n_background", pa.int32(), nullable=False),  # sample sentences with tokens, minus the overlap
            pa.field("n_background_parsed", pa.int32(), nullable=False),
            pa.field("n_background_unparsed", pa.int32(), nullable=False),  # sample minus overlap, not parsed
            pa.field("min_support", pa.int32(), nullable=False),  # threshold for n_top sentences
            pa.field("n_patterns", pa.int32(), nullable=False),  # kept rows over the four pattern kinds
            pa.field("n_significant", pa.int32(), nullable=False),  # candidates with q < q_max (before top_n)
            pa.field("dominant_domain", pa.string()),
            pa.field("dominant_domain_share", pa.float64(), nullable=False),  # NaN when no domain is set
            pa.field("dominant_domain_corpus_share", pa.float64(), nullable=False),
            *shares,  # NaN when no sentence is parsed
        ]
    )


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


def _dominant_domain(metadata: Sequence[Mapping[str, Any]]) -> tuple[str | None, float, float]:
    for row in metadata:
        if row["field"] == "domain" and row["dominant"]:
            return row["value"], row["share_top"], row["share_corpus"]
    return None, math.nan, math.nan


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
    domain, domain_share, domain_corpus_share = _dominant_domain(metadata)
    if enough:
        summary = summarize(kept, domain, domain_share, settings.q_max)
    else:
        summary = f"too few top sentences ({n_top} < {settings.min_support})"
    n_tokens = int(enc.token_counts[top.parsed].sum())
    n_tokens_bg = int(enc.token_counts[bg.parsed_rows].sum())
    n_sample = int(enc.in_sample.sum()) - int(enc.in_sample[top.all].sum())
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


# --- one neuron range, and the merge per layer ------------------------------------------------------------------


def read_top_sentences(topk: PathLike, start: int, end: int) -> dict[int, np.ndarray]:
    """{neuron: its top sentence ids (uint32) by rank} for neurons ``start <= n < end`` present in `topk`."""
    expr = (pc.field("neuron") >= start) & (pc.field("neuron") < end)
    table = pq.read_table(topk, columns=["neuron", "rank", "sentence_id"], filters=expr)
    table = table.sort_by([("neuron", "ascending"), ("rank", "ascending")])
    neurons = table["neuron"].to_numpy()
    ids = table["sentence_id"].to_numpy().astype(np.uint32)
    bounds = np.flatnonzero(np.diff(neurons)) + 1
    return {int(chunk_neurons[0]): chunk_ids for chunk_neurons, chunk_ids in
            zip(np.split(neurons, bounds), np.split(ids, bounds), strict=True) if chunk_neurons.size}  # fmt: skip


def _pattern_table(profiles: Sequence[NeuronProfile], kind: str) -> pa.Table:
    columns: dict[str, list[Any]] = {f.name: [] for f in PATTERNS_SCHEMA}
    for prof in profiles:
        rows = prof.patterns[kind]
        columns["neuron"] += [prof.neuron] * len(rows)
        for name in columns:
            if name != "neuron":
                columns[name] += getattr(rows, name)
    return pa.table(columns, schema=PATTERNS_SCHEMA)


def _rows_table(rows: Sequence[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    return pa.table({f.name: [r[f.name] for r in rows] for f in schema}, schema=schema)


def profile_range(
    topk: PathLike,
    sentences: PathLike,
    corpus_metadata: PathLike,
    start: int,
    end: int,
    settings: PatternSettings | Mapping[str, Any] | None,
    outputs: Mapping[str, PathLike],
    config_hash: str = "",
) -> list[NeuronProfile]:
    """Profile neurons ``start <= n < end`` and write one file per entry of `RANGE_OUTPUTS` (keys of `outputs`).

    Inputs: the layer's top-K file, its gathered sentences (`gather_sentences`) and the corpus metadata counts
    (`count_corpus_metadata`). A neuron absent from the top-K file is profiled with no top sentences.
    """
    if not isinstance(settings, PatternSettings):
        settings = PatternSettings.from_config(settings)
    missing = [k for k in RANGE_OUTPUTS if k not in outputs]
    if missing:
        raise ValueError(f"profile_range needs an output path for {', '.join(missing)}")
    tops = read_top_sentences(topk, start, end)
    top_ids = np.unique(np.concatenate([np.zeros(0, np.uint32), *tops.values()]))
    table = pq.read_table(sentences, filters=pc.field("in_sample") | _isin("sentence_id", top_ids))
    table = table.sort_by("sentence_id")
    corpus_counts = read_corpus_metadata(corpus_metadata)
    try:
        enc = encode_sentences(table, corpus_counts, settings.word_classes)
    except ValueError as error:
        raise ValueError(f"{sentences}: {error}") from None
    bg = Background.build(enc)
    log.info("neurons %d-%d: %d sentences encoded (%d in the sample, %d parsed)",
             start, end - 1, len(enc), int(enc.in_sample.sum()), int(enc.parsed.sum()))  # fmt: skip
    profiles = []
    for neuron in progress(range(start, end), desc=f"neurons {start}-{end - 1}", unit="neuron"):
        rows = enc.rows_of(tops.get(neuron, np.zeros(0, np.uint32)))
        profiles.append(profile_neuron(enc, bg, neuron, rows, corpus_counts, settings))
    for kind in PATTERN_KINDS:
        write_parquet(_pattern_table(profiles, kind), outputs[kind], config_hash)
    metadata = [row for prof in profiles for row in prof.metadata]
    write_parquet(_rows_table(metadata, METADATA_SCHEMA), outputs["metadata"], config_hash)
    write_parquet(_rows_table([p.row for p in profiles], profile_schema(settings.class_names)), outputs["profile"],
                  config_hash)  # fmt: skip
    return profiles


def merge_layer(
    range_files: Mapping[str, Sequence[PathLike]],
    patterns_out: PathLike,
    profiles_out: PathLike,
    metadata_out: PathLike,
    config_hash: str = "",
) -> None:
    """Concatenate one layer's range files: `range_files` maps each of `RANGE_OUTPUTS` to its files (any order).

    ``patterns_out`` gets the four pattern kinds with a leading ``kind`` column (rows by kind, then neuron, then
    rank); ``profiles_out`` the profiles and ``metadata_out`` the metadata rows, by neuron.
    """
    pieces = []
    for kind in PATTERN_KINDS:
        table = _concat_by_neuron(range_files[kind])
        pieces.append(table.add_column(0, "kind", pa.array([kind] * table.num_rows, pa.string())))
    write_parquet(pa.concat_tables(pieces), patterns_out, config_hash)
    write_parquet(_concat_by_neuron(range_files["profile"]), profiles_out, config_hash)
    write_parquet(_concat_by_neuron(range_files["metadata"]), metadata_out, config_hash)


def _concat_by_neuron(files: Sequence[PathLike]) -> pa.Table:
    """Range files concatenated in neuron order (each file keeps its row order; ranges do not overlap)."""
    tables = [pq.read_table(path) for path in files]
    tables = [t.replace_schema_metadata(None) for t in tables]
    firsts = [t["neuron"][0].as_py() if t.num_rows else -1 for t in tables]
    order = sorted(range(len(tables)), key=lambda i: (firsts[i], str(files[i])))
    return pa.concat_tables([tables[i] for i in order]) if tables else pa.table({})


# --- Table 2 and Figure 1 ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Table2Settings:
    """The ``table2`` config block: explicit neurons (``L11.309``) or `count` drawn with `seed`; `per_cell` patterns."""

    neurons: tuple[str, ...] = ()
    seed: int = 0
    count: int = 3
    per_cell: int = 3

    @classmethod
    def from_config(cls, block: Mapping[str, Any] | None) -> Table2Settings:
        block = _block(block, "table2")
        neurons = block.get("neurons") or []
        if not isinstance(neurons, list) or not all(isinstance(n, str) for n in neurons):
            raise ConfigError(f"table2.neurons = {neurons!r}: give a list of neuron names like [L11.309, L6.200]")
        return cls(tuple(neurons), _int(block, "seed", 0, 0, "table2"), _int(block, "count", 3, 1, "table2"),
                   _int(block, "per_cell", 3, 1, "table2"))  # fmt: skip


def choose_neurons(settings: Table2Settings, n_layers: int, n_neurons: int) -> list[tuple[int, int]]:
    """The (layer, neuron) pairs of Table 2 and Figure 1: the configured names, in order, or `count` distinct ones
    drawn uniformly from layers 1..n_layers x neurons 0..n_neurons-1 with ``numpy.random.default_rng(seed)``."""
    if settings.neurons:
        chosen = []
        for i, name in enumerate(settings.neurons):
            try:
                layer, neuron = parse_neuron_name(name)
            except ValueError as error:
                raise ConfigError(f"table2.neurons[{i}]: {error}") from None
            if not (1 <= layer <= n_layers and 0 <= neuron < n_neurons):
                raise ConfigError(f"table2.neurons[{i}] = {name!r}: the model has layers 1..{n_layers} and neurons "
                                  f"0..{n_neurons - 1}")  # fmt: skip
            chosen.append((layer, neuron))
        return chosen
    total = n_layers * n_neurons
    if settings.count > total:
        raise ConfigError(f"table2.count = {settings.count}: the model has only {total} neurons")
    picks = np.random.default_rng(settings.seed).choice(total, size=settings.count, replace=False)
    return [(int(p) // n_neurons + 1, int(p) % n_neurons) for p in picks]


def _md_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def table2_rows(
    patterns: pa.Table, profile: Mapping[str, Any], class_names: Sequence[str], per_cell: int, q_max: float
) -> list[tuple[str, str]]:
    """(row label, cell) pairs of one neuron's Table 2 column; ``†`` marks a pattern with q >= `q_max`."""

    def cell(kind: str, prefix: str | None = None) -> str:
        rows = patterns.filter(pc.equal(patterns["kind"], kind)).to_pylist()
        if prefix is not None:
            start = prefix + ":"
            rows = [{**r, "pattern": r["pattern"][len(start) :]} for r in rows if r["pattern"].startswith(start)]
        shown = [r["pattern"] + ("" if r["q"] < q_max else "†") for r in rows[:per_cell]]
        return ", ".join(shown) if shown else "-"

    out = [(f"{name.capitalize()}s", cell("words", name)) for name in class_names]
    out += [("Skip-n-grams", cell("skipgrams")), ("POS n-grams", cell("posgrams")), ("Subtrees", cell("subtrees"))]
    shares = " / ".join(_percent(profile[f"{name}_share"]) for name in class_names)
    background = " / ".join(_percent(profile[f"{name}_share_background"]) for name in class_names)
    out.append((" / ".join(class_names).capitalize() + " share", f"{shares} (sample {background})"))
    domain = profile["dominant_domain"]
    out.append(("Dominant domain", "-" if domain is None else f"{domain} {_percent(profile['dominant_domain_share'])} "
                f"(corpus {_percent(profile['dominant_domain_corpus_share'])})"))  # fmt: skip
    out.append(("Top sentences (unparsed)", f"{profile['n_top']} ({profile['n_top_unparsed']})"))
    return out


def _percent(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{100 * value:.1f}%"


def write_table2(
    patterns_files: Mapping[int, PathLike],
    profile_files: Mapping[int, PathLike],
    neurons: Sequence[tuple[int, int]],
    md_out: PathLike,
    csv_out: PathLike,
    per_cell: int = 3,
    q_max: float = 0.05,
) -> list[list[str]]:
    """Table 2: one column per chosen (layer, neuron), rows of `table2_rows`; Markdown and CSV (same cells).

    `patterns_files` / `profile_files` map a layer to its merged ``patterns/layer{L}.parquet`` /
    ``profiles/layer{L}.parquet``.
    """
    columns = []
    for layer, neuron in neurons:
        profile = pq.read_table(profile_files[layer], filters=pc.field("neuron") == neuron).to_pylist()
        if not profile:
            raise ValueError(f"{profile_files[layer]}: no profile for neuron {neuron}")
        class_names = [c[: -len("_share_background")] for c in profile[0] if c.endswith("_share_background")]
        pats = pq.read_table(patterns_files[layer], filters=pc.field("neuron") == neuron)
        columns.append(table2_rows(pats, profile[0], class_names, per_cell, q_max))
    header = ["", *(neuron_name(layer, neuron) for layer, neuron in neurons)]
    labels = [label for label, _ in columns[0]] if columns else []
    grid = [header] + [[label, *(col[i][1] for col in columns)] for i, label in enumerate(labels)]
    md = ["| " + " | ".join(_md_cell(c) for c in grid[0]) + " |", "|" + "---|" * len(header)]
    md += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in grid[1:]]
    note = (f"\nPatterns of each neuron's top K, significant first, each group ranked by log-odds z against the "
            f"sample; † = q >= {q_max} (not significant); shares are of the parsed tokens of the top K (the sample's "
            "in parentheses).\n")
    write_text(md_out, "\n".join(md) + "\n" + note)
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(grid)
    write_text(csv_out, buffer.getvalue())
    return grid


FIGURE1_FIELDS: tuple[str, ...] = ("domain", "topic", "sentiment")


def _bars(
    top: Mapping[str, float], corpus: Mapping[str, float], max_bars: int
) -> tuple[list[str], list[float], list[float]]:
    """Values shown (most frequent in the corpus or the top K first, at most `max_bars`, the rest as 'other')."""
    values = sorted(set(top) | set(corpus), key=lambda v: (-max(top.get(v, 0.0), corpus.get(v, 0.0)), v))
    shown = values[:max_bars]
    top_shares = [top.get(v, 0.0) for v in shown]
    corpus_shares = [corpus.get(v, 0.0) for v in shown]
    rest_top, rest_corpus = 1.0 - sum(top_shares), 1.0 - sum(corpus_shares)
    if len(values) > max_bars or rest_top > 1e-9 or rest_corpus > 1e-9:
        shown, top_shares, corpus_shares = shown + ["other"], top_shares + [max(rest_top, 0.0)], corpus_shares + [
            max(rest_corpus, 0.0)]  # fmt: skip
    return shown, top_shares, corpus_shares


def plot_figure1(
    metadata: Mapping[tuple[int, int], Sequence[Mapping[str, Any]]],
    corpus_counts: Mapping[str, FieldCounts],
    fields: Sequence[str] = FIGURE1_FIELDS,
    max_bars: int = 8,
):
    """Figure 1: per chosen neuron (rows) and field (columns: `fields` set anywhere in the corpus), bars of the top
    K's value shares beside the corpus's. `metadata` maps (layer, neuron) to its `METADATA_SCHEMA` rows."""
    import matplotlib.pyplot as plt

    shown_fields = [f for f in fields if corpus_counts[f].total > 0]
    neurons = list(metadata)
    n_rows, n_cols = max(len(neurons), 1), max(len(shown_fields), 1)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(3.6 * n_cols + 0.6, 2.6 * n_rows + 0.4), squeeze=False)
    for r, key in enumerate(neurons):
        for c, name in enumerate(shown_fields):
            ax = axes[r][c]
            rows = [row for row in metadata[key] if row["field"] == name]
            counts = corpus_counts[name]
            corpus = {v: int(n) / counts.total for v, n in zip(counts.values, counts.counts, strict=True)}
            top = {row["value"]: row["share_top"] for row in rows}
            values, top_shares, corpus_shares = _bars(top, corpus, max_bars)
            x = np.arange(len(values))
            ax.bar(x - 0.2, top_shares, width=0.4, label="top K", color="#d95f02")
            ax.bar(x + 0.2, corpus_shares, width=0.4, label="corpus", color="#7570b3")
            ax.set_xticks(x, values, rotation=40, ha="right", fontsize=7)
            ax.set_ylim(0, 1)
            n_top = rows[0]["n_top"] if rows else 0
            ax.set_title(f"{neuron_name(*key)}: {name} ({n_top} top sentences with one)", fontsize=9)
            if c == 0:
                ax.set_ylabel("share")
            if r == 0 and c == n_cols - 1:
                ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


def save_figure(fig, png: PathLike, pdf: PathLike) -> None:
    """Write `fig` as PNG (150 dpi) and PDF, atomically and without timestamps (same figure, same bytes)."""
    import matplotlib

    with matplotlib.rc_context({"pdf.compression": 6}):
        with atomic_output(png) as tmp:
            fig.savefig(tmp, format="png", dpi=150, metadata={"Software": None})
        with atomic_output(pdf) as tmp:
            fig.savefig(tmp, format="pdf", metadata={"CreationDate": None, "ModDate": None, "Producer": None})


def write_figure1(
    metadata_files: Mapping[int, PathLike],
    corpus_metadata: PathLike,
    neurons: Sequence[tuple[int, int]],
    png: PathLike,
    pdf: PathLike,
) -> None:
    """Figure 1 for the chosen (layer, neuron) pairs from the merged ``profiles/metadata/layer{L}.parquet`` files."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    metadata = {}
    for layer, neuron in neurons:
        table = pq.read_table(metadata_files[layer], filters=pc.field("neuron") == neuron)
        metadata[(layer, neuron)] = table.to_pylist()
    fig = plot_figure1(metadata, read_corpus_metadata(corpus_metadata))
    try:
        save_figure(fig, png, pdf)
    finally:
        plt.close(fig)
