"""Sentences encoded once for the miners, and the background the neurons' top sentences are contrasted with.

`encode_sentences` turns a `neurotext.artifacts.patterns.SENTENCES_SCHEMA` table (``patterns/sentences/layer{L}
.parquet``, or any subset of its rows) into an `EncodedSentences`; `Background.build` indexes a set of its rows
(the sample by default) for background counts. docs/ARCHITECTURE.md, "Pattern mining", explains eligibility.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from neurotext.artifacts.corpus import METADATA_FIELDS
from neurotext.artifacts.patterns import FieldCounts
from neurotext.miners import SequenceDB, SequenceIndex, TreeDB, TreeIndex, Vocab


@dataclass(frozen=True, eq=False)
class EncodedSentences:
    """The sentences one range job needs (its neurons' top sentences and the sample), encoded once for the miners.

    Row ``i`` is sentence ``sentence_ids[i]`` (sorted). Every database has one sequence / tree per row; rows that are
    not eligible for a kind are empty there (docs/ARCHITECTURE.md, "Pattern mining").

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
    """Encode a `SENTENCES_SCHEMA` table (sorted by sentence_id) for the miners and the metadata counts.

    `corpus_counts`: `neurotext.artifacts.patterns.read_corpus_metadata` of the run (metadata values are coded
    against it); `word_classes`: ``PatternSettings.word_classes``. The ``in_sample`` column is optional (all false
    when absent: pass the background rows to `Background.build` then).
    """
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
        in_sample=_in_sample(table),
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


def _in_sample(table: pa.Table) -> np.ndarray:
    """The ``in_sample`` column as bool ``[n]``; all false when the table has none."""
    if "in_sample" not in table.column_names:
        return np.zeros(table.num_rows, dtype=bool)
    return table["in_sample"].to_numpy(zero_copy_only=False).astype(bool)


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
    """The background sentences (rows of an `EncodedSentences`) eligible for each kind and their posting-list
    indices; built once and shared by every neuron mined against it.

    Attributes:
        member: bool ``[n]``, true for the rows in the background (by default the sample's rows, ``in_sample``).
        tokenized_rows / parsed_rows: int64, the background rows with tokens / parsed.
        words, tags, class_words, trees: the miners' indices over those rows.
    """

    tokenized_rows: np.ndarray  # int64, background rows with tokens
    parsed_rows: np.ndarray  # int64, background rows parsed
    words: SequenceIndex
    tags: SequenceIndex
    class_words: dict[str, SequenceIndex]
    trees: TreeIndex
    member: np.ndarray  # bool [n]

    @classmethod
    def build(cls, enc: EncodedSentences, rows: np.ndarray | None = None) -> Background:
        """The background of `enc`'s rows `rows` (int, any order; default: the sample's rows, ``enc.in_sample``)."""
        if rows is None:
            member = enc.in_sample.copy()
        else:
            member = np.zeros(len(enc), dtype=bool)
            member[np.asarray(rows, dtype=np.int64)] = True
        tokenized_rows = np.flatnonzero(member & enc.tokenized).astype(np.int64)
        parsed_rows = np.flatnonzero(member & enc.parsed).astype(np.int64)
        return cls(
            tokenized_rows=tokenized_rows,
            parsed_rows=parsed_rows,
            words=SequenceIndex.build(enc.words, tokenized_rows),
            tags=SequenceIndex.build(enc.tags, parsed_rows),
            class_words={name: SequenceIndex.build(db, parsed_rows) for name, db in enc.class_words.items()},
            trees=TreeIndex.build(enc.trees, parsed_rows),
            member=member,
        )

    @classmethod
    def of_ids(cls, enc: EncodedSentences, sentence_ids: np.ndarray) -> Background:
        """The background of the sentence ids `sentence_ids` (uint32, each must be a row of `enc`)."""
        return cls.build(enc, enc.rows_of(sentence_ids))
